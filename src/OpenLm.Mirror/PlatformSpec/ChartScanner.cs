using System.Text;
using OpenLm.Mirror.Errors;
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
/// The work is split three ways over one <see cref="YNode"/> tree: <see cref="ChartLoader"/> reads the charts,
/// <see cref="ValuesCoalescer"/> computes each chart's effective values and <see cref="ImageFinder"/> searches them.
/// Image rule: a key named exactly <c>image</c> whose value is (a) a string — a whole reference — or
/// (b) a mapping with a non-empty <c>repository</c> — split keys <c>registry</c>/<c>repository</c>/<c>tag</c>/<c>digest</c>,
/// where a non-empty effective <c>global.imageRegistry</c> replaces <c>registry</c>. Other keys (<c>initImage</c>,
/// <c>imageName</c>, …) are not images; list such images in the platform manifest with <c>values:</c>.
/// </remarks>
public static class ChartScanner
{
    public static ChartScanResult Scan(string chartPath, ChartScanOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(chartPath);
        options ??= ChartScanOptions.Default;
        return Scan(ChartLoader.Open(chartPath, options), chartPath, options, out _);
    }

    /// <summary>Scans a chart archive (<c>.tgz</c>) read from a seekable stream, e.g. a chart blob of a bundle.</summary>
    internal static ChartScanResult ScanArchive(Stream archive, string displayName, ChartScanOptions options, out LoadedChart root) =>
        Scan(ArchiveChartFiles.Open(archive, string.Empty, displayName, options), displayName, options, out root);

    private static ChartScanResult Scan(ChartFiles files, string chartPath, ChartScanOptions options, out LoadedChart loaded)
    {
        var loader = new ChartLoader(options);
        var root = loader.Load(files);
        if (root is null)
        {
            throw new InputException(Message(chartPath, loader.Errors, []));
        }

        // One coalescer for both: it caches expanded merge keys, and the finder expands the same mappings again.
        var values = new ValuesCoalescer();
        var walk = new Walk(values, new ImageFinder(values, loader.ValuesFileDepth));
        walk.Chart(root, new Placement(Alias: null, Prefix: string.Empty, ChartPath: root.Meta.Name, Enabled: true, Depth: 0), overrides: null, parentGlobal: null, topTags: null);

        var invalid = walk.Finder.Invalid
            .OrderBy(i => i.ValuesPath, StringComparer.Ordinal)
            .ThenBy(i => i.File, StringComparer.Ordinal)
            .ToList();
        if (loader.Errors.Count > 0 || (invalid.Count > 0 && !options.SkipInvalid))
        {
            throw new InputException(Message(chartPath, loader.Errors, options.SkipInvalid ? [] : invalid));
        }

        loaded = root;
        return new ChartScanResult
        {
            SourcePath = chartPath,
            ChartName = root.Meta.Name,
            ChartVersion = root.Meta.Version,
            Charts = walk.Charts.OrderBy(c => c.ValuesPrefix.Length == 0 ? 0 : 1).ThenBy(c => c.ValuesPrefix, StringComparer.Ordinal).ToList(),
            Findings = walk.Finder.Findings
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
            text.Append(Invariant($"chart '{chartPath}' cannot be scanned ({errors.Count} problem{(errors.Count == 1 ? string.Empty : "s")}):"));
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

            text.Append(Invariant($"chart '{chartPath}' has {invalid.Count} invalid image reference{(invalid.Count == 1 ? string.Empty : "s")}:"));
            foreach (var item in invalid)
            {
                text.Append('\n').Append(item);
            }
        }

        return text.ToString();
    }

    private static string Invariant(FormattableString text) => FormattableString.Invariant(text);

    /// <summary>Where a chart sits in the tree as seen from the umbrella.</summary>
    private sealed record Placement(string? Alias, string Prefix, string ChartPath, bool Enabled, int Depth);

    /// <summary>Walks the chart tree top-down, giving each chart its coalesced values and searching them.</summary>
    private sealed class Walk(ValuesCoalescer values, ImageFinder finder)
    {
        private readonly ValuesCoalescer _values = values;

        public ImageFinder Finder { get; } = finder;

        public List<ScannedChart> Charts { get; } = [];

        public void Chart(LoadedChart chart, Placement placement, YMapping? overrides, YMapping? parentGlobal, YMapping? topTags)
        {
            var (effective, global) = _values.ForChart(overrides, chart.Values, parentGlobal, chart.Meta.File);
            topTags ??= effective.Get("tags") as YMapping;
            var enabled = placement.Enabled && !ValuesCoalescer.IsFalse(effective.Get("enabled"));
            Charts.Add(Describe(chart, placement, enabled, global));
            SearchOwnValues(chart, placement, effective, new ImageScope(chart.Meta, placement.ChartPath, global), enabled);

            foreach (var (key, child, dependency) in chart.Children)
            {
                var childOverrides = effective.Get(key) as YMapping;
                var childEnabled = enabled && ValuesCoalescer.DependencyEnabled(dependency, key, effective, _values.Coalesce(childOverrides, child.Values), topTags);
                Chart(
                    child,
                    new Placement(dependency?.Alias, ValuesPath.AppendKey(placement.Prefix, key), $"{placement.ChartPath}/{key}", childEnabled, placement.Depth + 1),
                    childOverrides,
                    global,
                    topTags);
            }
        }

        /// <summary>Searches the chart's values except those it passes on to its subcharts (searched as theirs).</summary>
        private void SearchOwnValues(LoadedChart chart, Placement placement, YMapping effective, ImageScope scope, bool enabled)
        {
            var childKeys = chart.Children.Select(c => c.Key).ToHashSet(StringComparer.Ordinal);

            // The umbrella's globals are scanned once at the top; a subchart sees the same globals, so skipping them avoids duplicates.
            foreach (var entry in effective.Effective)
            {
                if (childKeys.Contains(entry.KeyText!) || (placement.Depth > 0 && entry.KeyText == "global"))
                {
                    continue;
                }

                Finder.SearchEntry(scope, entry.KeyText!, entry.Value, placement.Prefix, enabled);
            }
        }

        private static ScannedChart Describe(LoadedChart chart, Placement placement, bool enabled, YMapping global) => new()
        {
            ChartPath = placement.ChartPath,
            Name = chart.Meta.Name,
            Version = chart.Meta.Version,
            AppVersion = chart.Meta.AppVersion,
            Alias = placement.Alias,
            ValuesPrefix = placement.Prefix,
            File = chart.Meta.File,
            Enabled = enabled,
            DeclaresGlobalImageRegistry = global.ContainsKey("imageRegistry"),
        };
    }
}
