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
