using System.Text.Json;
using System.Text.Json.Serialization;

namespace OpenLm.Mirror.Oci;

/// <summary>An OCI content descriptor.</summary>
public sealed record Descriptor
{
    [JsonPropertyName("mediaType")]
    public required string MediaType { get; init; }

    [JsonPropertyName("digest")]
    [JsonConverter(typeof(DigestJsonConverter))]
    public required Digest Digest { get; init; }

    [JsonPropertyName("size")]
    public required long Size { get; init; }

    [JsonPropertyName("urls")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Urls { get; init; }

    [JsonPropertyName("annotations")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    [JsonPropertyName("platform")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Platform? Platform { get; init; }

    [JsonPropertyName("artifactType")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ArtifactType { get; init; }

    public const string RefNameAnnotation = "org.opencontainers.image.ref.name";

    /// <summary>The <c>org.opencontainers.image.ref.name</c> annotation, if any.</summary>
    [JsonIgnore]
    public string? RefName => Annotations is not null && Annotations.TryGetValue(RefNameAnnotation, out var v) ? v : null;

    public static Descriptor For(string mediaType, ReadOnlySpan<byte> content) =>
        new() { MediaType = mediaType, Digest = Digest.Sha256(content), Size = content.Length };

    public Descriptor WithRefName(string refName)
    {
        var annotations = Annotations is null
            ? new Dictionary<string, string>(StringComparer.Ordinal)
            : new Dictionary<string, string>(Annotations, StringComparer.Ordinal);
        annotations[RefNameAnnotation] = refName;
        return this with { Annotations = annotations };
    }

    /// <summary>Descriptor identity for content: digest and size (annotations and platform aside).</summary>
    public bool SameContent(Descriptor other) => Digest == other.Digest && Size == other.Size;

    public override string ToString() => $"{MediaType} {Digest} ({Size} bytes)";
}

/// <summary>Reads and writes <see cref="Digest"/> as its string form, rejecting malformed digests.</summary>
public sealed class DigestJsonConverter : JsonConverter<Digest>
{
    public override Digest Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var text = reader.GetString();
        if (!Digest.TryParse(text, out var digest, out var error))
        {
            throw new JsonException(error);
        }

        return digest;
    }

    public override void Write(Utf8JsonWriter writer, Digest value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString());
}
