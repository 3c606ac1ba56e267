using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// The model of <c>openlm-bundle.json</c>: what a bundle holds, who signed it, and the digest of its
/// <c>index.json</c> (which pins every blob). Serialised with <see cref="BundleFormat.JsonOptions"/>;
/// property order is fixed by <see cref="JsonPropertyOrderAttribute"/>. Unknown properties are ignored
/// on read (forward compatibility within format version 1).
/// </summary>
public sealed record BundleManifest
{
    [JsonPropertyName("formatVersion")]
    [JsonPropertyOrder(0)]
    public int FormatVersion { get; init; } = BundleFormat.FormatVersion;

    [JsonPropertyName("platform")]
    [JsonPropertyOrder(1)]
    public BundleProduct Platform { get; init; } = new();

    /// <summary>When the bundle was made (UTC, whole seconds); from SOURCE_DATE_EPOCH when set.</summary>
    [JsonPropertyName("created")]
    [JsonPropertyOrder(2)]
    [JsonConverter(typeof(Iso8601UtcConverter))]
    public DateTimeOffset? Created { get; init; }

    [JsonPropertyName("tool")]
    [JsonPropertyOrder(3)]
    public BundleProduct Tool { get; init; } = new();

    /// <summary>Where the images came from, e.g. <c>public.ecr.aws/r3q3q2f4</c>.</summary>
    [JsonPropertyName("source")]
    [JsonPropertyOrder(4)]
    public string Source { get; init; } = string.Empty;

    [JsonPropertyName("images")]
    [JsonPropertyOrder(5)]
    public IReadOnlyList<BundleImage> Images { get; init; } = [];

    [JsonPropertyName("charts")]
    [JsonPropertyOrder(6)]
    public IReadOnlyList<BundleChart> Charts { get; init; } = [];

    /// <summary>SHA-256 and size of the exact <c>index.json</c> bytes in the bundle.</summary>
    [JsonPropertyName("index")]
    [JsonPropertyOrder(7)]
    public BundleIndexInfo? Index { get; init; }

    [JsonPropertyName("blobs")]
    [JsonPropertyOrder(8)]
    public BundleBlobStats? Blobs { get; init; }

    [JsonPropertyName("signer")]
    [JsonPropertyOrder(9)]
    public BundleSigner? Signer { get; init; }

    /// <summary>Null for a full bundle; for a delta bundle, its bases and every blob it omits.</summary>
    [JsonPropertyName("base")]
    [JsonPropertyOrder(10)]
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public BundleBase? Base { get; init; }

    /// <summary>Null for a single file; for a bundle written as several part files, the table of parts.</summary>
    [JsonPropertyName("parts")]
    [JsonPropertyOrder(11)]
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public BundleParts? Parts { get; init; }
}

/// <summary>A product name and version (the platform release, or the tool that wrote the bundle).</summary>
public sealed record BundleProduct
{
    [JsonPropertyName("name")]
    [JsonPropertyOrder(0)]
    public string Name { get; init; } = string.Empty;

    [JsonPropertyName("version")]
    [JsonPropertyOrder(1)]
    public string Version { get; init; } = string.Empty;
}

/// <summary>One image of the bundle; <see cref="Reference"/> equals its ref name in <c>index.json</c>.</summary>
public sealed record BundleImage
{
    /// <summary>Full source reference with tag, e.g. <c>public.ecr.aws/r3q3q2f4/olm-server:1.260716.1540</c>.</summary>
    [JsonPropertyName("reference")]
    [JsonPropertyOrder(0)]
    public string Reference { get; init; } = string.Empty;

    [JsonPropertyName("digest")]
    [JsonPropertyOrder(1)]
    public string Digest { get; init; } = string.Empty;

    [JsonPropertyName("mediaType")]
    [JsonPropertyOrder(2)]
    public string MediaType { get; init; } = string.Empty;

