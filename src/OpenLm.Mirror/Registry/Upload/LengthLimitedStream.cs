namespace OpenLm.Mirror.Registry.Upload;

/// <summary>
/// Reads at most <c>length</c> bytes of an inner stream (one chunk of an upload), without buffering, and counts what
/// was read; the inner stream stays open. <see cref="PassThrough"/> counts only, reading the inner stream to its end
/// (so a verifying inner stream sees the end and checks size and digest).
/// </summary>
internal sealed class LengthLimitedStream(Stream inner, long length) : Stream
{
    private readonly long _length = length;
    private long _remaining = length;

    public long Consumed => _length - _remaining;

    /// <summary>Counts the bytes read from <paramref name="inner"/> without limiting them.</summary>
    public static LengthLimitedStream PassThrough(Stream inner) => new(inner, long.MaxValue);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => _length;

    public override long Position
    {
        get => Consumed;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("asynchronous reads only");

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_remaining <= 0)
        {
            return 0;
        }

        var n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _remaining)], cancellationToken).ConfigureAwait(false);
        if (n == 0 && _length != long.MaxValue)
        {
            throw new IOException($"the content ended {_remaining} bytes before the end of the chunk");
        }

        _remaining -= n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
