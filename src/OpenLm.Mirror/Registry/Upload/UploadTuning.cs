using System.Runtime.CompilerServices;

namespace OpenLm.Mirror.Registry.Upload;

/// <summary>
/// How blobs are uploaded to one registry, learnt during the run: monolithic PUT until a registry answers 413 (nginx's
/// <c>client_max_body_size</c> defaults to 1 MiB), then chunked PATCH uploads whose chunk size starts at 16 MiB and
/// halves on each further 413 down to 256 KiB — never below the registry's own minimum (ECR: 5 MiB parts,
/// <c>OCI-Chunk-Min-Length</c>). Shared by every repository of the registry for the rest of the run.
/// </summary>
public sealed class UploadTuning
{
    public const long DefaultChunkBytes = 16L << 20;
    public const long FloorChunkBytes = 256L << 10;

    /// <summary>
    /// Monolithic PUTs of more than this many bytes ask <c>Expect: 100-continue</c> — until one that large was accepted —
    /// so a 413 arrives before the body is sent and the same stream can go chunked.
    /// </summary>
    public const long ExpectContinueBytes = 64L << 10;

    private static readonly ConditionalWeakTable<RegistryClient, UploadTuning> PerRegistry = new();
    private long _chunkBytes = DefaultChunkBytes;
    private long _minChunkBytes;
    private volatile bool _chunked;
    private volatile bool _mountsDisabled;
    private long _largestAccepted;
    private volatile int _singlePost = (int)SinglePostSupport.Off;
    private int _trialInFlight;

    /// <summary>The tuning of <paramref name="client"/>'s registry.</summary>
    public static UploadTuning For(RegistryClient client) => PerRegistry.GetValue(client, _ => new UploadTuning());

    /// <summary>Whether blobs go as chunked PATCH uploads (after a 413, or because a chunk size was set).</summary>
    public bool Chunked => _chunked;

    /// <summary>No cross-repository mount is offered to this registry (the probe found its mount answers refused or untrustworthy).</summary>
    public bool MountsDisabled => _mountsDisabled;

    public void DisableMounts() => _mountsDisabled = true;

    public long ChunkBytes => Math.Max(Interlocked.Read(ref _chunkBytes), MinChunkBytes);

    /// <summary>The registry's smallest accepted chunk (the last chunk of a blob may be smaller).</summary>
    public long MinChunkBytes
    {
        get => Interlocked.Read(ref _minChunkBytes);
        set => Interlocked.Exchange(ref _minChunkBytes, Math.Max(0, value));
    }

    /// <summary>Uses chunked uploads of this size from the start (the caller's chosen chunk size).</summary>
    public void UseChunks(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bytes, FloorChunkBytes);
        Interlocked.Exchange(ref _chunkBytes, bytes);
        _chunked = true;
    }

    /// <summary>Whether a monolithic PUT of <paramref name="bytes"/> should ask 100-continue first (a body this size was never accepted yet).</summary>
    public bool ShouldExpectContinue(long bytes) => bytes > ExpectContinueBytes && bytes > Interlocked.Read(ref _largestAccepted);

    /// <summary>A monolithic PUT of <paramref name="bytes"/> went through: bodies up to this size need no 100-continue.</summary>
    public void Accepted(long bytes)
    {
        long seen;
        while ((seen = Interlocked.Read(ref _largestAccepted)) < bytes && Interlocked.CompareExchange(ref _largestAccepted, bytes, seen) != seen)
        {
        }
    }

    /// <summary>The single-request trial takes a blob up to this size: it is read into memory first, so a refusal re-sends it from there.</summary>
    public const long SinglePostTrialBytes = 64L << 10;

    /// <summary>Whether blobs go as one <c>POST …/uploads/?digest=</c> (see <see cref="SinglePostSupport"/>).</summary>
    public SinglePostSupport SinglePost => (SinglePostSupport)_singlePost;

    /// <summary>Lets blobs try the single-request upload (the registry is of a kind known to take it): on trial until one is accepted.</summary>
    public void TrySinglePost()
    {
        Interlocked.CompareExchange(ref _singlePost, (int)SinglePostSupport.Trial, (int)SinglePostSupport.Off);
    }

    /// <summary>
    /// Whether a blob of <paramref name="bytes"/> goes by single POST: never once chunked; while on trial only one small
    /// blob at a time (so a registry that does not take it costs one round trip, not one per upload slot). A true answer
    /// with <paramref name="trial"/> set must be followed by <see cref="SinglePostAccepted"/>, <see cref="SinglePostRefused"/>
    /// or <see cref="EndTrial"/>.
    /// </summary>
    public bool ShouldPostMonolithic(long bytes, out bool trial)
    {
        trial = false;
        if (Chunked)
        {
            return false;
        }

        switch (SinglePost)
        {
            case SinglePostSupport.Supported:
                return true;
            case SinglePostSupport.Trial when bytes <= SinglePostTrialBytes && Interlocked.CompareExchange(ref _trialInFlight, 1, 0) == 0:
                trial = true;
                return true;
            default:
                return false;
        }
    }

    /// <summary>A single-request upload was answered 201: every blob may use it.</summary>
    public void SinglePostAccepted()
    {
        Interlocked.CompareExchange(ref _singlePost, (int)SinglePostSupport.Supported, (int)SinglePostSupport.Trial);
        EndTrial();
    }

    /// <summary>The registry answered a single-request upload with a session (202): POST + PUT for the rest of the run.</summary>
    public void SinglePostRefused()
    {
        _singlePost = (int)SinglePostSupport.Refused;
        EndTrial();
    }

    /// <summary>The trial upload ended without a verdict (an error): the next small blob may try.</summary>
    public void EndTrial() => Volatile.Write(ref _trialInFlight, 0);

    /// <summary>A monolithic PUT was refused as too large: chunked from now on.</summary>
    public void MonolithicTooLarge() => _chunked = true;

    /// <summary>A chunk of <paramref name="refused"/> bytes was refused as too large: halve; false when no smaller chunk is allowed.</summary>
    public bool ChunkTooLarge(long refused)
    {
        var floor = Math.Max(FloorChunkBytes, MinChunkBytes);
        var next = Math.Max(floor, refused / 2);
        if (refused <= floor)
        {
            return false;
        }

        long seen;
        do
        {
            seen = Interlocked.Read(ref _chunkBytes);
            if (seen <= next)
            {
                return true;
            }
        }
        while (Interlocked.CompareExchange(ref _chunkBytes, next, seen) != seen);
        return true;
    }
}

/// <summary>How far a registry is trusted with single-request (POST with <c>?digest=</c>) uploads.</summary>
public enum SinglePostSupport
{
    /// <summary>Not tried: a session (POST, then PUT or PATCHes) per blob.</summary>
    Off,

    /// <summary>Small blobs try it; the first 201 makes it <see cref="Supported"/>, a 202 <see cref="Refused"/>.</summary>
    Trial,

    /// <summary>Every blob goes in one request.</summary>
    Supported,

    /// <summary>The registry answered with a session instead: not tried again this run.</summary>
    Refused,
}
