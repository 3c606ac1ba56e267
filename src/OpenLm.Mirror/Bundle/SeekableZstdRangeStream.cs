using System.Buffers;
using Microsoft.Win32.SafeHandles;
using OpenLm.Mirror.Errors;
using ZstdSharp;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// Decompressed bytes [offset, offset + length) of a seekable zstd file, decoded frame by frame from the frame
/// holding the first byte. Each frame is decoded from exactly its compressed bytes and must yield exactly the
/// decompressed size the seek table gives, so a table that lies about a frame cannot shift what a range returns.
/// Owns its decoder and buffers; reads the shared handle only with positional reads.
/// </summary>
internal sealed class SeekableZstdRangeStream : Stream
{
    private const int InputBufferSize = 1 << 17;
    private const int SkipBufferSize = 1 << 16;

    private readonly SeekableZstdFile _file;
    private readonly long _length;
    private readonly byte[] _probe = new byte[1];
    private Decompressor? _decompressor;
    private DecompressionStream? _decoder;
    private byte[]? _skipBuffer;
    private int _frame;
    private long _frameRead;
    private long _skip;
    private long _position;
    private bool _disposed;

    public SeekableZstdRangeStream(SeekableZstdFile file, int firstFrame, long offset, long length)
    {
        _file = file;
        _length = length;
        _frame = firstFrame;
        _skip = length == 0 ? 0 : offset - file.Frames[firstFrame].DecompressedOffset;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => _length;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    private SeekableZstdFrame Frame => _file.Frames[_frame];

    private long FrameLeft => Frame.DecompressedSize - _frameRead;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty || _position == _length)
        {
            return 0;
        }

        try
        {
            while (true)
            {
                var decoder = CurrentDecoder();
                if (FrameLeft == 0)
                {
                    EndFrame(decoder.Read(_probe));
                }
                else if (_skip > 0)
                {
                    Skipped(decoder.Read(SkipTarget().Span));
                }
                else
                {
                    return Delivered(decoder.Read(buffer[..Wanted(buffer.Length)]));
                }
            }
        }
        catch (Exception ex) when (ex is ZstdException or EndOfStreamException)
        {
            throw Corrupt(ex);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty || _position == _length)
        {
            return 0;
        }

        try
        {
            while (true)
            {
                var decoder = CurrentDecoder();
                if (FrameLeft == 0)
                {
                    EndFrame(await decoder.ReadAsync(_probe, cancellationToken).ConfigureAwait(false));
                }
                else if (_skip > 0)
                {
                    Skipped(await decoder.ReadAsync(SkipTarget(), cancellationToken).ConfigureAwait(false));
                }
                else
                {
                    return Delivered(await decoder.ReadAsync(buffer[..Wanted(buffer.Length)], cancellationToken).ConfigureAwait(false));
                }
            }
        }
        catch (Exception ex) when (ex is ZstdException or EndOfStreamException)
        {
            throw Corrupt(ex);
        }
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
            _disposed = true;
            _decoder?.Dispose();
            _decoder = null;
            _decompressor?.Dispose();
            _decompressor = null;
            if (_skipBuffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_skipBuffer);
                _skipBuffer = null;
            }
        }

        base.Dispose(disposing);
    }

    /// <summary>The decoder of the current frame, started at the frame's first compressed byte when needed.</summary>
    private DecompressionStream CurrentDecoder()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_decoder is not null)
        {
            return _decoder;
        }

        var frame = Frame;
        _decompressor ??= new Decompressor();
        _decompressor.ResetStream();
        var slice = new FileSlice(_file.Handle, frame.CompressedOffset, frame.CompressedSize);
        var bufferSize = (int)Math.Min(frame.CompressedSize, InputBufferSize);
        _decoder = new DecompressionStream(slice, _decompressor, bufferSize, checkEndOfStream: true, preserveDecompressor: true, leaveOpen: false);
        _frameRead = 0;
        return _decoder;
    }

    /// <summary>How much of the caller's buffer to fill: no more than the range or the frame has left.</summary>
    private int Wanted(int capacity) => (int)Math.Min(capacity, Math.Min(_length - _position, FrameLeft));

    private Memory<byte> SkipTarget()
    {
        _skipBuffer ??= ArrayPool<byte>.Shared.Rent(SkipBufferSize);
        return _skipBuffer.AsMemory(0, (int)Math.Min(SkipBufferSize, Math.Min(_skip, FrameLeft)));
    }

    private void Skipped(int n)
    {
        Decoded(n);
        _skip -= n;
    }

    private int Delivered(int n)
    {
        Decoded(n);
        _position += n;
        return n;
    }

    private void Decoded(int n)
    {
        if (n == 0)
        {
            throw new IntegrityException(
                $"{_file.Source}: zstd frame {_frame} ends after {_frameRead} decompressed bytes; the seek table gives {Frame.DecompressedSize}");
        }

        _frameRead += n;
    }

    /// <summary>After the frame's last byte: the frame must end there too (and its checksum is checked on the way).</summary>
    private void EndFrame(int extra)
    {
        if (extra != 0)
        {
            throw new IntegrityException(
                $"{_file.Source}: zstd frame {_frame} decompresses to more than the {Frame.DecompressedSize} bytes the seek table gives");
        }

        _decoder!.Dispose();
        _decoder = null;
        _frame++;
    }

    private IntegrityException Corrupt(Exception ex) =>
        new($"{_file.Source}: zstd frame {_frame} (at byte {Frame.CompressedOffset}) is truncated or corrupt: {ex.Message}", ex);

    /// <summary>Bytes [offset, offset + length) of a file, read with positional reads so that slices never share a position.</summary>
    private sealed class FileSlice(SafeFileHandle handle, long start, long size) : Stream
    {
        private long _read;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => size;

        public override long Position
        {
            get => _read;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = RandomAccess.Read(handle, buffer[..Wanted(buffer.Length)], start + _read);
            _read += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await RandomAccess.ReadAsync(handle, buffer[..Wanted(buffer.Length)], start + _read, cancellationToken).ConfigureAwait(false);
            _read += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private int Wanted(int capacity) => (int)Math.Min(capacity, size - _read);
    }
}