    /// <summary>Platforms kept, e.g. <c>linux/amd64</c>.</summary>
    [JsonPropertyName("platforms")]
    [JsonPropertyOrder(3)]
    public IReadOnlyList<string> Platforms { get; init; } = [];

    /// <summary>Sum of the sizes of the unique blobs (manifests included) this image needs.</summary>
    [JsonPropertyName("size")]
    [JsonPropertyOrder(4)]
    public long Size { get; init; }

    /// <summary>Helm values paths that name this image, e.g. <c>server.image</c>.</summary>
    [JsonPropertyName("values")]
    [JsonPropertyOrder(5)]
    public IReadOnlyList<string> Values { get; init; } = [];
}

/// <summary>A Helm chart stored in the bundle as an OCI artifact.</summary>
public sealed record BundleChart
{
    [JsonPropertyName("name")]
    [JsonPropertyOrder(0)]
    public string Name { get; init; } = string.Empty;

    [JsonPropertyName("version")]
    [JsonPropertyOrder(1)]
    public string Version { get; init; } = string.Empty;

    /// <summary>Its ref name in <c>index.json</c>, e.g. <c>public.ecr.aws/r3q3q2f4/charts/olm:1.2.3</c>.</summary>
    [JsonPropertyName("reference")]
    [JsonPropertyOrder(2)]
    public string Reference { get; init; } = string.Empty;

    [JsonPropertyName("digest")]
    [JsonPropertyOrder(3)]
    public string Digest { get; init; } = string.Empty;
}

public sealed record BundleIndexInfo
{
    [JsonPropertyName("digest")]
    [JsonPropertyOrder(0)]
    public string Digest { get; init; } = string.Empty;

    [JsonPropertyName("size")]
    [JsonPropertyOrder(1)]
    public long Size { get; init; }
}

public sealed record BundleBlobStats
{
    /// <summary>Number of <c>blobs/sha256/…</c> entries.</summary>
    [JsonPropertyName("count")]
    [JsonPropertyOrder(0)]
    public long Count { get; init; }

    /// <summary>Sum of their sizes.</summary>
    [JsonPropertyName("totalBytes")]
    [JsonPropertyOrder(1)]
    public long TotalBytes { get; init; }
}

public sealed record BundleSigner
{
    /// <summary><c>sha256:</c> + hex SHA-256 of the signer's DER SubjectPublicKeyInfo.</summary>
    [JsonPropertyName("keyId")]
    [JsonPropertyOrder(0)]
    public string KeyId { get; init; } = string.Empty;
}

/// <summary>
/// What a delta bundle builds on: the files its content was compared against (<see cref="Files"/>), and every blob it
/// leaves out because one of them holds it (<see cref="Omitted"/>, with its size). The omitted blobs must already be in
/// the target when the delta is imported; the importer's base check asks the target for each before anything is pushed.
/// Manifests and indexes are never omitted (they are small, and they are what makes every tag settable and the graph
/// walkable from the delta alone): only configs and layers are.
/// </summary>
public sealed record BundleBase
{
    [JsonPropertyName("files")]
    [JsonPropertyOrder(0)]
    public IReadOnlyList<BundleBaseFile> Files { get; init; } = [];

    /// <summary>Every blob left out, sorted by digest.</summary>
    [JsonPropertyName("omitted")]
    [JsonPropertyOrder(1)]
    public IReadOnlyList<BundleOmittedBlob> Omitted { get; init; } = [];
}

/// <summary>One base a delta was compared against.</summary>
public sealed record BundleBaseFile
{
    /// <summary><c>bundle</c>, <c>lock</c> or <c>receipt</c>.</summary>
    [JsonPropertyName("kind")]
    [JsonPropertyOrder(0)]
    public string Kind { get; init; } = string.Empty;

    /// <summary>The platform release the base delivered (or, for a receipt, that the target holds).</summary>
    [JsonPropertyName("release")]
    [JsonPropertyOrder(1)]
    public BundleProduct Release { get; init; } = new();

