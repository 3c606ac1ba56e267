using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Bundle;

/// <summary>One zstd frame of a seekable file: where its compressed bytes are and which decompressed bytes it holds.</summary>
internal readonly record struct SeekableZstdFrame(long CompressedOffset, long CompressedSize, long DecompressedOffset, long DecompressedSize)
{
    public long DecompressedEnd => DecompressedOffset + DecompressedSize;
}

/// <summary>
/// Random access to a file in the zstd seekable format (what <see cref="SeekableZstdWriter"/> writes): the seek
/// table is read from the end of the file and checked once, then <see cref="OpenRange"/> decompresses only the
/// frames a range covers. Range streams share nothing but the file handle, which they read with positional
/// reads, so any number may be read at the same time. Dispose the file only after its range streams.
/// </summary>
internal sealed class SeekableZstdFile : IDisposable
{
    private const int TableReadChunk = 64 * 1024;

    private readonly SafeFileHandle _handle;
    private readonly bool _ownsHandle;
    private readonly SeekableZstdFrame[] _frames;

    private SeekableZstdFile(SafeFileHandle handle, bool ownsHandle, string source, long compressedLength, SeekableZstdFrame[] frames)
    {
        _handle = handle;
        _ownsHandle = ownsHandle;
        _frames = frames;
        Source = source;
        CompressedLength = compressedLength;
        DecompressedLength = frames.Length == 0 ? 0 : frames[^1].DecompressedEnd;
    }

    /// <summary>The name errors use (the path, unless the caller gave another).</summary>
    public string Source { get; }

    /// <summary>Length of the file, seek table included.</summary>
    public long CompressedLength { get; }

    /// <summary>Length of the decompressed content (for a bundle: the tar).</summary>
    public long DecompressedLength { get; }

    /// <summary>The frames in file order, as the seek table lists them.</summary>
    public IReadOnlyList<SeekableZstdFrame> Frames => _frames;

    internal SafeFileHandle Handle => _handle;

