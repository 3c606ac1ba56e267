using System.Text;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Yaml;

namespace OpenLm.Mirror.PlatformSpec;

/// <summary>An image listed in the platform manifest.</summary>
public sealed record ManifestImage
{
    /// <summary>The normalised reference (a relative <c>name</c> resolved under the manifest's <c>source</c>).</summary>
    public required Reference Reference { get; init; }

    /// <summary>The <c>name</c> as written (relative to <c>source</c>), or null when the entry used <c>ref</c>.</summary>
    public string? Name { get; init; }

    /// <summary>Helm values paths that hold this image (the <c>values</c> field), as written.</summary>
    public required IReadOnlyList<string> ValuesPaths { get; init; }

    /// <summary>Position in the <c>images</c> list.</summary>
    public required int Index { get; init; }

    /// <summary>1-based line of the entry in the manifest file.</summary>
    public required int Line { get; init; }
}

/// <summary>A chart listed in the platform manifest: a local <c>path</c>, an OCI <c>ref</c> or a Helm repository's <c>repo</c> + <c>name</c> + <c>version</c>.</summary>
public sealed record ManifestChart
{
    /// <summary>Where the chart comes from.</summary>
    public required ChartSources.ChartSource Source { get; init; }

    /// <summary>The path as written in the manifest; null for a chart from a registry or repository.</summary>
    public string? Path => (Source as ChartSources.LocalChartSource)?.Path;

    /// <summary>Absolute path (relative paths are resolved against the manifest's directory); null for a chart from a registry or repository.</summary>
    public string? FullPath => (Source as ChartSources.LocalChartSource)?.FullPath;

    public required int Index { get; init; }

    public required int Line { get; init; }
}

/// <summary>
/// The platform manifest (<c>apiVersion: mirror.openlm.io/v1</c>, <c>kind: Platform</c>): which images and
/// charts make up one release of the platform. See docs/platform-manifest.md.
/// </summary>
public sealed class PlatformManifest
{
    public const string ApiVersionV1 = "mirror.openlm.io/v1";
    public const string KindPlatform = "Platform";
    public const long MaxFileBytes = 4 * 1024 * 1024;

    private static readonly string[] TopLevelKeys = ["apiVersion", "kind", "name", "version", "source", "platforms", "images", "charts", "registryMirrors"];
    private static readonly string[] ImageKeys = ["name", "ref", "tag", "digest", "values"];
    private static readonly string[] ChartKeys = ["path", "ref", "repo", "name", "version"];

    private PlatformManifest(string fileName, string baseDirectory, string name, string version, string source, IReadOnlyList<Oci.Platform> platforms, IReadOnlyList<ManifestImage> images, IReadOnlyList<ManifestChart> charts, Registry.RegistryMirrors mirrors)
    {
        RegistryMirrors = mirrors;
        FileName = fileName;
        BaseDirectory = baseDirectory;
        Name = name;
        Version = version;
        Source = source;
        Platforms = platforms;
        Images = images;
        Charts = charts;
    }

    /// <summary>The file name used in messages.</summary>
    public string FileName { get; }

    /// <summary>Directory that relative chart paths are resolved against.</summary>
    public string BaseDirectory { get; }

    public string Name { get; }

    public string Version { get; }

    /// <summary>Registry and namespace relative image names live under, normalised (e.g. <c>public.ecr.aws/r3q3q2f4</c>).</summary>
    public string Source { get; }

    /// <summary>Platforms to keep from multi-platform images; empty means keep all.</summary>
    public IReadOnlyList<Oci.Platform> Platforms { get; }

    public IReadOnlyList<ManifestImage> Images { get; }

    public IReadOnlyList<ManifestChart> Charts { get; }

    /// <summary>Pull-through mirrors by source registry (<c>registryMirrors: {SOURCE: MIRROR[/prefix]}</c>); none when absent.</summary>
    public Registry.RegistryMirrors RegistryMirrors { get; }

