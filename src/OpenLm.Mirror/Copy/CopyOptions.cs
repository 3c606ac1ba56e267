using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Copy;

/// <summary>How a graph copy behaves. Setters reject values that make no sense.</summary>
public sealed class CopyOptions
{
    private int _concurrency = 6;

    /// <summary>How many blobs move at once.</summary>
    public int Concurrency
    {
        get => _concurrency;
        set => _concurrency = value is >= 1 and <= 256 ? value : throw new ArgumentOutOfRangeException(nameof(Concurrency), value, "must be between 1 and 256");
    }

    /// <summary>Keep only these children of an index; empty keeps all (and the index stays byte-identical).</summary>
    public IReadOnlyList<Platform> Platforms { get; set; } = [];

    public ICopyObserver Observer { get; set; } = NullCopyObserver.Instance;

    /// <summary>Warnings about registry behaviour the copy worked around (a blob re-uploaded after a false HEAD).</summary>
    public IMirrorLog Log { get; set; } = NullMirrorLog.Instance;

    /// <summary>Wraps each whole blob transfer and manifest operation.</summary>
    public RetryPolicy Retry { get; set; } = RetryPolicy.None;

    /// <summary>
    /// When set, a blob waiting for a transfer slot gets it in the ordinal order of this key (of the edge that first asked
    /// for it) rather than first come, first served; e.g. an export pulls blobs in the order its bundle writer copies them.
    /// </summary>
    public Func<GraphEdge, string>? BlobOrder { get; set; }
}

/// <summary>
/// An image's manifests as <see cref="GraphCopier.FetchManifestsAsync"/> fetched them: the source's root, the root as the
/// target stores it (the platform filter applied) with its bytes, and every child manifest by digest, each verified.
/// </summary>
public sealed record ManifestTree(
    Descriptor SourceRoot,
    Descriptor Root,
    byte[] RootBytes,
    IReadOnlyList<Platform> PlatformsKept,
    IReadOnlyDictionary<Digest, (Descriptor Descriptor, byte[] Bytes)>? Children);

public enum BlobOutcome
{
    /// <summary>Bytes were transferred.</summary>
    Copied,

    /// <summary>The target already had it.</summary>
    Skipped,

    /// <summary>Linked from another repository of the same registry, no bytes sent.</summary>
    Mounted,
}

/// <summary>Receives progress of a copy. Called concurrently from several transfers.</summary>
public interface ICopyObserver
{
    void ImageStarted(string image);

    void BlobStarted(string image, Descriptor blob);

    /// <summary>Bytes moved; negative when a transfer restarts after a failure.</summary>
    void BytesTransferred(string image, long bytes);

    void BlobFinished(string image, Descriptor blob, BlobOutcome outcome);

    void ManifestFinished(string image, Descriptor manifest, BlobOutcome outcome);

    void ImageFinished(string image, CopyResult result);
}

public sealed class NullCopyObserver : ICopyObserver
{
    public static readonly NullCopyObserver Instance = new();

    public void ImageStarted(string image)
    {
    }

    public void BlobStarted(string image, Descriptor blob)
    {
    }

    public void BytesTransferred(string image, long bytes)
    {
    }

    public void BlobFinished(string image, Descriptor blob, BlobOutcome outcome)
    {
    }

    public void ManifestFinished(string image, Descriptor manifest, BlobOutcome outcome)
    {
    }

    public void ImageFinished(string image, CopyResult result)
    {
    }
}

/// <summary>What one image copy did.</summary>
public sealed record CopyResult
{
    public required string Source { get; init; }

    public required string Destination { get; init; }

    /// <summary>The root descriptor as stored in the target (differs from the source only when a platform filter rewrote an index).</summary>
    public required Descriptor Root { get; init; }

    public required Descriptor SourceRoot { get; init; }

    public required IReadOnlyList<Platform> PlatformsKept { get; init; }

    public long BytesCopied { get; init; }

    public int BlobsCopied { get; init; }

    public int BlobsSkipped { get; init; }

    public int BlobsMounted { get; init; }

    public int Manifests { get; init; }
}
