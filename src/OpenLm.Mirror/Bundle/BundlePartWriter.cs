using System.Buffers;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// The write side of split parts: a write-only stream that lays the bundle's bytes into <c>NAME.001.partial-…</c>,
/// <c>NAME.002.partial-…</c>, … at the sizes of a precomputed table, and renames them all only when complete. Blob
/// data can also arrive as file ranges (<see cref="CopyFromFile"/>: in-kernel, no user-space copy). Each finished part
/// is hashed (part 1 from the body offset on) and flushed to disk by a background task while the next part is written:
/// it reads the part back from the page cache, so hashing overlaps the writing instead of following it.
/// </summary>
internal sealed class BundlePartWriter : Stream, IFileRangeTarget
{
    private const int HashBufferSize = 1 << 20;

    private readonly string _baseName;
    private readonly IReadOnlyList<BundlePart> _layout;
    private readonly long _bodyOffset;
    private readonly string _suffix = $".partial-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}";
    private readonly List<string> _temps = [];
    private readonly List<Task<string>> _hashes = [];
    private FileStream? _file;
    private IncrementalWriteback? _writeback;
    private Task _previous = Task.CompletedTask;
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

    /// <summary>The table with the hashes of the parts written; only once every byte of the layout arrived (waits for the hashing).</summary>
    public async Task<IReadOnlyList<BundlePart>> CompletedAsync()
    {
        if (_part != _layout.Count || _file is not null)
        {
            throw new InvalidOperationException($"split writer finished at byte {_position} in part {_part} of {_layout.Count}");
        }

        var hashes = await Task.WhenAll(_hashes).ConfigureAwait(false);
        return _layout.Select((p, i) => p with { Sha256 = hashes[i] }).ToList();
    }

    /// <summary>
    /// Appends <paramref name="length"/> bytes of <paramref name="source"/> from <paramref name="sourceOffset"/>, split
    /// across parts where a part ends, each piece copied file to file (see <see cref="FileRangeCopy"/>).
    /// </summary>
    public async Task CopyFromFileAsync(SafeFileHandle source, long sourceOffset, long length, Action<long>? progress, CancellationToken ct)
    {
        while (length > 0)
        {
            ct.ThrowIfCancellationRequested();
            var n = Take(length);
            var file = _file!;
            await file.FlushAsync(ct).ConfigureAwait(false);
            var at = file.Position;
            var from = sourceOffset;
            await Task.Run(() => FileRangeCopy.Copy(source, from, file.SafeFileHandle, at, n, progress), ct).ConfigureAwait(false);
            file.Position = at + n;
            sourceOffset += n;
            length -= n;
            Advance(n);
        }
    }

    /// <summary>Overwrites the head region of part 1 (its bytes before the body offset, which its hash does not cover).</summary>
    public async Task RewriteHeadAsync(byte[] head, CancellationToken ct)
    {
        if (head.Length != _bodyOffset)
        {
            throw new InvalidOperationException($"the signed head is {head.Length} bytes, the part table reserved {_bodyOffset}");
        }

        // Part 1's background task is done with the file first (it holds it open while hashing and flushing).
        await Task.WhenAll(_hashes).ConfigureAwait(false);
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
            var n = (int)Take(buffer.Length);
            _file!.Write(buffer[..n]);
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
            var n = (int)Take(buffer.Length);
            await _file!.WriteAsync(buffer[..n], cancellationToken).ConfigureAwait(false);
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

            // Background tasks still reading a part (a failed write) finish before their files go.
            try
            {
                Task.WhenAll(_hashes).Wait();
            }
            catch (AggregateException)
            {
                // The write already failed or the parts are being discarded: their hashing errors do not matter.
            }

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
    private long Take(long wanted)
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
                _file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                // Written back as it grows: the part's fsync (behind the hash, while the next part is written) waits for less.
                _writeback = new IncrementalWriteback(_file.SafeFileHandle);
            }
            catch (IOException ex)
            {
                throw new OperationException($"cannot write part {_part + 1} ({temp}): {ex.Message}", ex);
            }

            _temps.Add(temp);
        }

        var part = _layout[_part];
        return Math.Min(wanted, part.Offset + part.Size - _position);
    }

    private void Advance(long n)
    {
        _position += n;
        var part = _layout[_part];
        _writeback?.Wrote(_position - part.Offset);
        if (_position == part.Offset + part.Size)
        {
            var file = _file!;
            _file = null;
            _writeback = null;
            file.Flush();

            // Part 1's hash starts at the body: the head before it is rewritten once the hashes are known. One part is
            // hashed at a time (one buffer), in order, while the writer goes on with the next.
            var from = _part == 0 ? _bodyOffset : 0;
            var previous = _previous;
            var hashing = Task.Run(async () =>
            {
                await previous.ConfigureAwait(false);
                return HashAndClose(file, from, part.Size);
            });
            _hashes.Add(hashing);
            _previous = hashing;
            _part++;
        }
    }

    /// <summary>sha256 of the part's bytes from <paramref name="from"/> to <paramref name="length"/>, then fsync and close.</summary>
    private static string HashAndClose(FileStream file, long from, long length)
    {
        using (file)
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = ArrayPool<byte>.Shared.Rent(HashBufferSize);
            try
            {
                for (var at = from; at < length;)
                {
                    var n = RandomAccess.Read(file.SafeFileHandle, buffer.AsSpan(0, (int)Math.Min(HashBufferSize, length - at)), at);
                    if (n == 0)
                    {
                        throw new IOException($"part file '{file.Name}' ended at {at} of its {length} bytes while it was hashed");
                    }

                    hash.AppendData(buffer, 0, n);
                    at += n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            file.Flush(flushToDisk: true);
            return "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
        }
    }
}
