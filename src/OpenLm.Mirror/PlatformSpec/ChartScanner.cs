using System.Text;
using System.Text.RegularExpressions;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Yaml;

namespace OpenLm.Mirror.PlatformSpec;

/// <summary>
/// Finds the container images a Helm chart refers to by reading its values (never by rendering templates).
/// The umbrella chart and every subchart under <c>charts/</c> (directories or nested <c>.tgz</c>, any depth)
/// are loaded; each chart's values are coalesced the way Helm does (parent values override subchart defaults,
/// parent globals override subchart globals, a parent <c>null</c> deletes a default), and the effective values
/// are searched for images. Paths are reported as seen from the umbrella.
/// </summary>
/// <remarks>
/// Image rule: a key named exactly <c>image</c> whose value is (a) a string — a whole reference — or
/// (b) a mapping with a non-empty <c>repository</c> — split keys <c>registry</c>/<c>repository</c>/<c>tag</c>/<c>digest</c>,
/// where a non-empty effective <c>global.imageRegistry</c> replaces <c>registry</c>. Other keys (<c>initImage</c>,
/// <c>imageName</c>, …) are not images; list such images in the platform manifest with <c>values:</c>.
/// </remarks>
public static partial class ChartScanner
{
    private const int MaxVisitedNodes = 5_000_000;

    public static ChartScanResult Scan(string chartPath, ChartScanOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(chartPath);
        options ??= ChartScanOptions.Default;
        var full = Path.GetFullPath(chartPath);
        ChartFiles files;
        if (Directory.Exists(full))
        {
            files = new DirectoryChartFiles(full, Path.GetFileName(Path.TrimEndingDirectorySeparator(full)), options.MaxFileBytes);
        }
        else if (File.Exists(full))
        {
            try
            {
                using var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, FileOptions.SequentialScan);
                files = ArchiveChartFiles.Open(stream, string.Empty, chartPath, options);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new InputException($"chart '{chartPath}': cannot read: {ex.Message}", ex);
            }
        }
        else
        {
            throw new InputException($"chart '{chartPath}' does not exist");
        }

        var scan = new ScanState(options);
        var root = scan.Load(files, depth: 0);
        if (root is null)
        {
            throw new InputException(Message(chartPath, scan.Errors, []));
        }

        scan.Process(root, new Placement(Key: null, Alias: null, Prefix: string.Empty, ChartPath: root.Meta.Name, Enabled: true, Depth: 0), overrides: null, parentGlobal: null, topTags: null);

        var invalid = scan.Invalid
            .OrderBy(i => i.ValuesPath, StringComparer.Ordinal)
            .ThenBy(i => i.File, StringComparer.Ordinal)
            .ToList();
        if (scan.Errors.Count > 0 || (invalid.Count > 0 && !options.SkipInvalid))
        {
            throw new InputException(Message(chartPath, scan.Errors, options.SkipInvalid ? [] : invalid));
        }

