namespace OpenLm.Mirror.Bundle;

/// <summary>
/// The tar inside a seekable zstd bundle as a seekable stream: reads decompress from the frame that holds the position,
/// and a seek only moves the position (the next read starts at that frame). Frames start at every tar entry, so an
/// indexing pass that seeks past blob data decompresses little more than the headers and manifests.
/// </summary>
internal sealed class SeekableZstdTarStream(SeekableZstdFile file) : Stream
{
    private long _position;
    private Stream? _current;

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => file.DecompressedLength;

    public override long Position
    {
        get => _position;
        set => Seek(value, SeekOrigin.Begin);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var current = Current();
        if (current is null || buffer.IsEmpty)
        {
            return 0;
        }

        var n = current.Read(buffer);
        _position += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var current = Current();
        if (current is null || buffer.IsEmpty)
        {
            return 0;
        }

        var n = await current.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        _position += n;
        return n;
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
            throw new IOException($"{file.Source}: seek before the start of the tar");
        }

        if (target != _position)
        {
            _current?.Dispose();
            _current = null;
            _position = target;
        }

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
            _current?.Dispose();
            _current = null;
        }

        base.Dispose(disposing);
    }

    private Stream? Current()
    {
        if (_position >= Length)
        {
            return null;
        }

        return _current ??= file.OpenRange(_position, Length - _position);
    }
}
