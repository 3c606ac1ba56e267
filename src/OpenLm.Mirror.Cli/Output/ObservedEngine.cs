using OpenLm.Mirror.Copy;
using OpenLm.Mirror.EngineLoad;

namespace OpenLm.Mirror.Cli.Output;

/// <summary>
/// A container engine whose image import is shown by the progress display: the <see cref="RunPhase.Import"/> phase
/// starts when the loader hands over its archive, and the bytes the engine has read of it are the phase's progress.
/// </summary>
internal sealed class ObservedEngine(IImageEngine engine, ICopyObserver observer) : IImageEngine
{
    public EngineInfo Info => engine.Info;

    public async Task<IReadOnlyList<string>> LoadAsync(Stream archive, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(archive);
        RunObserver.PhaseStarted(observer, RunPhase.Import, 0, archive.CanSeek ? archive.Length : 0);
        var sink = RunObserver.PhaseBytes(observer, null);
        if (sink is null)
        {
            return await engine.LoadAsync(archive, cancellationToken).ConfigureAwait(false);
        }

        var counted = new CountingReadStream(archive, sink);
        await using (counted.ConfigureAwait(false))
        {
            return await engine.LoadAsync(counted, cancellationToken).ConfigureAwait(false);
        }
    }

    public Task<EngineImage?> InspectAsync(string reference, CancellationToken cancellationToken) => engine.InspectAsync(reference, cancellationToken);
}

/// <summary>A read-only pass-through that reports the bytes read so far (the inner stream stays open).</summary>
internal sealed class CountingReadStream(Stream inner, IProgress<long> progress) : Stream
{
    private long _read;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => inner.Length;

    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

    public override int Read(Span<byte> buffer) => Count(inner.Read(buffer));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Count(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private int Count(int read)
    {
        _read += read;
        progress.Report(_read);
        return read;
    }
}
