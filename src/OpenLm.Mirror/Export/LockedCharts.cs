using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.PlatformSpec.ChartSources;

namespace OpenLm.Mirror.Export;

/// <summary>A chart archive on disk for the length of one use (a packed directory or a download is deleted on dispose).</summary>
public sealed class ChartArchiveFile(string path, IDisposable? owner) : IDisposable
{
    public string Path { get; } = path;

    public void Dispose() => owner?.Dispose();
}

/// <summary>Pins the charts of a platform manifest for the lock, and gets a locked chart's exact bytes back for export.</summary>
public static class LockedCharts
{
    /// <summary>
    /// Downloads every chart from a registry or repository (resolve pins what it downloads); local charts are read where
    /// they are. Returns the archive to scan for each remote chart (by manifest position), valid while <paramref name="downloads"/> lives.
    /// </summary>
    public static async Task<IReadOnlyDictionary<int, DownloadedChart>> DownloadAsync(PlatformManifest manifest, ChartDownloader downloads, CancellationToken cancellationToken)
    {
        var result = new Dictionary<int, DownloadedChart>();
        foreach (var chart in manifest.Charts.Where(c => c.Source is not LocalChartSource))
        {
            result[chart.Index] = await downloads.DownloadAsync(chart.Source, pinned: null, cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    /// <summary>The lock entries of the manifest's charts: local ones packed and hashed, remote ones from their download.</summary>
    public static async Task<IReadOnlyList<LockedChart>> PinAsync(PlatformManifest manifest, IReadOnlyDictionary<int, DownloadedChart> downloaded, CancellationToken cancellationToken)
    {
        var result = new List<LockedChart>();
        foreach (var chart in manifest.Charts)
        {
            if (chart.FullPath is { } path)
            {
                result.Add(await PlatformResolver.LockChartAsync(path, cancellationToken).ConfigureAwait(false));
                continue;
            }

            var download = downloaded[chart.Index];
            result.Add(new LockedChart
            {
                Ref = download.Source is OciChartSource oci ? oci.ToString() : null,
                Repo = download.Source is HelmRepositoryChartSource repo ? repo.Repository.AbsoluteUri : null,
                Name = download.Name,
                Version = download.Version,
                Digest = download.Digest.ToString(),
            });
        }

        return result;
    }

    /// <summary>
    /// The exact archive the lock pins: a local chart (packed if a directory) or a fresh download from the chart's source.
    /// Bytes whose sha256 differs from the lock's are refused (<see cref="IntegrityException"/>, naming chart and source).
    /// </summary>
    public static async Task<ChartArchiveFile> OpenAsync(LockedChart chart, ChartDownloader downloads, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(chart);
        if (chart.Path is { } path)
        {
            var archive = await ChartArchive.EnsureArchiveAsync(path, cancellationToken).ConfigureAwait(false);
            try
            {
                var current = await PlatformResolver.DescribeChartAsync(path, archive, cancellationToken).ConfigureAwait(false);
                if (current.Digest != chart.Digest)
                {
                    throw new IntegrityException($"chart '{path}' changed since it was locked: sha256 is now {current.Digest}, the lock says {chart.Digest}");
                }

                return new ChartArchiveFile(archive.Path, archive);
            }
            catch
            {
                archive.Dispose();
                throw;
            }
        }

        var download = await downloads.DownloadAsync(chart.Source(), Digest.Parse(chart.Digest), cancellationToken).ConfigureAwait(false);
        return new ChartArchiveFile(download.ArchivePath, new DeleteFile(download.ArchivePath));
    }

    private sealed class DeleteFile(string path) : IDisposable
    {
        public void Dispose() => File.Delete(path);
    }
}
