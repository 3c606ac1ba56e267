using System.Formats.Tar;
using System.IO.Compression;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.PlatformSpec;

/// <summary>Read-only view of one chart's files (a directory or an archive), paths relative to the chart root with '/'.</summary>
internal abstract class ChartFiles
{
    /// <summary>How files of this chart are shown in findings and errors, e.g. <c>openlm</c> or <c>openlm/charts/reporting-1.0.tgz!/reporting</c>.</summary>
    public abstract string DisplayRoot { get; }

    public string Display(string relativePath) => $"{DisplayRoot}/{relativePath}";

    /// <summary>The file's bytes, or null when it does not exist.</summary>
    public abstract byte[]? Read(string relativePath);

    /// <summary>Direct children of <c>charts/</c>: subchart directories and <c>.tgz</c> archives (names starting with '.' or '_' are skipped, as Helm does).</summary>
    public abstract IReadOnlyList<SubchartEntry> ListSubcharts();

    public abstract ChartFiles Subdirectory(string name);
}

internal sealed record SubchartEntry(string Name, bool IsArchive);

internal sealed class DirectoryChartFiles : ChartFiles
{
    private readonly string _root;
    private readonly long _maxFileBytes;

    public DirectoryChartFiles(string root, string displayRoot, long maxFileBytes)
    {
        _root = root;
        DisplayRoot = displayRoot;
        _maxFileBytes = maxFileBytes;
    }

    public override string DisplayRoot { get; }

    public override byte[]? Read(string relativePath)
    {
        var path = Path.Combine(_root, relativePath.Replace('/', Path.DirectorySeparatorChar));
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            return null;
        }

        if (info.Length > _maxFileBytes)
        {
            throw new InputException($"{Display(relativePath)}: file is {info.Length} bytes, larger than the {_maxFileBytes} byte limit");
        }

        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"{Display(relativePath)}: cannot read: {ex.Message}", ex);
        }
    }

    public override IReadOnlyList<SubchartEntry> ListSubcharts()
    {
        var charts = Path.Combine(_root, "charts");
        if (!Directory.Exists(charts))
        {
            return [];
        }

        var result = new List<SubchartEntry>();
        foreach (var entry in Directory.EnumerateFileSystemEntries(charts))
        {
            var name = Path.GetFileName(entry);
            if (name.Length == 0 || name[0] is '.' or '_')
            {
                continue;
            }

            if (Directory.Exists(entry))
            {
                result.Add(new SubchartEntry(name, IsArchive: false));
            }
            else if (name.EndsWith(".tgz", StringComparison.Ordinal))
            {
                result.Add(new SubchartEntry(name, IsArchive: true));
            }
        }

        result.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return result;
    }

    public override ChartFiles Subdirectory(string name) =>
        new DirectoryChartFiles(Path.Combine(_root, "charts", name), $"{DisplayRoot}/charts/{name}", _maxFileBytes);
}

/// <summary>
/// A chart archive read entirely in memory: entries are streamed through GZip + tar once; only the files a scan
/// needs (Chart.yaml, requirements.yaml, values.yaml, nested .tgz) are kept. Nothing is written to disk.
/// </summary>
internal sealed class ArchiveChartFiles : ChartFiles
{
    private static readonly HashSet<string> KeptNames = new(StringComparer.Ordinal) { "Chart.yaml", "values.yaml", "requirements.yaml" };

    // All paths are relative to the archive's chart root; directories are implied by file paths.
    private readonly Dictionary<string, byte[]> _files;
    private readonly HashSet<string> _directories;
    private readonly string _prefix;

    private ArchiveChartFiles(Dictionary<string, byte[]> files, HashSet<string> directories, string prefix, string displayRoot)
    {
        _files = files;
        _directories = directories;
        _prefix = prefix;
        DisplayRoot = displayRoot;
    }

    public override string DisplayRoot { get; }

    /// <param name="data">The gzip-compressed tar archive.</param>
    /// <param name="displayArchive">How the archive itself is shown: empty for the top-level archive (entries are shown as written), else <c>openlm/charts/x.tgz</c>.</param>
    public static ArchiveChartFiles Open(Stream data, string displayArchive, string errorName, ChartScanOptions options)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var allFiles = new List<string>();
        var magic = new byte[2];
        if (!data.CanSeek)
        {
            throw new ArgumentException("stream must be seekable", nameof(data));
        }

        var start = data.Position;
        if (data.Read(magic, 0, 2) != 2 || magic[0] != 0x1f || magic[1] != 0x8b)
        {
            throw new InputException($"{errorName}: not a gzip-compressed chart archive (.tgz)");
        }

