using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Bundle;

/// <summary>What became of the bundle signature.</summary>
public enum SignatureStatus
{
    /// <summary>The signature was present and verified with the given key.</summary>
    Verified,

    /// <summary>A signature entry is present but no key was given, so it was not checked.</summary>
    NotChecked,

    /// <summary>The bundle has no signature entry (only possible when no signature is required).</summary>
    Absent,
}

/// <summary>How <see cref="BundleReader"/> reads a bundle.</summary>
public sealed record BundleReadOptions
{
    /// <summary>
    /// The public key the bundle must be signed with. When set, the signature entry must be present and
    /// verify with this key, whatever <see cref="RequireSignature"/> says.
    /// </summary>
    public VerificationKey? Key { get; init; }

    /// <summary>
    /// When true (the default) a <see cref="Key"/> is mandatory and a bundle without a valid signature is refused.
    /// Set false only to look at a bundle without trusting it (inspect).
    /// </summary>
    public bool RequireSignature { get; init; } = true;

    /// <summary>Receives the verified pieces while the bundle streams past.</summary>
    public IBundleVisitor? Visitor { get; init; }

    /// <summary>Stop after <c>index.json</c> (the head): no blob is read and completeness is not checked.</summary>
    public bool HeadOnly { get; init; }

    /// <summary>
    /// Accept a head with a part table. Set by the readers of a part set (and to peek at part 1); a plain file whose head
    /// says it is one part of a set is otherwise refused.
    /// </summary>
    public bool AllowParts { get; init; }

    /// <summary>
    /// Receives the number of (decompressed) tar bytes consumed so far: at every entry, at least every MiB
    /// while blob data streams (whether the visitor or the reader reads it), and once at the end.
    /// </summary>
    public IProgress<long>? Progress { get; init; }

    /// <summary>Names the bundle in messages (e.g. its path). Defaults to "bundle".</summary>
    public string? SourceName { get; init; }
}

/// <summary>The first four entries of a bundle, read and checked.</summary>
public sealed record BundleHead
{
    /// <summary>The parsed <c>openlm-bundle.json</c>.</summary>
    public required BundleManifest Manifest { get; init; }

    /// <summary>The exact <c>openlm-bundle.json</c> bytes (what the signature covers).</summary>
    public required ReadOnlyMemory<byte> ManifestBytes { get; init; }

    /// <summary>SHA-256 of <see cref="ManifestBytes"/>: the identity of the bundle (same compressed or not).</summary>
    public required Digest BundleDigest { get; init; }

    public required SignatureStatus Signature { get; init; }

    /// <summary>The key id that verified the signature; null unless <see cref="Signature"/> is <see cref="SignatureStatus.Verified"/>.</summary>
    public string? VerifiedKeyId { get; init; }

    /// <summary>True when the signature was checked and is valid.</summary>
    public bool SignatureChecked => Signature == SignatureStatus.Verified;

    /// <summary>The descriptors of <c>index.json</c>, each with its ref name (the full source reference).</summary>
    public required IReadOnlyList<Descriptor> Images { get; init; }

    /// <summary>The exact <c>index.json</c> bytes.</summary>
    public required ReadOnlyMemory<byte> IndexBytes { get; init; }

    /// <summary>True when the bundle was zstd-compressed.</summary>
    public required bool Compressed { get; init; }
}

/// <summary>The outcome of a successful <see cref="BundleReader"/> pass.</summary>
public sealed record BundleReadResult
{
    public required BundleHead Head { get; init; }

    /// <summary>
    /// True when every blob was read, every digest matched and nothing was missing or extra.
    /// False only for <see cref="BundleReadOptions.HeadOnly"/> reads.
    /// </summary>
    public required bool Complete { get; init; }

    /// <summary>Blob entries read (0 for a head-only read).</summary>
    public long BlobCount { get; init; }

    /// <summary>Sum of their sizes.</summary>
    public long BlobBytes { get; init; }

    /// <summary>For a delta: how many blobs (and bytes) the bundle leaves to the target, as its signed head lists them.</summary>
    public long OmittedCount { get; init; }

    public long OmittedBytes { get; init; }

    /// <summary>
    /// Every manifest and index of the bundle, children before parents: the order in which to push them
    /// to a registry (which wants a manifest's references to exist first). Empty for a head-only read.
    /// </summary>
    public IReadOnlyList<Descriptor> ManifestsChildrenFirst { get; init; } = [];
}

/// <summary>
/// Receives a bundle's content while <see cref="BundleReader"/> streams it, in tar order:
/// <see cref="OnHeadAsync"/> once, then <see cref="OnManifestAsync"/> / <see cref="OnBlobAsync"/> per blob,
/// then <see cref="OnCompletedAsync"/> once, only when the whole bundle verified.
/// <para>
/// Trust: the head and manifests are trusted when <see cref="BundleHead.Signature"/> is
/// <see cref="SignatureStatus.Verified"/> (the signature pins index.json, which pins the manifests by digest).
/// Blob streams are NOT trusted while being read: see <see cref="OnBlobAsync"/>. Anything that makes content
/// visible under a name (tags) belongs in <see cref="OnCompletedAsync"/>. If any check fails the reader throws
/// and <see cref="OnCompletedAsync"/> is never called.
/// </para>
/// Every method has a no-op default; implement only what you need.
/// </summary>

public interface IBundleVisitor
{
    /// <summary>After <c>oci-layout</c>, <c>openlm-bundle.json</c>, the signature and <c>index.json</c> were read and checked.</summary>
    ValueTask OnHeadAsync(BundleHead head, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>
    /// A manifest or index blob. <paramref name="verifiedBytes"/> already matched the descriptor's digest and
    /// size and parsed as a manifest. The memory stays valid after the call (copy not required).
    /// </summary>
    ValueTask OnManifestAsync(Descriptor descriptor, ReadOnlyMemory<byte> verifiedBytes, CancellationToken cancellationToken) =>
        ValueTask.CompletedTask;

    /// <summary>
    /// Any other blob (config, layer, chart content). <paramref name="content"/> yields at most
    /// <c>descriptor.Size</c> bytes and is verified as it is read: the read that reaches the end throws
    /// <see cref="Errors.IntegrityException"/> if size or digest differ. Until that final read returned 0 the bytes
    /// are untrusted. The visitor may read all, part or none of it; the reader drains and verifies whatever is
    /// left after the call and throws on mismatch. Do not keep the stream after returning.
    /// </summary>
    ValueTask OnBlobAsync(Descriptor descriptor, Stream content, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>The whole bundle verified: every blob present with the right digest, nothing extra. Commit here (tags).</summary>
    ValueTask OnCompletedAsync(BundleReadResult result, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}

/// <summary>
/// A visitor that indexes instead of reading (<see cref="BundleSource"/> only): offered each non-manifest blob of a
/// seekable tar stream, with the offset of its data, before <see cref="IBundleVisitor.OnBlobAsync"/>; returning true takes it over: the reader seeks past
/// its bytes (still checking the entry's name, type, size and the bundle's completeness) and its digest is NOT checked by
/// this pass: the indexer must verify it whenever it is read.
/// </summary>
internal interface IBlobIndexer
{
    ValueTask<bool> ClaimBlobAsync(Descriptor descriptor, long dataOffset, CancellationToken cancellationToken);
}