        return new ChartScanResult
        {
            SourcePath = chartPath,
            ChartName = root.Meta.Name,
            ChartVersion = root.Meta.Version,
            Charts = scan.Charts.OrderBy(c => c.ValuesPrefix.Length == 0 ? 0 : 1).ThenBy(c => c.ValuesPrefix, StringComparer.Ordinal).ToList(),
            Findings = scan.Findings
                .OrderBy(f => f.ValuesPath, StringComparer.Ordinal)
                .ThenBy(f => f.File, StringComparer.Ordinal)
                .ThenBy(f => f.Reference.ToString(), StringComparer.Ordinal)
                .ToList(),
            Invalid = invalid,
        };
    }

    private static string Message(string chartPath, IReadOnlyList<string> errors, IReadOnlyList<InvalidImageReference> invalid)
    {
        var text = new StringBuilder();
        if (errors.Count > 0)
        {
            text.Append(CultureInvariant($"chart '{chartPath}' cannot be scanned ({errors.Count} problem{(errors.Count == 1 ? string.Empty : "s")}):"));
            foreach (var error in errors)
            {
                text.Append('\n').Append(error);
            }
        }

        if (invalid.Count > 0)
        {
            if (text.Length > 0)
            {
                text.Append('\n');
            }

            text.Append(CultureInvariant($"chart '{chartPath}' has {invalid.Count} invalid image reference{(invalid.Count == 1 ? string.Empty : "s")}:"));
            foreach (var item in invalid)
            {
                text.Append('\n').Append(item);
            }
        }

        return text.ToString();
    }

    private static string CultureInvariant(FormattableString text) => FormattableString.Invariant(text);

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$|^0x[0-9a-fA-F_]+$|^0o?[0-7_]+$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$", RegexOptions.CultureInvariant)]
    private static partial Regex NumberPattern();

    private sealed record ChartMeta(string Name, string Version, string? AppVersion, IReadOnlyList<Dependency> Dependencies, string File);

    private sealed record Dependency(string Name, string? Version, string? Alias, string? Condition, IReadOnlyList<string> Tags);

    private sealed record ChartNode(ChartMeta Meta, YMapping Values, IReadOnlyList<ChartNode> Subcharts);

    private sealed record Placement(string? Key, string? Alias, string Prefix, string ChartPath, bool Enabled, int Depth);

    private sealed record ChartScope(ChartNode Node, Placement Placement, YMapping Global);

    private sealed class ScanState(ChartScanOptions options)
    {
        private readonly Dictionary<string, int> _fileDepth = new(StringComparer.Ordinal);
        private readonly Dictionary<YMapping, YMapping> _resolved = new(ReferenceEqualityComparer.Instance);
        private int _visited;

        public List<string> Errors { get; } = [];

        public List<ChartImageFinding> Findings { get; } = [];

        public List<InvalidImageReference> Invalid { get; } = [];

        public List<ScannedChart> Charts { get; } = [];

        // ---------------------------------------------------------------- loading

        public ChartNode? Load(ChartFiles files, int depth)
        {
            if (depth > options.MaxDepth)
            {
                Errors.Add($"{files.Display("Chart.yaml")}: subcharts nested deeper than {options.MaxDepth} levels");
                return null;
            }

            try
            {
                var meta = ReadMeta(files);
                if (meta is null)
                {
                    return null;
                }

                var values = ReadValues(files);
                _fileDepth.TryAdd(files.Display("values.yaml"), depth);
                var subcharts = new List<ChartNode>();
                foreach (var entry in files.ListSubcharts())
                {
                    ChartNode? child;
                    if (entry.IsArchive)
                    {
                        var relative = $"charts/{entry.Name}";
                        var bytes = files.Read(relative);
                        if (bytes is null)
                        {
                            continue;
                        }

                        using var stream = new MemoryStream(bytes, writable: false);
                        ArchiveChartFiles archive;
                        try
                        {
                            archive = ArchiveChartFiles.Open(stream, files.Display(relative), files.Display(relative), options);
                        }
                        catch (InputException ex)
                        {
                            Errors.Add(ex.Message);
                            continue;
                        }

                        child = Load(archive, depth + 1);
                    }
                    else
                    {
                        child = Load(files.Subdirectory(entry.Name), depth + 1);
                    }

                    if (child is not null)
                    {
                        subcharts.Add(child);
                    }
                }

                return new ChartNode(meta, values ?? new YMapping(files.Display("values.yaml"), 1), subcharts);
            }
            catch (InputException ex)
            {
                Errors.Add(ex.Message);
                return null;
            }
        }

        private ChartMeta? ReadMeta(ChartFiles files)
        {
            var file = files.Display("Chart.yaml");
            var bytes = files.Read("Chart.yaml");
            if (bytes is null)
            {
                Errors.Add($"{file}: Chart.yaml is missing");
                return null;
            }

            var root = ParseYaml(bytes, file);
            if (root is not YMapping chart)
            {
                Errors.Add($"{file}:1: expected a mapping with name and version");
                return null;
            }

            var before = Errors.Count;
            var name = RequiredText(chart, "name", file);
            var version = RequiredText(chart, "version", file);
            var appVersion = chart.GetText("appVersion");
            var dependencies = ReadDependencies(chart.Get("dependencies"), file);
            if (dependencies.Count == 0 && files.Read("requirements.yaml") is { } requirements)
            {
                var requirementsFile = files.Display("requirements.yaml");
                if (ParseYaml(requirements, requirementsFile) is YMapping req)
                {
                    dependencies = ReadDependencies(req.Get("dependencies"), requirementsFile);
                }
            }

            if (Errors.Count > before || name is null || version is null)
            {
                return null;
            }

            return new ChartMeta(name, version, appVersion, dependencies, file);
        }

        private string? RequiredText(YMapping mapping, string key, string file)
        {
            var text = mapping.GetText(key);
            if (string.IsNullOrWhiteSpace(text))
            {
                Errors.Add(CultureInvariant($"{file}:{(mapping.Get(key) ?? mapping).Line}: {key}: required, must be a non-empty string"));
                return null;
            }

            return text.Trim();
        }

        private List<Dependency> ReadDependencies(YNode? node, string file)
        {
            var result = new List<Dependency>();
            if (node is null or YScalar { IsNull: true })
            {
                return result;
            }

            if (node is not YSequence sequence)
            {
                Errors.Add(CultureInvariant($"{file}:{node.Line}: dependencies: expected a sequence, got a {node.KindName}"));
                return result;
            }

            for (var i = 0; i < sequence.Items.Count; i++)
            {
                if (sequence.Items[i] is not YMapping dep)
                {
                    Errors.Add(CultureInvariant($"{file}:{sequence.Items[i].Line}: dependencies[{i}]: expected a mapping"));
                    continue;
                }

                var name = dep.GetText("name");
                if (string.IsNullOrWhiteSpace(name))
                {
                    Errors.Add(CultureInvariant($"{file}:{dep.Line}: dependencies[{i}].name: required"));
                    continue;
                }

                var tags = dep.Get("tags") is YSequence tagList
                    ? tagList.Items.OfType<YScalar>().Select(t => t.Text).OfType<string>().ToList()
                    : [];
                result.Add(new Dependency(name.Trim(), dep.GetText("version"), NullIfBlank(dep.GetText("alias")), NullIfBlank(dep.GetText("condition")), tags));
            }

            return result;
        }

        private YMapping? ReadValues(ChartFiles files)
        {
            var file = files.Display("values.yaml");
            var bytes = files.Read("values.yaml");
            if (bytes is null)
            {
                return null;
            }

            var root = ParseYaml(bytes, file, allowMultipleDocuments: true);
            switch (root)
            {
                case null:
                    return null;
                case YMapping mapping:
                    return mapping;
                default:
                    Errors.Add(CultureInvariant($"{file}:{root.Line}: values must be a mapping, got a {root.KindName}"));
                    return null;
            }
        }

        private static YNode? ParseYaml(byte[] bytes, string file, bool allowMultipleDocuments = false)
        {
            string text;
            using (var reader = new StreamReader(new MemoryStream(bytes), new UTF8Encoding(false, throwOnInvalidBytes: true), detectEncodingFromByteOrderMarks: true))
            {
                try
                {
                    text = reader.ReadToEnd();
                }
                catch (DecoderFallbackException ex)
                {
                    throw new InputException($"{file}: not valid UTF-8", ex);
                }
            }

            try
            {
                return YamlTree.Parse(text, file, allowMultipleDocuments);
            }
            catch (YamlTreeException ex)
            {
                throw new InputException(ex.Message, ex);
            }
        }

        // ---------------------------------------------------------------- values

        public void Process(ChartNode node, Placement placement, YMapping? overrides, YMapping? parentGlobal, YMapping? topTags)
        {
            var effective = Coalesce(overrides, node.Values);
            var ownGlobal = effective.Get("global") as YMapping;
            var global = parentGlobal is null ? ownGlobal ?? new YMapping(node.Meta.File, 1) : Coalesce(parentGlobal, ownGlobal);
            effective = WithEntry(effective, "global", global);
            topTags ??= effective.Get("tags") as YMapping;

            var enabled = placement.Enabled && !IsFalse(effective.Get("enabled"));
            var scope = new ChartScope(node, placement with { Enabled = enabled }, global);
            Charts.Add(new ScannedChart
            {
                ChartPath = placement.ChartPath,
                Name = node.Meta.Name,
                Version = node.Meta.Version,
                AppVersion = node.Meta.AppVersion,
                Alias = placement.Alias,
                ValuesPrefix = placement.Prefix,
                File = node.Meta.File,
                Enabled = enabled,
                DeclaresGlobalImageRegistry = global.ContainsKey("imageRegistry"),
            });
            var children = ResolveChildren(node);
            var childKeys = children.Select(c => c.Key).ToHashSet(StringComparer.Ordinal);

            // The umbrella's globals are scanned once at the top; a subchart sees the same globals, so skipping them avoids duplicates.
            foreach (var entry in effective.Effective)
            {
                if (childKeys.Contains(entry.KeyText!) || (placement.Depth > 0 && entry.KeyText == "global"))
                {
                    continue;
                }

                VisitEntry(scope, entry.KeyText!, entry.Value, placement.Prefix, enabled);
            }

            foreach (var (key, child, dependency) in children)
            {
                var childOverrides = effective.Get(key) as YMapping;
                var childEnabled = enabled && DependencyEnabled(dependency, key, effective, Coalesce(childOverrides, child.Values), topTags);
                Process(
                    child,
                    new Placement(key, dependency?.Alias, ValuesPath.AppendKey(placement.Prefix, key), $"{placement.ChartPath}/{key}", childEnabled, placement.Depth + 1),
                    childOverrides,
                    global,
                    topTags);
            }
        }

        private List<(string Key, ChartNode Child, Dependency? Dependency)> ResolveChildren(ChartNode node)
        {
            var result = new List<(string Key, ChartNode Child, Dependency? Dependency)>();
            var used = new HashSet<ChartNode>(ReferenceEqualityComparer.Instance);
            foreach (var dependency in node.Meta.Dependencies)
            {
                var candidates = node.Subcharts.Where(s => s.Meta.Name == dependency.Name).ToList();
                if (candidates.Count > 1)
                {
                    candidates = candidates.Where(s => s.Meta.Version == dependency.Version).ToList();
                }

                if (candidates.Count != 1)
                {
                    Errors.Add(candidates.Count == 0
                        ? $"{node.Meta.File}: dependency '{dependency.Name}' is not present under charts/ (package the chart after 'helm dependency build')"
                        : $"{node.Meta.File}: dependency '{dependency.Name}' matches several charts under charts/ and none has version '{dependency.Version}'");
                    continue;
                }

                var key = dependency.Alias ?? dependency.Name;
                if (result.Any(r => r.Key == key))
                {
                    Errors.Add($"{node.Meta.File}: two dependencies use the values key '{key}'");
                    continue;
                }

                result.Add((key, candidates[0], dependency));
                used.Add(candidates[0]);
            }

            // Helm also loads charts under charts/ that Chart.yaml does not list; they are always enabled.
            foreach (var subchart in node.Subcharts.Where(s => !used.Contains(s)))
            {
                if (result.Any(r => r.Key == subchart.Meta.Name))
                {
                    continue;
                }

                result.Add((subchart.Meta.Name, subchart, null));
            }

            return result;
        }

        private static bool DependencyEnabled(Dependency? dependency, string key, YMapping parentValues, YMapping childValues, YMapping? topTags)
        {
            if (dependency is null)
            {
                return true;
            }

            // Helm: the first condition path that resolves to a boolean decides; otherwise tags; otherwise enabled.
            if (dependency.Condition is { } condition)
            {
                foreach (var path in condition.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    var segments = path.Split('.');
                    var value = segments[0] == key && segments.Length > 1
                        ? Lookup(childValues, segments.AsSpan(1))
                        : Lookup(parentValues, segments);
                    if (value is YScalar scalar && scalar.AsBoolean() is { } decided)
                    {
                        return decided;
                    }
                }
            }

            if (dependency.Tags.Count > 0 && topTags is not null)
            {
                var states = dependency.Tags.Select(t => (topTags.Get(t) as YScalar)?.AsBoolean()).Where(b => b is not null).ToList();
                if (states.Count > 0)
                {
                    return states.Any(b => b == true);
                }
            }

            return true;
        }

        private static YNode? Lookup(YMapping mapping, ReadOnlySpan<string> segments)
        {
            YNode? current = mapping;
            foreach (var segment in segments)
            {
                current = (current as YMapping)?.Get(segment);
                if (current is null)
                {
                    return null;
                }
            }

            return current;
        }

        private void VisitEntry(ChartScope scope, string key, YNode value, string path, bool enabled)
        {
            var childPath = ValuesPath.AppendKey(path, key);
            if (key == "image" && TryImage(scope, value, childPath, enabled))
            {
                return;
            }

            Visit(scope, value, childPath, enabled);
        }

        private void Visit(ChartScope scope, YNode node, string path, bool enabled)
        {
            if (++_visited > MaxVisitedNodes)
            {
                throw new InputException($"{node.File}: values too large or too many YAML aliases (more than {MaxVisitedNodes} nodes visited)");
            }

            switch (node)
            {
                case YMapping raw:
                    var mapping = Resolve(raw);
                    var here = enabled && !IsFalse(mapping.Get("enabled"));
                    foreach (var entry in mapping.Effective)
                    {
                        VisitEntry(scope, entry.KeyText!, entry.Value, path, here);
                    }

                    break;
                case YSequence sequence:
                    for (var i = 0; i < sequence.Items.Count; i++)
                    {
                        Visit(scope, sequence.Items[i], ValuesPath.AppendIndex(path, i), enabled);
                    }

                    break;
            }
        }

        /// <summary>Handles the value of a key named <c>image</c>; false when it is not an image (then the caller descends into it).</summary>
        private bool TryImage(ChartScope scope, YNode value, string path, bool enabled)
        {
            if (value is YScalar scalar)
            {
                if (scalar.IsNull || IsNonStringPlain(scalar) || string.IsNullOrWhiteSpace(scalar.Value))
                {
                    return true;
                }

                Record(scope, ImageFindingKind.FullString, path, scalar.Value, scalar, enabled, usesGlobal: false, tagFromAppVersion: false);
                return true;
            }

            if (value is not YMapping raw)
            {
                return false;
            }

            var mapping = Resolve(raw);
            if (!mapping.ContainsKey("repository"))
            {
                return false;
            }

            var splitPath = path + ValuesPath.SplitSuffix;
            enabled = enabled && !IsFalse(mapping.Get("enabled"));
            var repositoryNode = mapping.Get("repository");
            if (repositoryNode is not YScalar repositoryScalar)
            {
                AddInvalid(scope, splitPath, mapping, $"<{repositoryNode?.KindName}>", "image.repository must be a string", enabled);
                return true;
            }

            var repository = repositoryScalar.Text?.Trim();
            if (string.IsNullOrEmpty(repository))
            {
                // An image slot left empty on purpose (optional sidecar): nothing to mirror.
                return true;
            }

            var contributors = new List<YScalar> { repositoryScalar };
            string? Part(string key)
            {
                if (mapping.Get(key) is YScalar s && !string.IsNullOrWhiteSpace(s.Text))
                {
                    contributors.Add(s);
                    return s.Text.Trim();
                }

                return null;
            }

            var registry = Part("registry");
            var tag = Part("tag");
            var digest = Part("digest");
            var usesGlobal = scope.Global.ContainsKey("imageRegistry");
            if (scope.Global.Get("imageRegistry") is YScalar globalRegistry && !string.IsNullOrWhiteSpace(globalRegistry.Text))
            {
                registry = globalRegistry.Text.Trim();
                contributors.Add(globalRegistry);
            }

            var tagFromAppVersion = false;
            if (tag is null && digest is null && !string.IsNullOrWhiteSpace(scope.Node.Meta.AppVersion))
            {
                tag = scope.Node.Meta.AppVersion.Trim();
                tagFromAppVersion = true;
            }

            var composed = new StringBuilder();
            if (registry is not null)
            {
                composed.Append(registry.TrimEnd('/')).Append('/');
            }

            composed.Append(repository);
            if (tag is not null)
            {
                composed.Append(':').Append(tag);
            }

            if (digest is not null)
            {
                composed.Append('@').Append(digest);
            }

            // Blame the file closest to the umbrella: that is where the effective value was set.
            var blame = contributors.OrderBy(c => _fileDepth.GetValueOrDefault(c.File, int.MaxValue)).First();
            Record(scope, ImageFindingKind.Split, splitPath, composed.ToString(), blame, enabled, usesGlobal, tagFromAppVersion);
            return true;
        }

        private void Record(ChartScope scope, ImageFindingKind kind, string path, string raw, YNode at, bool enabled, bool usesGlobal, bool tagFromAppVersion)
        {
            if (raw.Contains("{{", StringComparison.Ordinal))
            {
                AddInvalid(scope, path, at, raw, $"'{raw}' is a template expression; charts are read as data and templates are not rendered", enabled);
                return;
            }

            if (!Reference.TryParse(raw, out var reference, out var error))
            {
                AddInvalid(scope, path, at, raw, error, enabled);
                return;
            }

            Findings.Add(new ChartImageFinding
            {
                ChartName = scope.Node.Meta.Name,
                ChartVersion = scope.Node.Meta.Version,
                ChartPath = scope.Placement.ChartPath,
                File = at.File,
                Line = at.Line,
                ValuesPath = path,
                Kind = kind,
                Reference = reference,
                Enabled = enabled,
                UsesGlobalImageRegistry = usesGlobal && kind == ImageFindingKind.Split,
                TagFromAppVersion = tagFromAppVersion,
            });
        }

        private void AddInvalid(ChartScope scope, string path, YNode at, string raw, string error, bool enabled) =>
            Invalid.Add(new InvalidImageReference
            {
                ChartName = scope.Node.Meta.Name,
                ChartVersion = scope.Node.Meta.Version,
                ChartPath = scope.Placement.ChartPath,
                File = at.File,
                Line = at.Line,
                ValuesPath = path,
                Raw = raw,
                Error = error,
                Enabled = enabled,
            });

        /// <summary>Helm's coalescing: <paramref name="overrides"/> (parent) wins; nested mappings merge; a parent null deletes the key.</summary>
        private YMapping Coalesce(YMapping? overrides, YMapping? defaults)
        {
            if (overrides is null)
            {
                return defaults is null ? new YMapping("<none>", 1) : Resolve(defaults);
            }

            var over = Resolve(overrides);
            if (defaults is null)
            {
                return over;
            }

            var under = Resolve(defaults);
            var result = new YMapping(under.File, under.Line);
            foreach (var entry in under.Effective)
            {
                var overriding = over.Get(entry.KeyText!);
                if (overriding is null)
                {
                    result.Add(entry);
                }
                else if (overriding is YScalar { IsNull: true })
                {
                    // deleted by the parent
                }
                else if (overriding is YMapping overMap && entry.Value is YMapping underMap)
                {
                    result.Add(entry with { Value = Coalesce(overMap, underMap) });
                }
                else
                {
                    result.Add(entry with { Value = overriding });
                }
            }

            foreach (var entry in over.Effective)
            {
                if (!under.ContainsKey(entry.KeyText!) && entry.Value is not YScalar { IsNull: true })
                {
                    result.Add(entry);
                }
            }

            return result;
        }

        private static YMapping WithEntry(YMapping mapping, string key, YNode value)
        {
            var result = new YMapping(mapping.File, mapping.Line);
            var replaced = false;
            foreach (var entry in mapping.Effective)
            {
                if (entry.KeyText == key)
                {
                    result.Add(entry with { Value = value });
                    replaced = true;
                }
                else
                {
                    result.Add(entry);
                }
            }

            if (!replaced)
            {
                result.Add(new YEntry(new YScalar(mapping.File, mapping.Line, key, YamlDotNet.Core.ScalarStyle.Plain, tag: null), value));
            }

            return result;
        }

        /// <summary>Applies YAML merge keys (<c>&lt;&lt;: *base</c>) and drops non-scalar keys; explicit keys win over merged ones.</summary>
        private YMapping Resolve(YMapping mapping)
        {
            if (!mapping.ContainsKey("<<") && mapping.Entries.All(e => e.KeyText is not null))
            {
                return mapping;
            }

            if (_resolved.TryGetValue(mapping, out var cached))
            {
                return cached;
            }

            var result = new YMapping(mapping.File, mapping.Line);
            _resolved[mapping] = result;
            foreach (var entry in mapping.Effective)
            {
                if (entry.KeyText != "<<")
                {
                    result.Add(entry);
                }
            }

            var sources = mapping.Get("<<") switch
            {
                YMapping single => [single],
                YSequence many => many.Items.OfType<YMapping>().ToList(),
                _ => new List<YMapping>(),
            };
            foreach (var source in sources)
            {
                foreach (var entry in Resolve(source).Effective)
                {
                    if (!result.ContainsKey(entry.KeyText!))
                    {
                        result.Add(entry);
                    }
                }
            }

            return result;
        }

        private static bool IsFalse(YNode? node) => node is YScalar scalar && scalar.AsBoolean() == false;

        private static bool IsNonStringPlain(YScalar scalar) =>
            scalar.IsPlain && scalar.Tag is null && (scalar.AsBoolean() is not null || NumberPattern().IsMatch(scalar.Value));

        private static string? NullIfBlank(string? text) => string.IsNullOrWhiteSpace(text) ? null : text.Trim();
    }
}
