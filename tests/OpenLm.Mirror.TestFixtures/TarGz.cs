using System.Formats.Tar;
using System.IO.Compression;
using System.Text;

namespace OpenLm.Mirror.TestFixtures;

/// <summary>One entry of a test archive. <see cref="LinkTarget"/> set makes a symbolic link instead of a file.</summary>
public sealed record TarGzEntry(string Name, byte[] Content, string? LinkTarget = null)
{
    public static TarGzEntry Text(string name, string content) => new(name, Encoding.UTF8.GetBytes(content));
}

/// <summary>Writes gzip-compressed tar archives (the .tgz Helm packages charts as), deterministically.</summary>
public static class TarGz
{
    private static readonly DateTimeOffset FixedTime = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static byte[] Create(IEnumerable<TarGzEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var entry in entries)
            {
                var tarEntry = entry.LinkTarget is null
                    ? new PaxTarEntry(TarEntryType.RegularFile, entry.Name) { DataStream = new MemoryStream(entry.Content, writable: false) }
                    : new PaxTarEntry(TarEntryType.SymbolicLink, entry.Name) { LinkName = entry.LinkTarget };
                tarEntry.ModificationTime = FixedTime;
                tarEntry.Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
                tar.WriteEntry(tarEntry);
            }
        }

        return output.ToArray();
    }

    public static void Write(string path, IEnumerable<TarGzEntry> entries)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        File.WriteAllBytes(path, Create(entries));
    }
}
