using OpenLm.Mirror.Content;
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

        // The counter is not disposed: the archive belongs to the caller.
        long read = 0;
        var counted = new CountingStream(archive, n => sink.Report(Interlocked.Add(ref read, n)));
        return await engine.LoadAsync(counted, cancellationToken).ConfigureAwait(false);
    }

    public Task<EngineImage?> InspectAsync(string reference, CancellationToken cancellationToken) => engine.InspectAsync(reference, cancellationToken);
}
