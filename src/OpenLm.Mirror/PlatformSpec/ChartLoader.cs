using System.Text;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Yaml;

namespace OpenLm.Mirror.PlatformSpec;

/// <summary>
/// Loads a chart (a directory or a <c>.tgz</c>) with every subchart under <c>charts/</c>, directories or nested
/// archives at any depth, and matches subcharts to the dependencies of Chart.yaml the way Helm does. Problems are
/// collected in <see cref="Errors"/> rather than thrown, so one scan reports all of them.
/// </summary>
internal sealed class ChartLoader(ChartScanOptions options)
{
    private readonly Dictionary<string, int> _valuesFileDepth = new(StringComparer.Ordinal);

    public List<string> Errors { get; } = [];

    /// <summary>
    /// Nesting depth of every values file read (the umbrella's is 0). A value set in a file closer to the umbrella
    /// wins over a subchart default, so that is the file to blame for an image.
    /// </summary>
    public IReadOnlyDictionary<string, int> ValuesFileDepth => _valuesFileDepth;

    /// <summary>Opens <paramref name="chartPath"/>; throws <see cref="InputException"/> when it is missing or unreadable.</summary>
    public static ChartFiles Open(string chartPath, ChartScanOptions options)
    {
        var full = Path.GetFullPath(chartPath);
        if (Directory.Exists(full))
        {
            return new DirectoryChartFiles(full, Path.GetFileName(Path.TrimEndingDirectorySeparator(full)), options.MaxFileBytes);
        }

        if (!File.Exists(full))
        {
            throw new InputException($"chart '{chartPath}' does not exist");
        }

        try
        {
            using var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, FileOptions.SequentialScan);
            return ArchiveChartFiles.Open(stream, string.Empty, chartPath, options);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"chart '{chartPath}': cannot read: {ex.Message}", ex);
        }
    }

    /// <summary>The chart tree, or null when the umbrella itself cannot be loaded (see <see cref="Errors"/>).</summary>
    public LoadedChart? Load(ChartFiles files)
    {
        var root = LoadFiles(files, depth: 0);
        return root is null ? null : Link(root);
    }

    /// <summary>A chart as read from its files, before its subcharts are matched to its dependencies.</summary>
    private sealed record RawChart(ChartMeta Meta, YMapping Values, IReadOnlyList<RawChart> Subcharts);

    private RawChart? LoadFiles(ChartFiles files, int depth)
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
            _valuesFileDepth.TryAdd(files.Display("values.yaml"), depth);
            var subcharts = new List<RawChart>();
            foreach (var entry in files.ListSubcharts())
            {
                if (LoadSubchart(files, entry, depth) is { } child)
                {
                    subcharts.Add(child);
                }
            }

            return new RawChart(meta, values ?? new YMapping(files.Display("values.yaml"), 1), subcharts);
        }
        catch (InputException ex)
        {
            Errors.Add(ex.Message);
            return null;
        }
    }

    private RawChart? LoadSubchart(ChartFiles files, SubchartEntry entry, int depth)
    {
        if (!entry.IsArchive)
        {
            return LoadFiles(files.Subdirectory(entry.Name), depth + 1);
        }

        var relative = $"charts/{entry.Name}";
        var bytes = files.Read(relative);
        if (bytes is null)
        {
            return null;
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
            return null;
        }

        return LoadFiles(archive, depth + 1);
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

        if (ParseYaml(bytes, file) is not YMapping chart)
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
            // Helm 2 charts list their dependencies in requirements.yaml.
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
            Errors.Add(Invariant($"{file}:{(mapping.Get(key) ?? mapping).Line}: {key}: required, must be a non-empty string"));
            return null;
        }

        return text.Trim();
    }

    private List<ChartDependency> ReadDependencies(YNode? node, string file)
    {
        var result = new List<ChartDependency>();
        if (node is null or YScalar { IsNull: true })
        {
            return result;
        }

        if (node is not YSequence sequence)
        {
            Errors.Add(Invariant($"{file}:{node.Line}: dependencies: expected a sequence, got a {node.KindName}"));
            return result;
        }

        for (var i = 0; i < sequence.Items.Count; i++)
        {
            if (ReadDependency(sequence.Items[i], i, file) is { } dependency)
            {
                result.Add(dependency);
            }
        }

        return result;
    }

    private ChartDependency? ReadDependency(YNode item, int index, string file)
    {
        if (item is not YMapping dep)
        {
            Errors.Add(Invariant($"{file}:{item.Line}: dependencies[{index}]: expected a mapping"));
            return null;
        }

        var name = dep.GetText("name");
        if (string.IsNullOrWhiteSpace(name))
        {
            Errors.Add(Invariant($"{file}:{dep.Line}: dependencies[{index}].name: required"));
            return null;
        }

        var tags = dep.Get("tags") is YSequence tagList
            ? tagList.Items.OfType<YScalar>().Select(t => t.Text).OfType<string>().ToList()
            : [];
        return new ChartDependency(name.Trim(), dep.GetText("version"), NullIfBlank(dep.GetText("alias")), NullIfBlank(dep.GetText("condition")), tags);
    }

    private YMapping? ReadValues(ChartFiles files)
    {
        var file = files.Display("values.yaml");
        var bytes = files.Read("values.yaml");
        if (bytes is null)
        {
            return null;
        }

        // Helm reads the first document of values.yaml and ignores the rest.
        var root = ParseYaml(bytes, file, allowMultipleDocuments: true);
        switch (root)
        {
            case null:
                return null;
            case YMapping mapping:
                return mapping;
            default:
                Errors.Add(Invariant($"{file}:{root.Line}: values must be a mapping, got a {root.KindName}"));
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

    /// <summary>
    /// Matches subcharts to dependencies, parents before children (the order in which the charts are then walked,
    /// so problems are listed in the same order). Charts that no dependency and no free name reaches are dropped.
    /// </summary>
    private LoadedChart Link(RawChart chart)
    {
        var links = new List<(string Key, RawChart Child, ChartDependency? Dependency)>();
        var used = new HashSet<RawChart>(ReferenceEqualityComparer.Instance);
        foreach (var dependency in chart.Meta.Dependencies)
        {
            if (Match(chart, dependency, links) is { } child)
            {
                links.Add((dependency.Alias ?? dependency.Name, child, dependency));
                used.Add(child);
            }
        }

        // Helm also loads charts under charts/ that Chart.yaml does not list; they are always enabled.
        foreach (var subchart in chart.Subcharts.Where(s => !used.Contains(s)))
        {
            if (!links.Any(l => l.Key == subchart.Meta.Name))
            {
                links.Add((subchart.Meta.Name, subchart, null));
            }
        }

        // Linked one after another so that a parent's problems are listed before its children's.
        var linked = new List<SubchartLink>(links.Count);
        var result = new LoadedChart(chart.Meta, chart.Values, linked);
        foreach (var (key, child, dependency) in links)
        {
            linked.Add(new SubchartLink(key, Link(child), dependency));
        }

        return result;
    }

    private RawChart? Match(RawChart chart, ChartDependency dependency, List<(string Key, RawChart Child, ChartDependency? Dependency)> links)
    {
        var candidates = chart.Subcharts.Where(s => s.Meta.Name == dependency.Name).ToList();
        if (candidates.Count > 1)
        {
            candidates = candidates.Where(s => s.Meta.Version == dependency.Version).ToList();
        }

        if (candidates.Count != 1)
        {
            Errors.Add(candidates.Count == 0
                ? $"{chart.Meta.File}: dependency '{dependency.Name}' is not present under charts/ (package the chart after 'helm dependency build')"
                : $"{chart.Meta.File}: dependency '{dependency.Name}' matches several charts under charts/ and none has version '{dependency.Version}'");
            return null;
        }

        var key = dependency.Alias ?? dependency.Name;
        if (links.Any(l => l.Key == key))
        {
            Errors.Add($"{chart.Meta.File}: two dependencies use the values key '{key}'");
            return null;
        }

        return candidates[0];
    }

    private static string? NullIfBlank(string? text) => string.IsNullOrWhiteSpace(text) ? null : text.Trim();

    private static string Invariant(FormattableString text) => FormattableString.Invariant(text);
}