    /// <summary>
    /// For a bundle its bundle digest (SHA-256 of its <c>openlm-bundle.json</c>, the same for every compression and
    /// split of it); for a lock or a receipt the SHA-256 of the file's bytes.
    /// </summary>
    [JsonPropertyName("digest")]
    [JsonPropertyOrder(2)]
    public string Digest { get; init; } = string.Empty;
}

/// <summary>A blob a delta leaves out, and which base (1-based index into <see cref="BundleBase.Files"/>) supplies it.</summary>
public sealed record BundleOmittedBlob
{
    [JsonPropertyName("digest")]
    [JsonPropertyOrder(0)]
    public string Digest { get; init; } = string.Empty;

    [JsonPropertyName("size")]
    [JsonPropertyOrder(1)]
    public long Size { get; init; }

    [JsonPropertyName("base")]
    [JsonPropertyOrder(2)]
    public int Base { get; init; }
}

/// <summary>
/// The bundle is written as several files (<c>NAME.001</c>, <c>NAME.002</c>, …) whose concatenation is the bundle; part 1
/// starts with the head. Each part is listed with its byte range in the bundle and a SHA-256, so every part is checked on
/// its own and a bad one is named by number. The first part's hash covers its bytes from <see cref="BodyOffset"/> on (the
/// bytes before are the head entries, which the signature covers and which hold this table): that is what lets the
/// table be signed inside the bundle it describes.
/// </summary>
public sealed record BundleParts
{
    /// <summary>The largest part size asked for; every part is at most this long.</summary>
    [JsonPropertyName("partSize")]
    [JsonPropertyOrder(0)]
    public long PartSize { get; init; }

    /// <summary>Total length of the bundle (the sum of the parts).</summary>
    [JsonPropertyName("totalBytes")]
    [JsonPropertyOrder(1)]
    public long TotalBytes { get; init; }

    /// <summary>Where the entries after the signature start; the first part's hash covers its bytes from here.</summary>
    [JsonPropertyName("bodyOffset")]
    [JsonPropertyOrder(2)]
    public long BodyOffset { get; init; }

    [JsonPropertyName("files")]
    [JsonPropertyOrder(3)]
    public IReadOnlyList<BundlePart> Files { get; init; } = [];
}

/// <summary>One part file: its 1-based number, the byte range of the bundle it holds, and its hash.</summary>
public sealed record BundlePart
{
    [JsonPropertyName("index")]
    [JsonPropertyOrder(0)]
    public int Index { get; init; }

    [JsonPropertyName("offset")]
    [JsonPropertyOrder(1)]
    public long Offset { get; init; }

    [JsonPropertyName("size")]
    [JsonPropertyOrder(2)]
    public long Size { get; init; }

    /// <summary><c>sha256:</c> + hex of the part's bytes (for part 1, from <see cref="BundleParts.BodyOffset"/> on).</summary>
    [JsonPropertyName("sha256")]
    [JsonPropertyOrder(3)]
    public string Sha256 { get; init; } = string.Empty;
}

/// <summary>Writes <c>yyyy-MM-ddTHH:mm:ssZ</c> (UTC, whole seconds); reads any ISO 8601 date-time with offset.</summary>
public sealed class Iso8601UtcConverter : JsonConverter<DateTimeOffset?>
{
    public override bool HandleNull => true;

    public override DateTimeOffset? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        var text = reader.GetString();
        if (text is null || !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value))
        {
            throw new JsonException($"'{text}' is not an ISO 8601 date-time");
        }

        return value.ToUniversalTime();
    }

    public override void Write(Utf8JsonWriter writer, DateTimeOffset? value, JsonSerializerOptions options)
    {
        if (value is null)
        {
            writer.WriteNullValue();
            return;
        }

        writer.WriteStringValue(value.Value.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
    }
}
