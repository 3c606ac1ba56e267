using OpenLm.Mirror.Copy;
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

    /// <summary>Most path components a target repository may have; deeper names are flattened (null: the host's own limit).</summary>
    public int? MaxPathComponents { get; init; }

    /// <summary>Print the plan, write nothing.</summary>
    public bool DryRun { get; init; }

    /// <summary>Blobs uploaded in parallel, each from its byte range of the bundle.</summary>
    public int Concurrency { get; init; } = 6;

    /// <summary>Whole copies of the bundle's graph before giving up on blobs whose upload kept failing (registry down, reset); each pass skips what the target already has.</summary>
    public int MaxPasses { get; init; } = 3;

    public TimeSpan PassDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Images copied at once (blob transfers stay bounded by <see cref="Concurrency"/> over all of them).</summary>
    public int ParallelImages { get; init; } = 8;

    /// <summary>
    /// HEAD requests in flight for the existence pass, the base check and the tag commit: small, so many at once hide
    /// the round trip to a distant registry (the connection pool holds 64 per registry).
    /// </summary>
    public int LookupConcurrency { get; init; } = 32;

    /// <summary>Told of every image, blob and byte pushed (an <see cref="IRunObserver"/> also of the push and tag phases).</summary>
    public ICopyObserver? Observer { get; init; }

    /// <summary>Where an old single-stream zstd bundle is decompressed for reading by range (default: the system temporary directory).</summary>
    public string? TempDirectory { get; init; }

    /// <summary>
    /// Probe the target and refuse before anything is pushed when it cannot take the whole bundle (kind, repository
    /// creation, chunk size). The CLI always asks for it; null skips it (a caller that checked the target itself).
    /// </summary>
    public PrecheckOptions? Precheck { get; init; }
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

    /// <summary>Every manifest and blob the imported images need (all now in the target), by digest: what a receipt records.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public IReadOnlyList<ReceiptBlob> Contents { get; init; } = [];

    /// <summary>What the capability probe and pre-check found about the target (one line each).</summary>
    public IReadOnlyList<string> Findings { get; init; } = [];

    /// <summary>What the target would refuse (a dry run reports them; a real import stops with them).</summary>
    public IReadOnlyList<TargetProblem> Problems { get; init; } = [];
}
