using System.Security.Cryptography;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// The write side of split parts: a write-only stream that lays the bundle's bytes into <c>NAME.001.partial-…</c>,
/// <c>NAME.002.partial-…</c>, … at the sizes of a precomputed table, hashing each part as it goes (part 1 from the body
/// offset on), and renames them all only when complete.
/// </summary>
internal sealed class BundlePartWriter : Stream
{
    private readonly string _baseName;
    private readonly IReadOnlyList<BundlePart> _layout;
    private readonly long _bodyOffset;
    private readonly string _suffix = $".partial-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}";
    private readonly List<string> _temps = [];
    private readonly List<string> _hashes = [];
    private FileStream? _file;
    private IncrementalHash? _hash;
    private int _part;
    private long _position;

    public BundlePartWriter(string baseName, IReadOnlyList<BundlePart> layout, long bodyOffset)
    {
        _baseName = baseName;
        _layout = layout;
        _bodyOffset = bodyOffset;
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => _position;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    /// <summary>The table with the hashes of the parts written; only once every byte of the layout arrived.</summary>
    public IReadOnlyList<BundlePart> Completed()
    {
        if (_part != _layout.Count || _file is not null)
        {
            throw new InvalidOperationException($"split writer finished at byte {_position} in part {_part} of {_layout.Count}");
        }

        return _layout.Select((p, i) => p with { Sha256 = _hashes[i] }).ToList();
    }

    /// <summary>Overwrites the head region of part 1 (its bytes before the body offset, which its hash does not cover).</summary>
    public async Task RewriteHeadAsync(byte[] head, CancellationToken ct)
    {
        if (head.Length != _bodyOffset)
        {
            throw new InvalidOperationException($"the signed head is {head.Length} bytes, the part table reserved {_bodyOffset}");
        }

        var file = new FileStream(_temps[0], FileMode.Open, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        await using (file.ConfigureAwait(false))
        {
            await file.WriteAsync(head, ct).ConfigureAwait(false);
            file.Flush(flushToDisk: true);
        }
    }

    /// <summary>Renames every part to its final name; with <paramref name="overwrite"/> stale further parts of an older set go too.</summary>
    public IReadOnlyList<string> Commit(bool overwrite)
    {
        var finals = new List<string>();
        for (var i = 0; i < _temps.Count; i++)
        {
            var final = BundlePartSet.PartPath(_baseName, i + 1);
            File.Move(_temps[i], final, overwrite);
            finals.Add(final);
        }

        if (overwrite)
        {
            for (var i = _temps.Count + 1; File.Exists(BundlePartSet.PartPath(_baseName, i)); i++)
            {
                File.Delete(BundlePartSet.PartPath(_baseName, i));
            }
        }

        _temps.Clear();
        return finals;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            var n = Take(buffer.Length);
            _file!.Write(buffer[..n]);
            Hash(buffer[..n]);
            buffer = buffer[n..];
            Advance(n);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (buffer.Length > 0)
        {
            var n = Take(buffer.Length);
            await _file!.WriteAsync(buffer[..n], cancellationToken).ConfigureAwait(false);
            Hash(buffer.Span[..n]);
            buffer = buffer[n..];
            Advance(n);
        }
    }

    public override void Flush() => _file?.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _file?.FlushAsync(cancellationToken) ?? Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Removes every part not yet committed.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _file?.Dispose();
            _file = null;
            _hash?.Dispose();
            foreach (var temp in _temps)
            {
                try
                {
                    File.Delete(temp);
                }
                catch (IOException)
                {
                }
            }
        }

        base.Dispose(disposing);
    }

    /// <summary>How many of <paramref name="wanted"/> bytes fit in the current part; opens the next part when needed.</summary>
    private int Take(int wanted)
    {
        if (_file is null)
        {
            if (_part >= _layout.Count)
            {
                throw new InvalidOperationException($"split writer got more than the {_layout.Sum(p => p.Size)} bytes of its table");
            }

            var temp = BundlePartSet.PartPath(_baseName, _part + 1) + _suffix;
            try
            {
                _file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            }
            catch (IOException ex)
            {
                throw new OperationException($"cannot write part {_part + 1} ({temp}): {ex.Message}", ex);
            }

            _temps.Add(temp);
            _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        }

        var part = _layout[_part];
        return (int)Math.Min(wanted, part.Offset + part.Size - _position);
    }

    private void Hash(ReadOnlySpan<byte> written)
    {
        // Part 1's hash starts at the body: the head before it is rewritten once the hashes are known.
        var skip = (int)Math.Clamp(_bodyOffset - _position, 0, written.Length);
        _hash!.AppendData(written[skip..]);
    }

    private void Advance(int n)
    {
        _position += n;
        var part = _layout[_part];
        if (_position == part.Offset + part.Size)
        {
            _file!.Flush(flushToDisk: true);
            _file.Dispose();
            _file = null;
            _hashes.Add("sha256:" + Convert.ToHexStringLower(_hash!.GetHashAndReset()));
            _hash.Dispose();
            _hash = null;
            _part++;
        }
    }
}