    /// <summary>Reads and validates a manifest file; relative chart paths are resolved against its directory.</summary>
    public static PlatformManifest Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = System.IO.Path.GetFullPath(path);
        string text;
        try
        {
            var info = new FileInfo(full);
            if (!info.Exists)
            {
                throw new InputException($"platform manifest '{path}' does not exist");
            }

            if (info.Length > MaxFileBytes)
            {
                throw new InputException($"{path}: {info.Length} bytes is larger than the {MaxFileBytes} byte limit for a platform manifest");
            }

            text = File.ReadAllText(full, new UTF8Encoding(false, throwOnInvalidBytes: true));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or DecoderFallbackException)
        {
            throw new InputException($"{path}: cannot read platform manifest: {ex.Message}", ex);
        }

        return Parse(text, path, System.IO.Path.GetDirectoryName(full)!);
    }

    /// <summary>Parses and validates manifest text. <paramref name="fileName"/> is used in messages only.</summary>
    /// <exception cref="InputException">Every problem found, one per line, each as <c>file:line: field: message</c>.</exception>
    public static PlatformManifest Parse(string text, string fileName, string baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(fileName);
        ArgumentNullException.ThrowIfNull(baseDirectory);
        var reader = new Reader(fileName, System.IO.Path.GetFullPath(baseDirectory));
        YNode? root;
        try
        {
            root = YamlTree.Parse(text, fileName);
        }
        catch (YamlTreeException ex)
        {
            throw new InputException(ex.Message, ex);
        }

        var manifest = reader.Read(root);
        if (reader.Errors.Count > 0 || manifest is null)
        {
            throw new InputException(string.Join('\n', reader.Errors.OrderBy(e => e.Line).Select(e => e.Text)));
        }

        return manifest;
    }

    /// <summary>Resolves a relative image name under <paramref name="source"/>: <c>olm-server</c> + <c>1.2</c> → <c>public.ecr.aws/r3q3q2f4/olm-server:1.2</c>.</summary>
    public static bool TryResolveName(string source, string name, string? tag, string? digest, out Reference? reference, out string error)
    {
        var text = $"{source}/{name}{(tag is null ? string.Empty : ":" + tag)}{(digest is null ? string.Empty : "@" + digest)}";
        return Reference.TryParse(text, out reference, out error);
    }

    private sealed record Error(int Line, string Text);

    private sealed class Reader(string fileName, string baseDirectory)
    {
        public List<Error> Errors { get; } = [];

        private void Add(YNode at, string field, string message) =>
            Errors.Add(new Error(at.Line, FormattableString.Invariant($"{fileName}:{at.Line}: {field}: {message}")));

        public PlatformManifest? Read(YNode? root)
        {
            if (root is null)
            {
                Errors.Add(new Error(1, $"{fileName}:1: the file is empty; expected a mapping with apiVersion: {ApiVersionV1} and kind: {KindPlatform}"));
                return null;
            }

            if (root is not YMapping top)
            {
                Add(root, "(root)", $"expected a mapping, got a {root.KindName}");
                return null;
            }

            CheckKeys(top, string.Empty, TopLevelKeys);
            var apiVersion = RequiredString(top, string.Empty, "apiVersion");
            if (apiVersion is not null && apiVersion != ApiVersionV1)
            {
                Add(top.Get("apiVersion")!, "apiVersion", $"unsupported apiVersion '{apiVersion}' (expected {ApiVersionV1})");
            }

            var kind = RequiredString(top, string.Empty, "kind");
            if (kind is not null && kind != KindPlatform)
            {
                Add(top.Get("kind")!, "kind", $"unsupported kind '{kind}' (expected {KindPlatform})");
            }

            var name = RequiredString(top, string.Empty, "name");
            var version = RequiredString(top, string.Empty, "version");
            var source = ReadSource(top);
            var platforms = ReadPlatforms(top);
            var images = ReadImages(top, source);
            var charts = ReadCharts(top);
            var mirrors = ReadMirrors(top);
            if (top.Get("images") is null && top.Get("charts") is null)
            {
                Add(top, "images", "a platform manifest needs at least one of 'images' or 'charts'");
            }

            if (Errors.Count > 0 || name is null || version is null || source is null)
            {
                return null;
            }

            return new PlatformManifest(fileName, baseDirectory, name, version, source, platforms, images, charts, mirrors);
        }

        private Registry.RegistryMirrors ReadMirrors(YMapping top)
        {
            var node = top.Get("registryMirrors");
            if (node is null || node is YScalar { IsNull: true })
            {
                return Registry.RegistryMirrors.None;
            }

            if (node is not YMapping mapping)
            {
                Add(node, "registryMirrors", $"expected a mapping of source registry to mirror (e.g. public.ecr.aws: mirror.corp:5000/ecr-cache), got a {node.KindName}");
                return Registry.RegistryMirrors.None;
            }

            var rules = new List<string>();
            foreach (var entry in mapping.Effective)
            {
                if (entry.Value is not YScalar { Text: { Length: > 0 } target })
                {
                    Add(entry.Value, $"registryMirrors.{entry.KeyText}", $"expected a mirror registry with an optional repository prefix (e.g. mirror.corp:5000/ecr-cache), got a {entry.Value.KindName}");
                    continue;
                }

                var rule = $"{entry.KeyText}={target}";
                try
                {
                    rules.Add(Registry.RegistryMirrors.Parse([rule], "mirror").All.Single().ToString());
                }
                catch (InputException ex)
                {
                    Add(entry.Value, $"registryMirrors.{entry.KeyText}", ex.Message);
                }
            }

            return Registry.RegistryMirrors.Parse(rules, "registryMirrors");
        }

        private string? ReadSource(YMapping top)
        {
            var source = RequiredString(top, string.Empty, "source");
            if (source is null)
            {
                return null;
            }

            var node = top.Get("source")!;
            var trimmed = source.TrimEnd('/');
            var first = trimmed.Split('/')[0];
            if (!(first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal) || first == "localhost"))
            {
                Add(node, "source", $"'{source}' must start with a registry host (e.g. public.ecr.aws/r3q3q2f4)");
                return null;
            }

            if (!Reference.TryParse(trimmed + "/x", out var probe, out var error) || probe.Tag != Reference.DefaultTag || probe.Digest is not null)
            {
                Add(node, "source", $"'{source}' is not a registry/namespace prefix: {error}");
                return null;
            }

            // Registry aliases are folded (index.docker.io → docker.io); the namespace is kept as written.
            var slash = trimmed.IndexOf('/', StringComparison.Ordinal);
            return slash < 0 ? probe.Registry : $"{probe.Registry}/{trimmed[(slash + 1)..]}";
        }

        private List<Oci.Platform> ReadPlatforms(YMapping top)
        {
            var result = new List<Oci.Platform>();
            var node = top.Get("platforms");
            if (node is null || node is YScalar { IsNull: true })
            {
                return result;
            }

            if (node is not YSequence sequence)
            {
                Add(node, "platforms", $"expected a sequence of os/arch strings, got a {node.KindName}");
                return result;
            }

            if (sequence.Items.Count == 0)
            {
                Add(node, "platforms", "empty list; omit the field to keep every platform");
            }

            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < sequence.Items.Count; i++)
            {
                var item = sequence.Items[i];
                var field = FormattableString.Invariant($"platforms[{i}]");
                if (item is not YScalar { Text: { } text })
                {
                    Add(item, field, $"expected an os/arch string, got a {item.KindName}");
                    continue;
                }

                try
                {
                    var platform = Oci.Platform.Parse(text);
                    if (!seen.Add(platform.ToString()))
                    {
                        Add(item, field, $"duplicate platform '{platform}'");
                        continue;
                    }

                    result.Add(platform);
                }
                catch (InputException ex)
                {
                    Add(item, field, ex.Message);
                }
            }

            return result;
        }

        private List<ManifestImage> ReadImages(YMapping top, string? source)
        {
            var result = new List<ManifestImage>();
            var node = top.Get("images");
            if (node is null || node is YScalar { IsNull: true })
            {
                return result;
            }

            if (node is not YSequence sequence)
            {
                Add(node, "images", $"expected a sequence, got a {node.KindName}");
                return result;
            }

            var seen = new Dictionary<string, (int Index, int Line)>(StringComparer.Ordinal);
            for (var i = 0; i < sequence.Items.Count; i++)
            {
                var field = FormattableString.Invariant($"images[{i}]");
                if (sequence.Items[i] is not YMapping item)
                {
                    Add(sequence.Items[i], field, $"expected a mapping with name+tag/digest or ref, got a {sequence.Items[i].KindName}");
                    continue;
                }

                CheckKeys(item, field, ImageKeys);
                var name = OptionalString(item, field, "name");
                var reference = OptionalString(item, field, "ref");
                var tag = OptionalString(item, field, "tag");
                var digest = OptionalString(item, field, "digest");
                var values = ReadValuesPaths(item, field);
                Reference? resolved = null;

                if (digest is not null && !Digest.TryParse(digest, out _, out var digestError))
                {
                    Add(item.Get("digest")!, $"{field}.digest", digestError);
                    digest = null;
                }

                if (tag is not null && !Reference.IsValidTag(tag))
                {
                    Add(item.Get("tag")!, $"{field}.tag", $"tag '{tag}' is not valid (letters, digits, '_', '.', '-'; at most 128 characters; not starting with '.' or '-')");
                    tag = null;
                }

                if ((name is null) == (reference is null))
                {
                    Add(item, field, name is null
                        ? "needs 'name' (relative to source, with tag or digest) or 'ref' (an absolute reference)"
                        : "has both 'name' and 'ref'; use exactly one");
                }
                else if (name is not null)
                {
                    var nameNode = item.Get("name")!;
                    if (name.Contains(':', StringComparison.Ordinal) || name.Contains('@', StringComparison.Ordinal))
                    {
                        Add(nameNode, $"{field}.name", $"'{name}' must be a repository name without tag or digest; put them in 'tag' / 'digest'");
                    }
                    else if (tag is null && digest is null)
                    {
                        if (!item.ContainsKey("tag") && !item.ContainsKey("digest"))
                        {
                            Add(item, $"{field}.tag", $"'{name}' needs a 'tag' or a 'digest' (or both, to pin the tag)");
                        }
                    }
                    else if (source is not null)
                    {
                        if (TryResolveName(source, name, tag, digest, out var r, out var error))
                        {
                            resolved = r;
                        }
                        else
                        {
                            Add(nameNode, $"{field}.name", error);
                        }
                    }
                }
                else
                {
                    var refNode = item.Get("ref")!;
                    if (item.ContainsKey("tag") || item.ContainsKey("digest"))
                    {
                        Add(item.Get("tag") ?? item.Get("digest")!, field, "'tag' and 'digest' go with 'name'; with 'ref' write them in the reference (name:tag@digest)");
                    }
                    else if (!Reference.TryParse(reference, out var r, out var error))
                    {
                        Add(refNode, $"{field}.ref", error);
                    }
                    else if (r.Digest is null && !HasExplicitTag(reference!))
                    {
                        Add(refNode, $"{field}.ref", $"'{reference}' has no tag or digest; pin a version (':latest' must be written out)");
                    }
                    else
                    {
                        resolved = r;
                    }
                }

                if (resolved is null)
                {
                    continue;
                }

                var key = resolved.ToString();
                if (seen.TryGetValue(key, out var first))
                {
                    Add(item, field, FormattableString.Invariant($"duplicate image '{key}' (already listed as images[{first.Index}] at line {first.Line})"));
                    continue;
                }

                seen[key] = (i, item.Line);
                result.Add(new ManifestImage { Reference = resolved, Name = name, ValuesPaths = values, Index = i, Line = item.Line });
            }

            return result;
        }

        private List<string> ReadValuesPaths(YMapping item, string field)
        {
            var result = new List<string>();
            var node = item.Get("values");
            if (node is null || node is YScalar { IsNull: true })
            {
                return result;
            }

            if (node is not YSequence sequence)
            {
                Add(node, $"{field}.values", $"expected a sequence of Helm values paths, got a {node.KindName}");
                return result;
            }

            for (var i = 0; i < sequence.Items.Count; i++)
            {
                var valueField = FormattableString.Invariant($"{field}.values[{i}]");
                if (sequence.Items[i] is not YScalar { Text: { } text } || string.IsNullOrWhiteSpace(text))
                {
                    Add(sequence.Items[i], valueField, "expected a non-empty values path such as server.deployment.image");
                    continue;
                }

                try
                {
                    ValuesPath.Parse(text);
                }
                catch (InputException ex)
                {
                    Add(sequence.Items[i], valueField, ex.Message);
                    continue;
                }

                if (text.Any(char.IsWhiteSpace))
                {
                    Add(sequence.Items[i], valueField, $"values path '{text}' contains whitespace");
                    continue;
                }

                if (result.Contains(text, StringComparer.Ordinal))
                {
                    Add(sequence.Items[i], valueField, $"duplicate values path '{text}'");
                    continue;
                }

                result.Add(text);
            }

            return result;
        }

        private List<ManifestChart> ReadCharts(YMapping top)
        {
            var result = new List<ManifestChart>();
            var node = top.Get("charts");
            if (node is null || node is YScalar { IsNull: true })
            {
                return result;
            }

            if (node is not YSequence sequence)
            {
                Add(node, "charts", $"expected a sequence of {{path: ...}}, {{ref: oci://...}} or {{repo: https://..., name: ..., version: ...}} mappings, got a {node.KindName}");
                return result;
            }

            var seen = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < sequence.Items.Count; i++)
            {
                var field = FormattableString.Invariant($"charts[{i}]");
                if (sequence.Items[i] is not YMapping item)
                {
                    Add(sequence.Items[i], field, $"expected a mapping with 'path', 'ref' or 'repo', got a {sequence.Items[i].KindName}");
                    continue;
                }

                CheckKeys(item, field, ChartKeys);
                var source = ReadChartSource(item, field);
                if (source is null)
                {
                    continue;
                }

                var key = source is ChartSources.LocalChartSource local ? local.FullPath : source.ToString();
                if (seen.TryGetValue(key, out var firstLine))
                {
                    Add(item, field, FormattableString.Invariant($"duplicate chart '{source}' (already listed at line {firstLine})"));
                    continue;
                }

                seen[key] = item.Line;
                result.Add(new ManifestChart { Source = source, Index = i, Line = item.Line });
            }

            return result;
        }

        private ChartSources.ChartSource? ReadChartSource(YMapping item, string field)
        {
            var given = new[] { "path", "ref", "repo" }.Where(item.ContainsKey).ToList();
            if (given.Count != 1)
            {
                Add(item, field, given.Count == 0
                    ? "needs 'path' (a local chart), 'ref' (oci://host/path/chart:version) or 'repo' (a Helm repository URL, with 'name' and 'version')"
                    : $"has both {string.Join(" and ", given.Select(g => $"'{g}'"))}; use exactly one");
                return null;
            }

            if (given[0] != "repo" && (item.ContainsKey("name") || item.ContainsKey("version")))
            {
                Add(item.Get("name") ?? item.Get("version")!, field, $"'name' and 'version' go with 'repo'; with '{given[0]}' {(given[0] == "ref" ? "write the version as the tag (oci://host/path/chart:version)" : "the chart's own Chart.yaml names it")}");
                return null;
            }

            switch (given[0])
            {
                case "ref":
                {
                    var text = RequiredString(item, field, "ref");
                    if (text is null)
                    {
                        return null;
                    }

                    if (!ChartSources.OciChartSource.TryParse(text, out var oci, out var error))
                    {
                        Add(item.Get("ref")!, $"{field}.ref", error);
                        return null;
                    }

                    return oci;
                }

                case "repo":
                {
                    var text = RequiredString(item, field, "repo");
                    var name = RequiredString(item, field, "name");
                    var version = RequiredString(item, field, "version");
                    if (text is null || name is null || version is null)
                    {
                        return null;
                    }

                    if (!ChartSources.HelmRepositoryChartSource.TryParseRepository(text, out var repository, out var error))
                    {
                        Add(item.Get("repo")!, $"{field}.repo", error);
                        return null;
                    }

                    if (name.Contains('/', StringComparison.Ordinal) || name.Any(char.IsWhiteSpace))
                    {
                        Add(item.Get("name")!, $"{field}.name", $"'{name}' is not a chart name (the name as index.yaml lists it, e.g. openlm)");
                        return null;
                    }

                    return new ChartSources.HelmRepositoryChartSource(repository, name, version);
                }

                default:
                    return ReadLocalChart(item, field);
            }
        }

        private ChartSources.LocalChartSource? ReadLocalChart(YMapping item, string field)
        {
            var path = RequiredString(item, field, "path");
            if (path is null)
            {
                return null;
            }

            var pathNode = item.Get("path")!;
            var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(baseDirectory, path));
            if (Directory.Exists(full))
            {
                if (!File.Exists(System.IO.Path.Combine(full, "Chart.yaml")))
                {
                    Add(pathNode, $"{field}.path", $"'{path}' is a directory without Chart.yaml");
                    return null;
                }
            }
            else if (!File.Exists(full))
            {
                Add(pathNode, $"{field}.path", $"chart '{path}' does not exist (resolved to {full})");
                return null;
            }
            else if (!full.EndsWith(".tgz", StringComparison.OrdinalIgnoreCase) && !full.EndsWith(".tar.gz", StringComparison.OrdinalIgnoreCase))
            {
                Add(pathNode, $"{field}.path", $"'{path}' is neither a chart directory nor a .tgz chart archive");
                return null;
            }

            return new ChartSources.LocalChartSource(path, full);
        }

        private void CheckKeys(YMapping mapping, string field, string[] allowed)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in mapping.Entries)
            {
                var prefix = field.Length == 0 ? string.Empty : field + ".";
                if (entry.KeyText is null)
                {
                    Add(entry.Key, field.Length == 0 ? "(root)" : field, $"keys must be strings, got a {entry.Key.KindName}");
                    continue;
                }

                if (!seen.Add(entry.KeyText))
                {
                    Add(entry.Key, prefix + entry.KeyText, $"duplicate key '{entry.KeyText}'");
                    continue;
                }

                if (!allowed.Contains(entry.KeyText, StringComparer.Ordinal))
                {
                    Add(entry.Key, prefix + entry.KeyText, $"unknown field (expected one of: {string.Join(", ", allowed)})");
                }
            }
        }

        private string? RequiredString(YMapping mapping, string field, string key)
        {
            var qualified = field.Length == 0 ? key : $"{field}.{key}";
            var node = mapping.Get(key);
            if (node is null)
            {
                Add(mapping, qualified, "required field is missing");
                return null;
            }

            return StringValue(node, qualified, required: true);
        }

        private string? OptionalString(YMapping mapping, string field, string key)
        {
            var node = mapping.Get(key);
            return node is null ? null : StringValue(node, $"{field}.{key}", required: true);
        }

        private string? StringValue(YNode node, string field, bool required)
        {
            if (node is not YScalar scalar)
            {
                Add(node, field, $"expected a string, got a {node.KindName}");
                return null;
            }

            if (scalar.Text is not { } text || string.IsNullOrWhiteSpace(text))
            {
                if (required)
                {
                    Add(node, field, "must not be empty");
                }

                return null;
            }

            if (text.Trim() != text)
            {
                Add(node, field, $"'{text}' has leading or trailing whitespace");
                return null;
            }

            return text;
        }

        private static bool HasExplicitTag(string reference)
        {
            var withoutDigest = reference.Split('@')[0];
            var lastSegment = withoutDigest[(withoutDigest.LastIndexOf('/') + 1)..];
            return lastSegment.Contains(':', StringComparison.Ordinal);
        }
    }
}
