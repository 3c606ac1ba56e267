using OpenLm.Mirror.Errors;
using ZstdSharp;
using ZstdSharp.Unsafe;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// Compresses what is written to it into the zstd seekable format: independent zstd frames of at most
/// <see cref="DefaultFrameSize"/> decompressed bytes, each with its content size and checksum in the frame,
/// then, at <see cref="FinishAsync"/>, the skippable frame holding the seek table. <see cref="EndFrameAsync"/>
/// cuts the current frame early so the next byte starts a new one; the bundle writer calls it at every tar
/// entry, so a reader can start decompressing at any entry. Holds one frame's input and output in memory,
/// nothing more. The same bytes written give the same file.
/// </summary>
internal sealed class SeekableZstdWriter : Stream
{
    /// <summary>
    /// Largest decompressed size of a frame. 8 MiB keeps a range read that starts inside a blob within 8 MiB
    /// of wasted decompression, keeps the writer at about 16 MiB of buffers and each reader's window at 8 MiB,
    /// and at zstd level 3 cost no ratio against one unbroken stream in our measurement (a tar of the .NET SDK
    /// came out 2.5% smaller; already-gzipped layers the same size).
    /// </summary>
    public const int DefaultFrameSize = 8 << 20;

    /// <summary>
    /// The window log set explicitly on every frame: 2^23 = 8 MiB, the frame size, so a frame can refer back to
    /// any earlier byte of itself; zstd shrinks it further for shorter frames. Decoders that refuse windows over
    /// 32 MiB (log 25; containerd and k3s among them) read every frame.
    /// </summary>
    public const int WindowLog = 23;

    /// <summary>Largest frame size a caller may choose: the 32 MiB limit of constrained decoders.</summary>
    public const int MaxFrameSize = 1 << 25;

    private readonly Stream _output;
    private readonly int _frameSize;
    private readonly Compressor _compressor;
    private readonly byte[] _input;
    private readonly byte[] _compressed;
    private readonly List<(uint Compressed, uint Decompressed)> _frames = [];
    private int _filled;
    private long _compressedBytes;
    private bool _finished;

    /// <summary>Writes to <paramref name="output"/>, which the caller keeps and disposes.</summary>
    public SeekableZstdWriter(Stream output, int level, int frameSize = DefaultFrameSize)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfLessThan(frameSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(frameSize, MaxFrameSize);
        _output = output;
        _frameSize = frameSize;
        _compressor = new Compressor(level);
        try
        {
            _compressor.SetParameter(ZSTD_cParameter.ZSTD_c_windowLog, WindowLog);
            _compressor.SetParameter(ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
            _compressor.SetParameter(ZSTD_cParameter.ZSTD_c_contentSizeFlag, 1);
        }
        catch
        {
            _compressor.Dispose();
            throw;
        }

        _input = GC.AllocateUninitializedArray<byte>(frameSize);
        _compressed = GC.AllocateUninitializedArray<byte>(Compressor.GetCompressBound(frameSize));
    }

    /// <summary>Frames written so far (compressed and decompressed size of each), in file order.</summary>
    public IReadOnlyList<(uint Compressed, uint Decompressed)> Frames => _frames;

    /// <summary>Bytes written to the output so far, the seek table included once finished.</summary>
    public long CompressedBytes => _compressedBytes;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => !_finished;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            buffer = buffer[Append(buffer)..];
            if (_filled == _frameSize)
            {
                var length = CompressFrame();
                _output.Write(_compressed, 0, length);
            }
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!buffer.IsEmpty)
        {
            buffer = buffer[Append(buffer.Span)..];
            if (_filled == _frameSize)
            {
                await WriteFrameAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Ends the current frame, if it holds anything, so the next byte written starts a new frame.</summary>
    public async ValueTask EndFrameAsync(CancellationToken cancellationToken)
    {
        EnsureWritable();
        if (_filled > 0)
        {
            await WriteFrameAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Ends the last frame and appends the seek table. Nothing may be written afterwards.</summary>
    public async ValueTask FinishAsync(CancellationToken cancellationToken)
    {
        await EndFrameAsync(cancellationToken).ConfigureAwait(false);
        var table = SeekableZstdFormat.EncodeTable(_frames);
        await _output.WriteAsync(table, cancellationToken).ConfigureAwait(false);
        _compressedBytes += table.Length;
        _finished = true;
        await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Flushes the output; does not end the frame, so where callers flush never changes the bytes.</summary>
    public override void Flush() => _output.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _output.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Releases the compressor. Writes nothing: a writer disposed before <see cref="FinishAsync"/> leaves no seek table.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _compressor.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>Copies as much of <paramref name="data"/> as fits into the current frame; returns how much.</summary>
    private int Append(ReadOnlySpan<byte> data)
    {
        EnsureWritable();
        var n = Math.Min(data.Length, _frameSize - _filled);
        data[..n].CopyTo(_input.AsSpan(_filled));
        _filled += n;
        return n;
    }

    private async ValueTask WriteFrameAsync(CancellationToken cancellationToken)
    {
        var length = CompressFrame();
        await _output.WriteAsync(_compressed.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Compresses the buffered input as one frame into <see cref="_compressed"/>, records it, and returns its length.</summary>
    private int CompressFrame()
    {
        if (_frames.Count == SeekableZstdFormat.MaxFrames)
        {
            throw new InputException(
                $"the bundle needs more than {SeekableZstdFormat.MaxFrames} zstd frames (one per tar entry and per {_frameSize} bytes); write it uncompressed");
        }

        // One-shot compression knows the frame's size, so the header always carries the content size.
        var length = _compressor.Wrap(_input.AsSpan(0, _filled), _compressed);
        _frames.Add(((uint)length, (uint)_filled));
        _compressedBytes += length;
        _filled = 0;
        return length;
    }

    private void EnsureWritable()
    {
        if (_finished)
        {
            throw new InvalidOperationException("the seekable zstd stream is finished; nothing can be written after the seek table");
        }
    }
}
