using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.EngineLoad;

/// <summary>How <see cref="DockerBundleLoader"/> loads a bundle.</summary>
public sealed record DockerLoadOptions
{
    /// <summary>The key the bundle must be signed with. Required unless <see cref="RequireSignature"/> is false.</summary>
    public VerificationKey? Key { get; init; }

    /// <summary>
    /// True (the default): the bundle must carry a signature that verifies with <see cref="Key"/>. False only for the
    /// explicit opt-out (<c>--insecure-skip-signature</c>): digests are still checked, against the unsigned index.
    /// </summary>
    public bool RequireSignature { get; init; } = true;

    /// <summary>The platform to load of multi-platform images; null means the engine's own platform.</summary>
    public Platform? Platform { get; init; }

    /// <summary>When set (<c>--to</c>), images are tagged with their air-gap names instead of their source references.</summary>
    public MirrorTarget? Target { get; init; }

    /// <summary><c>--map FROM=TO</c> rules for <see cref="Target"/>.</summary>
    public IReadOnlyList<NameMapRule> Maps { get; init; } = [];

    /// <summary>Most path components of a name under <see cref="Target"/> (null: the host's default), flattened as the import does.</summary>
    public int? MaxPathComponents { get; init; }

    /// <summary>
    /// For a delta bundle: the earlier bundle files it was made against (full, split parts, or deltas whose own bases are
    /// given too), which supply the blobs it omits. Empty for a full bundle.
    /// </summary>
    public IReadOnlyList<string> Bases { get; init; } = [];

    /// <summary>Where the blobs of the selected images are spooled before loading; null means the system temp directory.</summary>
    public string? TempDirectory { get; init; }

    /// <summary>Receives the number of bundle (tar) bytes read so far.</summary>
    public IProgress<long>? ReadProgress { get; init; }

    public IMirrorLog Log { get; init; } = NullMirrorLog.Instance;
}

/// <summary>One image loaded into the engine.</summary>
public sealed record LoadedImage
{
    /// <summary>Its reference in the bundle (the full source reference).</summary>
    public required string Reference { get; init; }

    /// <summary>The tag it got in the engine (<c>repository:tag</c>): the source reference, or its <c>--to</c> name.</summary>
    public required string Tag { get; init; }

    /// <summary>The bundle's digest for it (an index or a manifest).</summary>
    public required Digest Digest { get; init; }

    /// <summary>The image manifest loaded (the platform's child of an index, or <see cref="Digest"/> itself).</summary>
    public required Digest Manifest { get; init; }

    public required Platform Platform { get; init; }

    public required Digest Config { get; init; }

    /// <summary>The engine's image ID (the config digest on graph-driver engines).</summary>
    public required string ImageId { get; init; }

    public required int Layers { get; init; }

    /// <summary>Config and layer bytes as stored in the bundle.</summary>
    public required long Size { get; init; }
}

/// <summary>Why a bundle entry was not loaded.</summary>
public enum SkipKind
{
    /// <summary>A Helm chart stored as an OCI artifact.</summary>
    Chart,

    /// <summary>An OCI artifact or anything else whose config or layers are not a container image's.</summary>
    Artifact,

    /// <summary>A multi-platform image without the requested platform.</summary>
    Platform,

    /// <summary>An image that cannot be loaded as it is (e.g. its config and manifest disagree).</summary>
    Unsupported,
}

/// <summary>A bundle entry that was not loaded, and why.</summary>
public sealed record SkippedImage(string Reference, Digest Digest, SkipKind Kind, string Reason);

/// <summary>What <see cref="DockerBundleLoader.LoadAsync"/> did.</summary>
public sealed record DockerLoadResult
{
    public required BundleHead Head { get; init; }

    /// <summary>The platform that was loaded.</summary>
    public required Platform Platform { get; init; }

    public required IReadOnlyList<LoadedImage> Loaded { get; init; }

    public required IReadOnlyList<SkippedImage> Skipped { get; init; }

    /// <summary>Bytes of the docker archive streamed into the engine (0 when nothing was loaded).</summary>
    public long ArchiveBytes { get; init; }

    /// <summary>Bytes of blobs spooled to the temporary directory.</summary>
    public long SpooledBytes { get; init; }
}