        data.Position = start;
        try
        {
            using var gzip = new GZipStream(data, CompressionMode.Decompress, leaveOpen: true);
            using var limited = new LimitedReadStream(gzip, options.MaxArchiveBytes, errorName);
            using var tar = new TarReader(limited, leaveOpen: true);
            var count = 0;
            while (tar.GetNextEntry(copyData: false) is { } entry)
            {
                if (++count > options.MaxEntries)
                {
                    throw new InputException($"{errorName}: more than {options.MaxEntries} archive entries");
                }

                if (entry.EntryType == TarEntryType.GlobalExtendedAttributes)
                {
                    // pax_global_header (git archive writes one): metadata only.
                    continue;
                }

                var name = NormaliseEntryName(entry.Name, errorName);
                switch (entry.EntryType)
                {
                    case TarEntryType.Directory:
                        continue;
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                        break;
                    case TarEntryType.SymbolicLink or TarEntryType.HardLink:
                        throw new InputException($"{errorName}: entry '{entry.Name}' is a link; chart archives must contain only regular files");
                    default:
                        throw new InputException($"{errorName}: entry '{entry.Name}' has unsupported type {entry.EntryType}");
                }

                if (name is null)
                {
                    continue;
                }

                allFiles.Add(name);
                var fileName = name[(name.LastIndexOf('/') + 1)..];
                var keep = KeptNames.Contains(fileName) || (fileName.EndsWith(".tgz", StringComparison.Ordinal) && name.Contains("charts/", StringComparison.Ordinal));
                if (!keep)
                {
                    continue;
                }

                if (entry.Length > options.MaxFileBytes)
                {
                    throw new InputException($"{errorName}: entry '{entry.Name}' is {entry.Length} bytes, larger than the {options.MaxFileBytes} byte limit");
                }

                if (files.ContainsKey(name))
                {
                    throw new InputException($"{errorName}: entry '{entry.Name}' appears more than once");
                }

                var buffer = new byte[entry.Length];
                if (entry.DataStream is { } stream)
                {
                    stream.ReadExactly(buffer);
                }

                files[name] = buffer;
            }
        }
        catch (InvalidDataException ex)
        {
            throw new InputException($"{errorName}: corrupt chart archive: {ex.Message}", ex);
        }
        catch (EndOfStreamException ex)
        {
            throw new InputException($"{errorName}: truncated chart archive", ex);
        }

        // The chart root is the single top-level directory holding Chart.yaml (Helm packages charts as <name>/...).
        var roots = allFiles
            .Where(f => f == "Chart.yaml" || (f.EndsWith("/Chart.yaml", StringComparison.Ordinal) && f.IndexOf('/') == f.Length - "/Chart.yaml".Length))
            .Select(f => f.Length == "Chart.yaml".Length ? string.Empty : f[..f.IndexOf('/')])
            .Distinct(StringComparer.Ordinal)
            .ToList();
        if (roots.Count == 0)
        {
            throw new InputException($"{errorName}: no Chart.yaml at the top of the archive (expected <chart>/Chart.yaml)");
        }

        if (roots.Count > 1)
        {
            throw new InputException($"{errorName}: the archive holds several top-level charts ({string.Join(", ", roots.Order(StringComparer.Ordinal))}); expected one");
        }

        var root = roots[0];
        var prefix = root.Length == 0 ? string.Empty : root + "/";
        var rooted = files.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value, StringComparer.Ordinal);
        var directories = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in allFiles.Where(f => f.StartsWith(prefix, StringComparison.Ordinal)))
        {
            var relative = file[prefix.Length..];
            for (var slash = relative.IndexOf('/'); slash > 0; slash = relative.IndexOf('/', slash + 1))
            {
                directories.Add(relative[..slash]);
            }
        }

        var displayRoot = displayArchive.Length == 0
            ? root.Length == 0 ? "." : root
            : root.Length == 0 ? displayArchive + "!" : $"{displayArchive}!/{root}";
        return new ArchiveChartFiles(rooted, directories, string.Empty, displayRoot);
    }

    public override byte[]? Read(string relativePath) => _files.GetValueOrDefault(_prefix + relativePath);

    public override IReadOnlyList<SubchartEntry> ListSubcharts()
    {
        var charts = _prefix + "charts/";
        var names = new SortedDictionary<string, bool>(StringComparer.Ordinal);
        foreach (var directory in _directories)
        {
            if (directory.StartsWith(charts, StringComparison.Ordinal) && directory.IndexOf('/', charts.Length) < 0)
            {
                names[directory[charts.Length..]] = false;
            }
        }

        foreach (var file in _files.Keys)
        {
            if (file.StartsWith(charts, StringComparison.Ordinal) && file.IndexOf('/', charts.Length) < 0 && file.EndsWith(".tgz", StringComparison.Ordinal))
            {
                names[file[charts.Length..]] = true;
            }
        }

        return names.Where(kv => kv.Key.Length > 0 && kv.Key[0] is not ('.' or '_'))
            .Select(kv => new SubchartEntry(kv.Key, kv.Value))
            .ToList();
    }

    public override ChartFiles Subdirectory(string name) =>
        new ArchiveChartFiles(_files, _directories, $"{_prefix}charts/{name}/", $"{DisplayRoot}/charts/{name}");

    /// <summary>
    /// Returns the entry path with '/' separators and no leading "./", or null for the archive root itself.
    /// Refuses absolute paths, drive letters, backslashes and ".." segments: the archive is untrusted input.
    /// </summary>
    internal static string? NormaliseEntryName(string name, string errorName)
    {
        string Refuse(string why) => throw new InputException($"{errorName}: refusing archive entry '{name}': {why}");

        if (name.Length == 0 || name.Contains('\0', StringComparison.Ordinal))
        {
            return Refuse("empty or contains NUL");
        }

        if (name.Contains('\\', StringComparison.Ordinal))
        {
            return Refuse("contains a backslash");
        }

        if (name[0] == '/' || (name.Length >= 2 && name[1] == ':' && char.IsAsciiLetter(name[0])))
        {
            return Refuse("absolute path");
        }

        var parts = new List<string>();
        foreach (var part in name.Split('/'))
        {
            if (part.Length == 0 || part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                return Refuse("path traversal ('..')");
            }

            parts.Add(part);
        }

        return parts.Count == 0 ? null : string.Join('/', parts);
    }
}

/// <summary>Stops reading after a byte budget, so a decompression bomb fails fast instead of filling memory or time.</summary>
internal sealed class LimitedReadStream(Stream inner, long limit, string errorName) : Stream
{
    private long _read;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        _read += n;
        if (_read > limit)
        {
            throw new InputException($"{errorName}: archive decompresses to more than {limit} bytes; refusing it");
        }

        return n;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
