using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Import;

/// <summary>What an import should do.</summary>
public sealed record ImportRequest
{
    public required string BundlePath { get; init; }

    /// <summary>The release public key; null only together with <see cref="AllowUnsigned"/>.</summary>
    public VerificationKey? Key { get; init; }

    /// <summary>The explicit opt-out: import without checking the signature (digests are still verified).</summary>
    public bool AllowUnsigned { get; init; }

    /// <summary>Target registry and optional prefix (<c>HOST[:PORT][/PREFIX]</c>).</summary>
    public required string Target { get; init; }

    /// <summary><c>FROM_PREFIX=TO_PREFIX</c> renaming rules (longest FROM wins).</summary>
    public IReadOnlyList<string> Maps { get; init; } = [];

    /// <summary>Print the plan, write nothing.</summary>
    public bool DryRun { get; init; }

    /// <summary>Blobs uploaded in parallel (plain bundle files; a zstd bundle streams one blob at a time).</summary>
    public int Concurrency { get; init; } = 6;

    /// <summary>Full passes over the bundle before giving up on blobs whose upload failed (registry down, reset).</summary>
    public int MaxPasses { get; init; } = 3;

    public TimeSpan PassDelay { get; init; } = TimeSpan.FromSeconds(2);
}

public enum TagOutcome
{
    Created,
    Moved,
    Unchanged,
    Planned,
}

public sealed record ImportedImage(string Source, string Target, string Digest, string MediaType, TagOutcome Tag);

/// <summary>What an import did (or, with --dry-run, would do).</summary>
public sealed record ImportResult
{
    public required string Registry { get; init; }

    public required string BundleDigest { get; init; }

    public required string Platform { get; init; }

    public required string Version { get; init; }

    public required bool SignatureVerified { get; init; }

    public required bool DryRun { get; init; }

    public required IReadOnlyList<ImportedImage> Images { get; init; }

    public int BlobsUploaded { get; init; }

    public long BytesUploaded { get; init; }

    public int BlobsMounted { get; init; }

    public int BlobsPresent { get; init; }

    public long BytesPresent { get; init; }

    public int ManifestsPushed { get; init; }

    public int Passes { get; init; }
}
