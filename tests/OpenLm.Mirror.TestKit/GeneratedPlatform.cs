using System.IO.Compression;
using System.Text.Json;

namespace OpenLm.Mirror.TestKit;

/// <summary>Options for <see cref="SamplePlatform.WriteLayout"/>.</summary>
public sealed record GenerateOptions
{
    /// <summary>Layers generated in parallel (default: processor count).</summary>
    public int MaxParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>
    /// gzip level for layers. Default <see cref="CompressionLevel.NoCompression"/> (stored deflate blocks): layer content is
    /// random, so compressing buys nothing and costs most of the generation time. The output is still valid gzip.
    /// </summary>
    public CompressionLevel LayerCompression { get; init; } = CompressionLevel.NoCompression;
}

/// <summary>A layer (or artifact payload) descriptor of a generated manifest.</summary>
/// <param name="DiffId">sha256 of the uncompressed tar for tar+gzip layers; null for raw artifact payloads.</param>
public sealed record GeneratedLayer(string Digest, string MediaType, long Size, string? DiffId);

/// <summary>One image manifest (a single-platform image, an index child, or an artifact manifest).</summary>
/// <param name="Platform">linux/amd64 etc.; null for artifacts and charts.</param>
public sealed record GeneratedManifest(
    string Digest,
    string MediaType,
    long Size,
    ImagePlatform? Platform,
    string ConfigDigest,
    string ConfigMediaType,
    long ConfigSize,
    IReadOnlyList<GeneratedLayer> Layers);

/// <summary>A generated, tagged image (top-level object) of a <see cref="GeneratedPlatform"/>.</summary>
/// <param name="Digest">sha256 of the top-level manifest/index bytes (<c>sha256:…</c>).</param>
/// <param name="MediaType">Media type of the top-level manifest/index.</param>
/// <param name="ManifestSize">Size of the top-level manifest/index bytes.</param>
/// <param name="TotalSize">Top-level manifest + child manifests + unique config/layer blobs.</param>
/// <param name="BlobDigests">Distinct config and layer digests over all manifests (no manifests).</param>
/// <param name="ChildManifestDigests">Child manifest digests of a list/index (empty otherwise), in index order.</param>
/// <param name="Manifests">The image manifest itself for single manifests, the children for lists/indexes.</param>
/// <param name="ArtifactType">artifactType of an <see cref="SampleImageKind.Artifact"/>; null otherwise.</param>
public sealed record GeneratedImage(
    string Repository,
    string Tag,
    SampleImageKind Kind,
    string Digest,
    string MediaType,
    long ManifestSize,
    long TotalSize,
    IReadOnlyList<string> BlobDigests,
    IReadOnlyList<string> ChildManifestDigests,
    IReadOnlyList<GeneratedManifest> Manifests,
    string? ArtifactType)
{
    /// <summary><c>repository:tag</c> — also the <c>org.opencontainers.image.ref.name</c> in the layout's index.json.</summary>
    public string Reference => $"{Repository}:{Tag}";

    public bool IsIndex => MediaTypes.IsIndex(MediaType);

    /// <summary>Per-child platforms of a list/index (empty otherwise).</summary>
    public IReadOnlyList<ImagePlatform> Platforms => IsIndex ? Manifests.Select(m => m.Platform!).ToArray() : [];

    /// <summary>Every digest a registry must hold for this image: manifests (top-level and children) and blobs.</summary>
    public IEnumerable<string> AllDigests => new[] { Digest }.Concat(ChildManifestDigests).Concat(BlobDigests);
}

/// <summary>
/// Result of generating a <see cref="SamplePlatform"/>: an OCI image layout at <see cref="Directory"/>
/// (<c>oci-layout</c>, <c>index.json</c>, <c>blobs/sha256/…</c>) plus the metadata of every image.
/// </summary>
public sealed class GeneratedPlatform
{
    private readonly IReadOnlyDictionary<string, long> _blobSizes;

    internal GeneratedPlatform(SamplePlatform spec, string directory, IReadOnlyList<GeneratedImage> images, IReadOnlyDictionary<string, long> blobSizes)
    {
        Spec = spec;
        Directory = directory;
        Images = images;
        _blobSizes = blobSizes;
    }

    public SamplePlatform Spec { get; }

    /// <summary>Root of the OCI image layout.</summary>
    public string Directory { get; }

    public IReadOnlyList<GeneratedImage> Images { get; }

    /// <summary>Number of distinct blobs (manifests included) in the layout.</summary>
    public int UniqueBlobCount => _blobSizes.Count;

    /// <summary>Sum of the sizes of all distinct blobs (manifests included) — what a deduplicating store holds.</summary>
    public long UniqueBytes => _blobSizes.Values.Sum();

    public GeneratedImage this[string reference] =>
        Images.FirstOrDefault(i => i.Reference == reference) ?? throw new KeyNotFoundException($"No generated image '{reference}'.");

    public string GetBlobPath(string digest) => Path.Combine(Directory, "blobs", "sha256", Digests.Hex(digest));

    public long GetBlobSize(string digest) => _blobSizes.TryGetValue(digest, out var size) ? size : throw new KeyNotFoundException(digest);

    public byte[] ReadBlob(string digest) => File.ReadAllBytes(GetBlobPath(digest));

    public Stream OpenBlob(string digest) => File.OpenRead(GetBlobPath(digest));

    /// <summary>Pushes every image (blobs, child manifests, then the tagged manifest/index) to a registry.</summary>
    public Task<RegistryPushResult> PushAsync(string registry, RegistryPushOptions? options = null, CancellationToken cancellationToken = default) =>
        RegistryPusher.PushAsync(this, registry, options, cancellationToken);

    /// <summary>Machine-readable summary (used by the CLI's <c>--json</c>).</summary>
    public string ToSummaryJson(string? registry = null)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, Json.WriterOptions))
        {
            w.WriteStartObject();
            if (registry is not null) w.WriteString("registry", registry);
            w.WriteString("layout", Directory);
            w.WriteNumber("seed", Spec.Seed);
            w.WriteNumber("imageCount", Images.Count);
            w.WriteNumber("uniqueBlobs", UniqueBlobCount);
            w.WriteNumber("uniqueBytes", UniqueBytes);
            w.WriteStartArray("images");
            foreach (var image in Images)
            {
                w.WriteStartObject();
                w.WriteString("reference", image.Reference);
                if (registry is not null) w.WriteString("pullReference", $"{registry}/{image.Reference}");
                w.WriteString("repository", image.Repository);
                w.WriteString("tag", image.Tag);
                w.WriteString("kind", image.Kind.ToString());
                w.WriteString("digest", image.Digest);
                w.WriteString("mediaType", image.MediaType);
                if (image.ArtifactType is not null) w.WriteString("artifactType", image.ArtifactType);
                w.WriteNumber("totalSize", image.TotalSize);
                w.WriteStartArray("manifests");
                foreach (var m in image.Manifests)
                {
                    w.WriteStartObject();
                    w.WriteString("digest", m.Digest);
                    w.WriteString("mediaType", m.MediaType);
                    if (m.Platform is not null) w.WriteString("platform", m.Platform.ToString());
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartArray("blobs");
                foreach (var b in image.BlobDigests) w.WriteStringValue(b);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
