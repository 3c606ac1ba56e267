using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace OpenLm.Mirror.TestKit;

/// <summary>
/// A read-only, seekable stream of <see cref="Length"/> pseudo-random (incompressible) bytes. Counter-based
/// (SplitMix64 of the word index), so any position can be produced directly and the output is a pure function of the key.
/// </summary>
internal sealed class RandomContentStream(ulong key, long length) : Stream
{
    private long _position;

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length => length;

    public override long Position
    {
        get => _position;
        set => _position = value is >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value));
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var remaining = length - _position;
        if (remaining <= 0) return 0;
        var n = (int)Math.Min(buffer.Length, remaining);
        Fill(key, _position, buffer[..n]);
        _position += n;
        return n;
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            SeekOrigin.End => length + offset,
            _ => throw new ArgumentOutOfRangeException(nameof(origin)),
        };
        return _position;
    }

    public override void Flush() { }
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <summary>Writes bytes [offset, offset + dest.Length) of the key's stream into <paramref name="dest"/>.</summary>
    internal static void Fill(ulong key, long offset, Span<byte> dest)
    {
        var word = (ulong)(offset >> 3);
        var skip = (int)(offset & 7);
        Span<byte> tmp = stackalloc byte[8];
        if (skip != 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(tmp, Word(key, word++));
            var take = Math.Min(8 - skip, dest.Length);
            tmp.Slice(skip, take).CopyTo(dest);
            dest = dest[take..];
        }
        var whole = dest.Length >> 3;
        var words = MemoryMarshal.Cast<byte, ulong>(dest[..(whole << 3)]);
        if (BitConverter.IsLittleEndian)
        {
            for (var i = 0; i < words.Length; i++) words[i] = Word(key, word + (ulong)i);
        }
        else
        {
            for (var i = 0; i < words.Length; i++) words[i] = BinaryPrimitives.ReverseEndianness(Word(key, word + (ulong)i));
        }
        word += (ulong)whole;
        dest = dest[(whole << 3)..];
        if (dest.Length > 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(tmp, Word(key, word));
            tmp[..dest.Length].CopyTo(dest);
        }
    }

    private static ulong Word(ulong key, ulong index)
    {
        var z = key + (index + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>Write-through stream that SHA-256 hashes and counts everything written to it.</summary>
internal sealed class HashingWriteStream(Stream inner) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public long BytesWritten { get; private set; }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => BytesWritten;
    public override long Position { get => BytesWritten; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _hash.AppendData(buffer);
        inner.Write(buffer);
        BytesWritten += buffer.Length;
    }

    public override void WriteByte(byte value) => Write([value]);

    public override void Flush() => inner.Flush();

    /// <summary>Digest of everything written so far, as <c>sha256:&lt;hex&gt;</c>.</summary>
    public string Digest() => Digests.Format(_hash.GetCurrentHash());

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _hash.Dispose();
        base.Dispose(disposing);
    }
}

internal static class Digests
{
    public static string Format(ReadOnlySpan<byte> sha256) => "sha256:" + Convert.ToHexStringLower(sha256);

    public static string Of(ReadOnlySpan<byte> content) => Format(SHA256.HashData(content));

    public static string Hex(string digest) =>
        digest.StartsWith("sha256:", StringComparison.Ordinal) && digest.Length == 71
            ? digest[7..]
            : throw new ArgumentException($"Not a sha256 digest: '{digest}'.", nameof(digest));

    /// <summary>Deterministic 64-bit sub-seed for a named thing.</summary>
    public static ulong DeriveSeed(int seed, string key)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{seed}|{key}"), hash);
        return BinaryPrimitives.ReadUInt64LittleEndian(hash);
    }
}
