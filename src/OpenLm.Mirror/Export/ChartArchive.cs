using System.Formats.Tar;
using System.IO.Compression;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Export;

/// <summary>
/// A chart as a <c>.tgz</c>: the file itself, or a directory packaged the way <c>helm package</c> lays it
/// out (<c>&lt;name&gt;/…</c>), deterministically (sorted entries, mtime 0, uid/gid 0) so its digest is stable.
/// </summary>
public sealed class ChartArchive : IDisposable
{
    private readonly string? _temporary;

    private ChartArchive(string path, string? temporary)
    {
        Path = path;
        _temporary = temporary;
    }

    public string Path { get; }

    public static async Task<ChartArchive> EnsureArchiveAsync(string chartPath, CancellationToken cancellationToken)
    {
        if (File.Exists(chartPath))
        {
            return new ChartArchive(chartPath, null);
        }

        if (!Directory.Exists(chartPath))
        {
            throw new InputException($"chart '{chartPath}' does not exist");
        }

        if (!File.Exists(System.IO.Path.Combine(chartPath, "Chart.yaml")))
        {
            throw new InputException($"chart directory '{chartPath}' has no Chart.yaml");
        }

        var name = System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(chartPath)));
        var temp = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"openlm-chart-{Guid.NewGuid():N}.tgz");
        await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
        await using (var gzip = new GZipStream(file, CompressionLevel.Optimal))
        await using (var tar = new TarWriter(gzip, TarEntryFormat.Ustar, leaveOpen: true))
        {
            var root = System.IO.Path.GetFullPath(chartPath);
            var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
                .Select(f => System.IO.Path.GetRelativePath(root, f).Replace('\\', '/'))
                .Order(StringComparer.Ordinal);
            foreach (var relative in files)
            {
                var full = System.IO.Path.Combine(root, relative);
                if (new FileInfo(full).LinkTarget is not null)
                {
                    throw new InputException($"chart '{chartPath}': '{relative}' is a symbolic link; charts must hold regular files only");
                }

                await using var content = File.OpenRead(full);
                var entry = new UstarTarEntry(TarEntryType.RegularFile, $"{name}/{relative}")
                {
                    DataStream = content,
                    ModificationTime = DateTimeOffset.UnixEpoch,
                    Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                    Uid = 0,
                    Gid = 0,
                };
                await tar.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
            }
        }

        return new ChartArchive(temp, temp);
    }

    public void Dispose()
    {
        if (_temporary is not null)
        {
            File.Delete(_temporary);
        }
    }
}
