namespace OpenLm.Mirror.Content;

/// <summary>A read-only pass-through that reports how many bytes went by.</summary>
public sealed class CountingStream(Stream inner, Action<long> onBytes) : Stream, IVerifiedSource
{
    /// <summary>The verifier under this counter, if the counted stream is one (a push then does not hash again).</summary>
    public VerifyingStream? Verifier => inner as VerifyingStream ?? (inner as IVerifiedSource)?.Verifier;

    private long _count;

    public long Count => Interlocked.Read(ref _count);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => inner.Length;

    public override long Position
    {
        get => _count;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Tally(inner.Read(buffer, offset, count));

    public override int Read(Span<byte> buffer) => Tally(inner.Read(buffer));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Tally(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

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

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }

    private int Tally(int n)
    {
        if (n > 0)
        {
            Interlocked.Add(ref _count, n);
            onBytes(n);
        }

        return n;
    }
}
