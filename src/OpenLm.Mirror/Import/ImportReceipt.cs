using System.Text.Json;
using System.Text.Json.Serialization;
using OpenLm.Mirror.Content;

namespace OpenLm.Mirror.Import;

/// <summary>
/// What an import left in the target registry: the record an air-gapped site keeps (and later hands back as the base
/// of a delta bundle). Written atomically; its shape is versioned by <see cref="ReceiptVersion"/>.
/// </summary>
public sealed record ImportReceipt
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
    };

    public int ReceiptVersion { get; init; } = 1;

    public required string Registry { get; init; }

    public required DateTimeOffset Time { get; init; }

    public required string BundleDigest { get; init; }

    public required ReceiptPlatform Platform { get; init; }

    public required IReadOnlyList<ReceiptImage> Images { get; init; }

    /// <summary>The receipt of a finished (not dry-run) import.</summary>
    public static ImportReceipt From(ImportResult result, DateTimeOffset time)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (result.DryRun)
        {
            throw new ArgumentException("a dry run imports nothing, so it has no receipt", nameof(result));
        }

        return new ImportReceipt
        {
            Registry = result.Registry,
            Time = time,
            BundleDigest = result.BundleDigest,
            Platform = new ReceiptPlatform(result.Platform, result.Version),
            Images = result.Images.Select(i => new ReceiptImage(i.Source, i.Target, i.Digest, i.MediaType)).ToList(),
        };
    }

    /// <summary>Writes the receipt to <paramref name="path"/> (temporary file, then rename).</summary>
    public void Write(string path) => AtomicFile.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(this, Json));
}

/// <summary>The platform release a receipt records.</summary>
public sealed record ReceiptPlatform([property: JsonPropertyName("name")] string Name, [property: JsonPropertyName("version")] string Version);

/// <summary>One image a receipt records: where it came from, where it is, and its digest.</summary>
public sealed record ReceiptImage(
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("target")] string Target,
    [property: JsonPropertyName("digest")] string Digest,
    [property: JsonPropertyName("mediaType")] string MediaType);