    /// <summary>
    /// Opens <paramref name="path"/> and reads its seek table; null when the file does not end with one (a plain
    /// tar, or a zstd bundle written as one stream before the seekable format). Throws
    /// <see cref="IntegrityException"/> when the file ends with the seekable magic but the table is inconsistent
    /// with the file, and <see cref="InputException"/> for a table of a newer variant of the format.
    /// </summary>
    public static SeekableZstdFile? TryOpen(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.Asynchronous);
        try
        {
            var file = Open(handle, ownsHandle: true, path);
            if (file is null)
            {
                handle.Dispose();
            }

            return file;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// As <see cref="TryOpen(string)"/> over a handle opened for reading, which the caller keeps open (at least as
    /// long as the file and its range streams are used) and closes. <paramref name="source"/> names the file in errors.
    /// </summary>
    public static SeekableZstdFile? TryOpen(SafeFileHandle handle, string source)
    {
        ArgumentNullException.ThrowIfNull(handle);
        ArgumentException.ThrowIfNullOrEmpty(source);
        return Open(handle, ownsHandle: false, source);
    }

    /// <summary>
    /// A read-only stream of <paramref name="length"/> decompressed bytes from <paramref name="decompressedOffset"/>.
    /// It decompresses from the start of the frame holding the first byte and stops after the last one. A frame
    /// that does not decompress to the size the seek table gives, or fails to decode, is an
    /// <see cref="IntegrityException"/> naming the file and frame.
    /// </summary>
    public Stream OpenRange(long decompressedOffset, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(decompressedOffset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (decompressedOffset > DecompressedLength - length)
        {
            throw new ArgumentOutOfRangeException(
                nameof(length), $"range {decompressedOffset}+{length} ends after the {DecompressedLength} decompressed bytes of {Source}");
        }

        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        return new SeekableZstdRangeStream(this, FrameIndexAt(decompressedOffset), decompressedOffset, length);
    }

    /// <summary>The whole decompressed content as one stream (what a sequential reader wants).</summary>
    public Stream OpenRead() => OpenRange(0, DecompressedLength);

    /// <summary>Index of the frame holding decompressed byte <paramref name="offset"/> (the frame count at the end).</summary>
    public int FrameIndexAt(long offset)
    {
        // First frame that ends after the offset; frames of decompressed size 0 never hold a byte.
        int lo = 0, hi = _frames.Length;
        while (lo < hi)
        {
            var mid = lo + ((hi - lo) / 2);
            if (_frames[mid].DecompressedEnd > offset)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }

        return lo;
    }

    public void Dispose()
    {
        if (_ownsHandle)
        {
            _handle.Dispose();
        }
    }

    private static SeekableZstdFile? Open(SafeFileHandle handle, bool ownsHandle, string source)
    {
        var length = RandomAccess.GetLength(handle);
        if (length < SeekableZstdFormat.FooterSize)
        {
            return null;
        }

        Span<byte> footer = stackalloc byte[SeekableZstdFormat.FooterSize];
        ReadExactly(handle, footer, length - footer.Length, source);
        if (BinaryPrimitives.ReadUInt32LittleEndian(footer[5..]) != SeekableZstdFormat.SeekableMagic)
        {
            return null;
        }

        var count = BinaryPrimitives.ReadUInt32LittleEndian(footer);
        var descriptor = footer[4];
        if ((descriptor & SeekableZstdFormat.ReservedBits) != 0)
        {
            throw new InputException(
                $"{source}: the zstd seek table sets reserved descriptor bits (0x{descriptor:X2}); it was written for a newer seekable format than this tool reads");
        }

        if (count > SeekableZstdFormat.MaxFrames)
        {
            throw new IntegrityException($"{source}: the zstd seek table lists {count} frames, more than the {SeekableZstdFormat.MaxFrames} a reader accepts");
        }

        var entrySize = (descriptor & SeekableZstdFormat.ChecksumFlag) != 0 ? SeekableZstdFormat.ChecksumEntrySize : SeekableZstdFormat.EntrySize;
        var tableLength = SeekableZstdFormat.TableFrameLength(count, entrySize);
        if (tableLength > length)
        {
            throw new IntegrityException($"{source}: the zstd seek table lists {count} frames, which need {tableLength} bytes of table; the file has {length}");
        }

        var tableStart = length - tableLength;
        Span<byte> header = stackalloc byte[SeekableZstdFormat.SkippableHeaderSize];
        ReadExactly(handle, header, tableStart, source);
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != SeekableZstdFormat.SkippableMagic
            || BinaryPrimitives.ReadUInt32LittleEndian(header[4..]) != tableLength - SeekableZstdFormat.SkippableHeaderSize)
        {
            throw new IntegrityException(
                $"{source}: the zstd seek table is corrupt: its footer lists {count} frames, but no seek table frame of that size starts at byte {tableStart}");
        }

        var frames = ReadFrames(handle, source, (int)count, entrySize, tableStart);
        return new SeekableZstdFile(handle, ownsHandle, source, length, frames);
    }

    /// <summary>Reads the entries after the skippable header and checks that the frames tile the file up to the table.</summary>
    private static SeekableZstdFrame[] ReadFrames(SafeFileHandle handle, string source, int count, int entrySize, long tableStart)
    {
        var frames = new SeekableZstdFrame[count];
        var chunk = new byte[Math.Min(TableReadChunk / entrySize, Math.Max(count, 1)) * entrySize];
        long compressed = 0, decompressed = 0;
        var position = tableStart + SeekableZstdFormat.SkippableHeaderSize;
        for (var i = 0; i < count;)
        {
            var entries = Math.Min(count - i, chunk.Length / entrySize);
            var bytes = chunk.AsSpan(0, entries * entrySize);
            ReadExactly(handle, bytes, position, source);
            position += bytes.Length;
            for (var e = 0; e < entries; e++, i++)
            {
                var entry = bytes.Slice(e * entrySize, entrySize);
                var compressedSize = BinaryPrimitives.ReadUInt32LittleEndian(entry);
                var decompressedSize = BinaryPrimitives.ReadUInt32LittleEndian(entry[4..]);
                if (compressedSize == 0)
                {
                    throw new IntegrityException($"{source}: the zstd seek table is corrupt: frame {i} has a compressed size of 0");
                }

                if (decompressedSize > SeekableZstdFormat.MaxFrameDecompressedSize)
                {
                    throw new IntegrityException(
                        $"{source}: the zstd seek table is corrupt: frame {i} claims {decompressedSize} decompressed bytes, more than the {SeekableZstdFormat.MaxFrameDecompressedSize} a frame may hold");
                }

                if (compressedSize > tableStart - compressed)
                {
                    throw new IntegrityException(
                        $"{source}: the zstd seek table is corrupt: frame {i} would end after byte {compressed + compressedSize}, but the frames end where the seek table starts, at byte {tableStart}");
                }

                frames[i] = new SeekableZstdFrame(compressed, compressedSize, decompressed, decompressedSize);
                compressed += compressedSize;
                decompressed += decompressedSize;
            }
        }

        if (compressed != tableStart)
        {
            throw new IntegrityException(
                $"{source}: the zstd seek table is corrupt or the file was cut: its {count} frames take {compressed} bytes, but {tableStart} bytes precede the seek table");
        }

        return frames;
    }

    private static void ReadExactly(SafeFileHandle handle, Span<byte> buffer, long offset, string source)
    {
        while (!buffer.IsEmpty)
        {
            var n = RandomAccess.Read(handle, buffer, offset);
            if (n == 0)
            {
                throw new IntegrityException($"{source}: the file ended at byte {offset} while its zstd seek table was read (changed while open?)");
            }

            buffer = buffer[n..];
            offset += n;
        }
    }
}
