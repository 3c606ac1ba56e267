using System.Text.Json;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Oci;

/// <summary>
/// A parsed view of manifest bytes (image manifest, index, Docker schema2 or list, OCI artifact).
/// The bytes themselves are kept untouched; this type never re-serialises them.
/// </summary>
public sealed class ManifestDocument
{
    /// <summary>Manifests larger than this are refused (as Distribution and containerd do).</summary>
    public const int MaxManifestBytes = 4 * 1024 * 1024;

    private static readonly JsonSerializerOptions JsonOptions = new() { PropertyNameCaseInsensitive = false, TypeInfoResolver = MirrorJsonContext.Resolver };

    private ManifestDocument(string mediaType, ReadOnlyMemory<byte> bytes)
    {
        MediaType = mediaType;
        Bytes = bytes;
    }

    public string MediaType { get; }

    public ReadOnlyMemory<byte> Bytes { get; }

    public Descriptor? Config { get; private init; }

    public IReadOnlyList<Descriptor> Layers { get; private init; } = [];

    public IReadOnlyList<Descriptor> Manifests { get; private init; } = [];

    public Descriptor? Subject { get; private init; }

    public string? ArtifactType { get; private init; }

    public IReadOnlyDictionary<string, string>? Annotations { get; private init; }

    public bool IsIndex => MediaTypes.IsIndex(MediaType);

    /// <summary>Everything this manifest points at (config, layers; or child manifests of an index).</summary>
    public IEnumerable<Descriptor> Children =>
        IsIndex ? Manifests : (Config is null ? Layers : Layers.Prepend(Config));

    /// <summary>Parses manifest bytes; <paramref name="declaredMediaType"/> is the Content-Type or descriptor media type.</summary>
    public static ManifestDocument Parse(ReadOnlyMemory<byte> bytes, string? declaredMediaType, string source)
    {
        if (bytes.Length > MaxManifestBytes)
        {
            throw new InputException($"{source}: manifest is {bytes.Length} bytes, larger than the {MaxManifestBytes} byte limit");
        }

        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            root = doc.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new InputException($"{source}: manifest is not valid JSON: {ex.Message}", ex);
        }

        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new InputException($"{source}: manifest is not a JSON object");
        }

        var schemaVersion = root.TryGetProperty("schemaVersion", out var sv) && sv.ValueKind == JsonValueKind.Number
            ? (sv.TryGetInt32(out var version) ? version : -1)
            : 0;
        if (schemaVersion == 1)
        {
            throw new InputException($"{source}: Docker schema 1 manifests are not supported (deprecated since 2017); re-push the image with schema 2");
        }

        var embedded = root.TryGetProperty("mediaType", out var mt) && mt.ValueKind == JsonValueKind.String ? mt.GetString() : null;
        var declared = NormaliseContentType(declaredMediaType);
        string mediaType;
        if (embedded is not null)
        {
            mediaType = embedded;
        }
        else if (declared is not null && MediaTypes.IsManifest(declared))
        {
            mediaType = declared;
        }
        else if (root.TryGetProperty("manifests", out _))
        {
            mediaType = MediaTypes.OciIndex;
        }
        else if (root.TryGetProperty("config", out _))
        {
            mediaType = MediaTypes.OciManifest;
        }
        else
        {
            throw new InputException($"{source}: cannot tell the manifest type (no mediaType, config or manifests field)");
        }

        if (!MediaTypes.IsManifest(mediaType))
        {
            throw new InputException($"{source}: unsupported manifest media type '{mediaType}'");
        }

        if (schemaVersion != 2)
        {
            throw new InputException($"{source}: manifest schemaVersion is {(schemaVersion < 0 ? sv.GetRawText() : schemaVersion)}, expected 2");
        }

        try
        {
            if (MediaTypes.IsIndex(mediaType))
            {
                return new ManifestDocument(mediaType, bytes)
                {
                    Manifests = ReadDescriptors(root, "manifests", required: true),
                    Subject = ReadDescriptor(root, "subject"),
                    ArtifactType = ReadString(root, "artifactType"),
                    Annotations = ReadAnnotations(root),
                };
            }

            var config = ReadDescriptor(root, "config")
                ?? throw new InputException($"{source}: image manifest has no config descriptor");
            return new ManifestDocument(mediaType, bytes)
            {
                Config = config,
                Layers = ReadDescriptors(root, "layers", required: false),
                Subject = ReadDescriptor(root, "subject"),
                ArtifactType = ReadString(root, "artifactType"),
                Annotations = ReadAnnotations(root),
            };
        }
        catch (JsonException ex)
        {
            throw new InputException($"{source}: malformed descriptor in manifest: {ex.Message}", ex);
        }
    }

    /// <summary>Strips parameters from a Content-Type header value.</summary>
    public static string? NormaliseContentType(string? contentType)
    {
        if (string.IsNullOrWhiteSpace(contentType))
        {
            return null;
        }

        var semi = contentType.IndexOf(';');
        return (semi >= 0 ? contentType[..semi] : contentType).Trim();
    }

    private static string? ReadString(JsonElement root, string name) =>
        root.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;

    private static Descriptor? ReadDescriptor(JsonElement root, string name) =>
        root.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.Object ? ToDescriptor(e, name) : null;

    private static IReadOnlyList<Descriptor> ReadDescriptors(JsonElement root, string name, bool required)
    {
        if (!root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null)
        {
            if (required)
            {
                throw new JsonException($"missing '{name}' array");
            }

            return [];
        }

        if (e.ValueKind != JsonValueKind.Array)
        {
            throw new JsonException($"'{name}' is not an array");
        }

        var list = new List<Descriptor>(e.GetArrayLength());
        var i = 0;
        foreach (var item in e.EnumerateArray())
        {
            list.Add(ToDescriptor(item, $"{name}[{i++}]"));
        }

        return list;
    }

    private static Descriptor ToDescriptor(JsonElement element, string path)
    {
        Descriptor? d;
        try
        {
            d = element.Deserialize<Descriptor>(JsonOptions);
        }
        catch (JsonException ex)
        {
            throw new JsonException($"{path}: {ex.Message}", ex);
        }

        if (d is null || string.IsNullOrEmpty(d.MediaType) || d.Digest.IsEmpty)
        {
            throw new JsonException($"{path}: descriptor needs mediaType, digest and size");
        }

        if (d.Size < 0)
        {
            throw new JsonException($"{path}: negative size {d.Size}");
        }

        return d;
    }

    private static IReadOnlyDictionary<string, string>? ReadAnnotations(JsonElement root)
    {
        if (!root.TryGetProperty("annotations", out var e) || e.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        try
        {
            return e.Deserialize<Dictionary<string, string>>(JsonOptions);
        }
        catch (JsonException ex)
        {
            throw new JsonException($"annotations: {ex.Message}", ex);
        }
    }
}
