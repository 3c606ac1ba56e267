using System.Globalization;
using System.Security.Cryptography;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// A bundle written as part files <c>NAME.001</c>, <c>NAME.002</c>, …: located from the first part or the base name, its
/// table read from the head in part 1, every part checked on its own (presence, size, SHA-256), and read in place as one
/// seekable stream — never joined on disk.
/// </summary>
public sealed class BundlePartSet
{
    private BundlePartSet(string baseName, BundleParts table)
    {
        BaseName = baseName;
        Table = table;
    }

    /// <summary>NAME, the part files being NAME.001, NAME.002, ….</summary>
    public string BaseName { get; }

    /// <summary>The table as part 1's head states it (trusted once the head's signature verified: <see cref="RequireSame"/>).</summary>
    public BundleParts Table { get; }

    public int Count => Table.Files.Count;

    public string PartPath(int index) => PartPath(BaseName, index);

    public static string PartPath(string baseName, int index) => $"{baseName}.{index.ToString("000", CultureInfo.InvariantCulture)}";

    /// <summary>
    /// The part set <paramref name="path"/> names, or null when it names a single-file bundle: <c>NAME.001</c> whose head
    /// has a part table, or <c>NAME</c> when only <c>NAME.001</c> exists. Only the head of part 1 is read (not verified:
    /// callers verify the signature over the whole set, then check the table is the one they used).
    /// </summary>
    public static async Task<BundlePartSet?> TryLocateAsync(string path, CancellationToken cancellationToken = default)
    {
        string first;
        if (path.EndsWith(".001", StringComparison.Ordinal) && File.Exists(path))
        {
            first = path;
        }
        else if (!File.Exists(path) && !Directory.Exists(path) && File.Exists(PartPath(path, 1)))
        {
            first = PartPath(path, 1);
        }
        else if (path.Length > 4 && path[^4] == '.' && int.TryParse(path[^3..], NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number > 1 && File.Exists(PartPath(path[..^4], 1)))
        {
            throw new InputException($"'{path}' is part {number} of a split bundle; give the first part, {PartPath(path[..^4], 1)}, with the others next to it") { Subject = path };
        }
        else
        {
            return null;
        }

        BundleHead head;
        var file = new FileStream(first, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
        await using (file.ConfigureAwait(false))
        {
            try
            {
                head = (await BundleReader.ReadAsync(file, new BundleReadOptions { RequireSignature = false, HeadOnly = true, SourceName = first, AllowParts = true }, cancellationToken).ConfigureAwait(false)).Head;
            }
            catch (MirrorException ex) when (!first.Equals(path, StringComparison.Ordinal) || ex is not InputException)
            {
                throw new IntegrityException($"part 1 ({first}): the bundle head cannot be read: {ex.Message}; re-copy {first}", ex);
            }
        }

        if (head.Manifest.Parts is not { } table)
        {
            return null;
        }

        CheckTable(table, first);
        return new BundlePartSet(first[..^4], table);
    }

    /// <summary>
    /// Every problem of the set, each naming the part and what to re-copy: missing, short, long, a further part beyond
    /// the table, and (with <paramref name="hashes"/>) a SHA-256 mismatch. Every part is checked on its own.
    /// </summary>
    public async Task<IReadOnlyList<string>> ProblemsAsync(bool hashes, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        var problems = new List<string>();
        long done = 0;
        foreach (var part in Table.Files)
        {
            var path = PartPath(part.Index);
            var info = new FileInfo(path);
            var label = $"part {part.Index} of {Count}";
            if (!info.Exists)
            {
                problems.Add($"{label}: missing — copy {path} ({part.Size} bytes)");
            }
            else if (info.Length != part.Size)
            {
                problems.Add($"{label}: {(info.Length < part.Size ? "short" : "too long")}, {info.Length} bytes instead of {part.Size} — re-copy {path}");
            }
            else if (hashes)
            {
                var from = part.Index == 1 ? Table.BodyOffset : 0;
                var actual = await HashAsync(path, from, cancellationToken).ConfigureAwait(false);
                if (!string.Equals(actual, part.Sha256, StringComparison.Ordinal))
                {
                    problems.Add($"{label}: sha256 mismatch — re-copy {path}");
                }
            }

            done += part.Size;
            progress?.Report(done);
        }

        var extra = PartPath(Count + 1);
        if (File.Exists(extra))
        {
            problems.Add($"part {Count + 1}: extra — the set has {Count} parts, {extra} is not one of them (left over from another bundle?); remove it");
        }

        return problems;
    }

    /// <summary>Throws an integrity error listing every problem <see cref="ProblemsAsync"/> finds.</summary>
    public async Task RequireIntactAsync(bool hashes, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        var problems = await ProblemsAsync(hashes, progress, cancellationToken).ConfigureAwait(false);
        if (problems.Count > 0)
        {
            throw new IntegrityException($"{BaseName}: {problems.Count} of the {Count} parts are not as the signed part table lists them; the others are good:\n  " + string.Join("\n  ", problems))
            {
                Subject = BaseName,
            };
        }
    }

    /// <summary>After the signature verified: the table the set was opened with must be the signed one.</summary>
    public void RequireSame(BundleParts signed)
    {
        if (signed.Files.Count != Table.Files.Count || signed.BodyOffset != Table.BodyOffset || !signed.Files.SequenceEqual(Table.Files))
        {
            throw new IntegrityException($"{BaseName}: the part table changed between reads of part 1; re-copy {PartPath(1)}");
        }
    }

    /// <summary>The parts as one read-only seekable stream (each part file opened when first read).</summary>
    public Stream OpenStream() => new BundlePartsStream(this);

    /// <summary>A window of the concatenated parts, for blob byte ranges.</summary>
    public Stream OpenRange(long offset, long length)
    {
        var stream = new BundlePartsStream(this);
        stream.Seek(offset, SeekOrigin.Begin);
        return new WindowStream(stream, length);
    }

    /// <summary>The part holding byte <paramref name="offset"/> of the bundle, for messages.</summary>
    public BundlePart PartAt(long offset) =>
        Table.Files.LastOrDefault(p => p.Offset <= offset) ?? Table.Files[0];

    internal static void CheckTable(BundleParts table, string where)
    {
        if (table.Files.Count == 0 || table.PartSize <= 0 || table.BodyOffset <= 0)
        {
            throw new InputException($"{where}: the part table is empty or has no part size");
        }

        long offset = 0;
        for (var i = 0; i < table.Files.Count; i++)
        {
            var part = table.Files[i];
            if (part.Index != i + 1 || part.Offset != offset || part.Size <= 0 || part.Size > table.PartSize
                || !Digest.TryParse(part.Sha256, out var digest) || digest.Algorithm != "sha256")
            {
                throw new InputException($"{where}: part table entry {i + 1} is not part {i + 1} at offset {offset} with a size of 1 to {table.PartSize} bytes and a sha256");
            }

            offset += part.Size;
        }

        if (offset != table.TotalBytes || table.BodyOffset > table.Files[0].Size)
        {
            throw new InputException($"{where}: the part table's parts add up to {offset} bytes, but it says {table.TotalBytes}, or part 1 does not hold the head");
        }
    }

    private static async Task<string> HashAsync(string path, long from, CancellationToken ct)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await using (file.ConfigureAwait(false))
        {
            file.Seek(from, SeekOrigin.Begin);
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[1 << 20];
            int n;
            while ((n = await file.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            {
                sha.AppendData(buffer, 0, n);
            }

            return "sha256:" + Convert.ToHexStringLower(sha.GetHashAndReset());
        }
    }
}

/// <summary>The part files of a <see cref="BundlePartSet"/> read as one seekable stream; a part shorter than its table entry is an integrity error naming it.</summary>
public sealed class BundlePartsStream : Stream
{
    private readonly BundlePartSet _set;
    private FileStream? _file;
    private int _fileIndex;
    private long _position;

    internal BundlePartsStream(BundlePartSet set) => _set = set;

    public BundlePartSet Set => _set;

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => _set.Table.TotalBytes;

    public override long Position
    {
        get => _position;
        set => Seek(value, SeekOrigin.Begin);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (!Locate(out var part, buffer.Length, out var count))
        {
            return 0;
        }

        var n = _file!.Read(buffer[..count]);
        return Advance(part, n);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!Locate(out var part, buffer.Length, out var count))
        {
            return 0;
        }

        var n = await _file!.ReadAsync(buffer[..count], cancellationToken).ConfigureAwait(false);
        return Advance(part, n);
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        var target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => Length + offset,
        };
        if (target < 0)
        {
            throw new IOException("seek before the start of the bundle");
        }

        _position = target;
        return _position;
    }

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _file?.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>Opens (or seeks) the part holding the current position; false at the end of the bundle.</summary>
    private bool Locate(out BundlePart part, int wanted, out int count)
    {
        part = null!;
        count = 0;
        if (_position >= Length || wanted == 0)
        {
            return false;
        }

        part = _set.PartAt(_position);
        var within = _position - part.Offset;
        if (_file is null || _fileIndex != part.Index)
        {
            _file?.Dispose();
            var path = _set.PartPath(part.Index);
            try
            {
                _file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
            }
            catch (FileNotFoundException ex)
            {
                throw new IntegrityException($"part {part.Index} of {_set.Count}: missing — copy {path}", ex);
            }

            _fileIndex = part.Index;
        }

        if (_file.Position != within)
        {
            _file.Seek(within, SeekOrigin.Begin);
        }

        count = (int)Math.Min(wanted, part.Size - within);
        return true;
    }

    private int Advance(BundlePart part, int n)
    {
        if (n == 0)
        {
            throw new IntegrityException($"part {part.Index} of {_set.Count}: short, it ends before its {part.Size} bytes — re-copy {_set.PartPath(part.Index)}");
        }

        _position += n;
        return n;
    }
}
