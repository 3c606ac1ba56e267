namespace OpenLm.Mirror.Copy;

/// <summary>The stages of a long command, in the order they run.</summary>
public enum RunPhase
{
    /// <summary>Images pulled into the local cache (export).</summary>
    Pull,

    /// <summary>The bundle written and flushed to disk (export).</summary>
    Write,

    /// <summary>Blobs and manifests uploaded to the target registry (import, copy, load).</summary>
    Push,

    /// <summary>Tags created or moved once every image is stored (import).</summary>
    Tag,

    /// <summary>Images copied between registries and layouts (copy).</summary>
    Copy,

    /// <summary>Tags resolved to digests before anything is pulled (export from a platform manifest).</summary>
    Resolve,

    /// <summary>The target registry checked before anything is pushed (import: the delta's base, a precheck).</summary>
    Check,

    /// <summary>The bundle verified as it streams and the selected images' blobs spooled to a temporary directory (load).</summary>
    Spool,

    /// <summary>The spooled images streamed into the container engine (load).</summary>
    Import,
}

/// <summary>
/// A copy observer that is also told when a phase starts and how much work it holds, so a display can show a total
/// and an ETA. Observers that only implement <see cref="ICopyObserver"/> are not told.
/// </summary>
public interface IRunObserver : ICopyObserver
{
    /// <summary>A phase starts with <paramref name="images"/> images and about <paramref name="bytes"/> bytes to move.</summary>
    void PhaseStarted(RunPhase phase, int images, long bytes);

    /// <summary>Bytes of the phase done so far (for phases not made of image copies: the bundle write).</summary>
    void PhaseBytes(long bytesDone);
}

/// <summary>Calls on an observer that may or may not be an <see cref="IRunObserver"/>.</summary>
public static class RunObserver
{
    public static void PhaseStarted(ICopyObserver? observer, RunPhase phase, int images, long bytes) =>
        (observer as IRunObserver)?.PhaseStarted(phase, images, bytes);

    /// <summary>A progress sink that forwards the bundle write's byte count to <paramref name="observer"/>; null when it does not listen.</summary>
    public static IProgress<long>? PhaseBytes(ICopyObserver? observer, IProgress<long>? other) =>
        observer is IRunObserver run
            ? new Forward(run, other)
            : other;

    private sealed class Forward(IRunObserver run, IProgress<long>? other) : IProgress<long>
    {
        public void Report(long value)
        {
            run.PhaseBytes(value);
            other?.Report(value);
        }
    }
}
