using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Bundle;

public enum BundleCompression
{
    /// <summary>A plain tar (<c>.tar</c>).</summary>
    None,

    /// <summary>The tar in the zstd seekable format: frames per entry and per 8 MiB, then a seek table (<c>.tar.zst</c>).</summary>
    Zstd,
}

/// <summary>How <see cref="BundleWriter"/> writes a bundle.</summary>
public sealed record BundleWriteOptions
{
    public BundleCompression Compression { get; init; } = BundleCompression.None;

    /// <summary>zstd level (1–19) when <see cref="Compression"/> is <see cref="BundleCompression.Zstd"/>.</summary>
    public int ZstdLevel { get; init; } = 3;

    /// <summary>
    /// The reproducible-build timestamp (see <see cref="BundleFormat.SourceDateEpochFromEnvironment"/>): every
    /// tar entry's mtime and the manifest's <c>created</c>. When null, mtimes are 0 (1970-01-01) and
    /// <c>created</c> is the manifest's own value, else the current time.
    /// </summary>
    public DateTimeOffset? SourceDateEpoch { get; init; }

    /// <summary>Replace an existing file at the output path (otherwise refused).</summary>
    public bool Overwrite { get; init; }

    /// <summary>When set, the bundle is written as part files NAME.001, NAME.002, … of at most this many bytes each.</summary>
    public long? SplitSize { get; init; }

    /// <summary>When set, a delta bundle is written: configs and layers these bases hold are left out.</summary>
    public BundleDeltaInput? Delta { get; init; }
}

/// <summary>
/// What a delta is compared against: the base files (recorded in the signed head) and, by digest, every blob they hold
/// with the 1-based index of the first base that holds it.
/// </summary>
public sealed record BundleDeltaInput
{
    public required IReadOnlyList<BundleBaseFile> Files { get; init; }

    public required IReadOnlyDictionary<Digest, int> Available { get; init; }
}

/// <summary>What <see cref="BundleWriter.WriteAsync"/> wrote.</summary>
public sealed record BundleWriteResult
{
    public required string OutputPath { get; init; }

    /// <summary>The completed manifest as stored (and signed).</summary>
    public required BundleManifest Manifest { get; init; }

    /// <summary>SHA-256 of the stored <c>openlm-bundle.json</c>: the bundle's identity.</summary>
    public required Digest BundleDigest { get; init; }

    /// <summary>Size of the uncompressed tar.</summary>
    public required long TarBytes { get; init; }

    /// <summary>Size of the file written (equals <see cref="TarBytes"/> when uncompressed).</summary>
    public required long FileBytes { get; init; }

    /// <summary>For a split bundle, every part file in order (<see cref="OutputPath"/> is the first); empty otherwise.</summary>
    public IReadOnlyList<string> PartPaths { get; init; } = [];
}

/// <summary>
/// How a bundle write runs alongside the pull that fills its layout: <see cref="BlobStored"/> returns once a config or
/// layer is stored (verified) in the layout, and <see cref="BeforeCommit"/> once the pull is done (it throws when the pull
/// failed), so the bundle is renamed into place only after both.
/// </summary>
internal sealed record BundleWriteGate(Func<Descriptor, CancellationToken, Task> BlobStored, Func<CancellationToken, Task> BeforeCommit)
{
    /// <summary>Told the bytes the writer will write (the tar, or all parts together) once the layout fixes them.</summary>
    public Action<long>? Sized { get; init; }
}
