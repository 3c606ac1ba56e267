using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Export;

/// <summary>Which release to resolve and how.</summary>
public sealed record ResolveRequest
{
    /// <summary>The platform manifest (YAML, see docs/platform-manifest.md).</summary>
    public required string ManifestPath { get; init; }

    /// <summary>Chart values references that cannot be parsed become warnings instead of errors.</summary>
    public bool SkipInvalid { get; init; }

    /// <summary>The platforms to keep; null keeps the manifest's own.</summary>
    public IReadOnlyList<Platform>? Platforms { get; init; }

    /// <summary>
    /// The export cache (an OCI layout, or the directory export will make one in) in which every manifest fetched is kept
    /// (<see cref="Layout.ManifestStore"/>), so the export of this lock reads them from disk; null keeps none.
    /// </summary>
    public string? CacheDirectory { get; init; }
}

/// <summary>The release side of the mirror, as one call per step: resolve a platform manifest to a lock.</summary>
public static class Release
{
    /// <summary>
    /// Reads the platform manifest, scans its charts for image references (skipped invalid ones are logged), and pins
    /// every image at the source to its digest.
    /// </summary>
    public static async Task<LockFile> ResolveAsync(ResolveRequest request, RegistryConnector connector, IMirrorLog log, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(connector);
        ArgumentNullException.ThrowIfNull(log);
        var manifest = PlatformManifest.Load(request.ManifestPath);
        // Mirrors given by the caller win; the manifest's apply to the other source registries (and to a following export).
        connector.Options.Mirrors = connector.Options.Mirrors.WithDefaults(manifest.RegistryMirrors);
        foreach (var mirror in connector.Options.Mirrors.All)
        {
            log.Info($"pulling {mirror.Source} images through the mirror {mirror.Location}");
        }

        // Charts from a registry or repository are downloaded once: scanned from, and pinned by, the same bytes.
        using var downloads = new PlatformSpec.ChartSources.ChartDownloader(connector, log);
        var downloaded = await LockedCharts.DownloadAsync(manifest, downloads, cancellationToken).ConfigureAwait(false);
        var scans = PlatformImageList.ScanCharts(manifest, new ChartScanOptions { SkipInvalid = request.SkipInvalid }, c => downloaded.GetValueOrDefault(c.Index)?.ArchivePath);
        foreach (var invalid in scans.SelectMany(scan => scan.Invalid))
        {
            log.Warn($"skipped invalid image reference in chart {invalid.ChartName} ({invalid.File}:{invalid.Line}, {invalid.ValuesPath}): {invalid.Error}");
        }

        var images = PlatformImageList.Build(manifest, scans);
        var platforms = request.Platforms ?? manifest.Platforms;
        log.Info($"resolving {images.Count} images of {manifest.Name} {manifest.Version}{(platforms.Count > 0 ? $" for {string.Join(", ", platforms)}" : string.Empty)}");
        var charts = await LockedCharts.PinAsync(manifest, downloaded, cancellationToken).ConfigureAwait(false);
        // Only the store's directory is written (on the first manifest kept); export makes the rest of the layout.
        var manifests = request.CacheDirectory is null ? null : Layout.ManifestStore.In(request.CacheDirectory);
        return await new PlatformResolver(connector, log) { Charts = charts, Manifests = manifests }.ResolveAsync(manifest, images, platforms, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Where an export keeps its cache by default: <c>$XDG_CACHE_HOME/openlm-mirror/export</c>, else under <c>~/.cache</c>.</summary>
    public static string DefaultCacheDirectory(Func<string, string?>? environment = null)
    {
        var root = (environment ?? Environment.GetEnvironmentVariable)("XDG_CACHE_HOME");
        if (string.IsNullOrEmpty(root))
        {
            root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        }

        return Path.Combine(root, "openlm-mirror", "export");
    }
}
