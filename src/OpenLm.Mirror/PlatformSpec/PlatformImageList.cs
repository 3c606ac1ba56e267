using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.PlatformSpec;

/// <summary>One image to mirror, with everything that asked for it.</summary>
public sealed record PlannedImage
{
    public required Reference Reference { get; init; }

    /// <summary>Helm values paths (from the umbrella) that hold this image; sorted ordinal, distinct.</summary>
    public required IReadOnlyList<string> ValuesPaths { get; init; }

    /// <summary>Where the image came from: <c>manifest</c> and/or <c>chart:&lt;chart path&gt;</c> (e.g. <c>chart:openlm/server</c>); sorted ordinal, distinct.</summary>
    public required IReadOnlyList<string> Origins { get; init; }

    public override string ToString() => Reference.ToString();
}

/// <summary>Merges the manifest's image list and chart scans into one deterministic list of images to mirror.</summary>
public static class PlatformImageList
{
    public const string ManifestOrigin = "manifest";
    public const string ChartOriginPrefix = "chart:";

    /// <summary>Recorded among an image's values paths when its split-key chart honours <c>global.imageRegistry</c>.</summary>
    public const string GlobalImageRegistryPath = "global.imageRegistry";

    /// <summary>
    /// One entry per distinct normalised reference (ordinal order of <see cref="Reference.ToString"/>).
    /// The same reference from the manifest and a chart merges (union of values paths and origins);
    /// the same repository with different tags, or a tag vs. the same tag pinned by digest, stays separate.
    /// Disabled chart findings are included: release engineering mirrors everything. Invalid findings are not.
    /// </summary>
    public static IReadOnlyList<PlannedImage> Build(PlatformManifest manifest, IEnumerable<ChartScanResult> charts)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(charts);
        var entries = new Dictionary<string, (Reference Reference, SortedSet<string> Paths, SortedSet<string> Origins)>(StringComparer.Ordinal);

        void Add(Reference reference, IEnumerable<string> paths, string origin)
        {
            var key = reference.ToString();
            if (!entries.TryGetValue(key, out var entry))
            {
                entry = (reference, new SortedSet<string>(StringComparer.Ordinal), new SortedSet<string>(StringComparer.Ordinal));
                entries[key] = entry;
            }

            entry.Paths.UnionWith(paths);
            entry.Origins.Add(origin);
        }

        foreach (var image in manifest.Images)
        {
            Add(image.Reference, image.ValuesPaths, ManifestOrigin);
        }

        foreach (var scan in charts)
        {
            foreach (var finding in scan.Findings)
            {
                // A split-key image whose chart honours global.imageRegistry also records that path, so the
                // values writer can tell from the bundle alone that it must set global.imageRegistry.
                IEnumerable<string> paths = finding.Kind == ImageFindingKind.Split && finding.UsesGlobalImageRegistry
                    ? [finding.ValuesPath, GlobalImageRegistryPath]
                    : [finding.ValuesPath];
                Add(finding.Reference, paths, ChartOriginPrefix + finding.ChartPath);
            }
        }

        return entries
            .OrderBy(e => e.Key, StringComparer.Ordinal)
            .Select(e => new PlannedImage
            {
                Reference = e.Value.Reference,
                ValuesPaths = e.Value.Paths.ToList(),
                Origins = e.Value.Origins.ToList(),
            })
            .ToList();
    }

    /// <summary>Scans every chart the manifest lists (in order), then <see cref="Build(PlatformManifest, IEnumerable{ChartScanResult})"/>.</summary>
    public static IReadOnlyList<PlannedImage> Build(PlatformManifest manifest, ChartScanOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        return Build(manifest, ScanCharts(manifest, options));
    }

    /// <summary>
    /// Scans every chart the manifest lists, in manifest order. Charts from a registry or repository are read from the
    /// archive <paramref name="downloaded"/> gives for them (see <see cref="ChartSources.ChartDownloader"/>).
    /// </summary>
    public static IReadOnlyList<ChartScanResult> ScanCharts(PlatformManifest manifest, ChartScanOptions? options = null, Func<ManifestChart, string?>? downloaded = null)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        options ??= ChartScanOptions.Default;
        return manifest.Charts.Select(c => c.FullPath is { } path ? ChartScanner.Scan(path, options) : ScanDownloaded(c, downloaded?.Invoke(c), options)).ToList();
    }

    private static ChartScanResult ScanDownloaded(ManifestChart chart, string? archive, ChartScanOptions options)
    {
        if (archive is null)
        {
            throw new InvalidOperationException($"chart {chart.Source} must be downloaded before it is scanned");
        }

        // Messages name the chart by its source, not by the temporary file it was downloaded to.
        using var stream = new FileStream(archive, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, FileOptions.SequentialScan);
        return ChartScanner.ScanArchive(stream, chart.Source.ToString(), options, out _);
    }
}
