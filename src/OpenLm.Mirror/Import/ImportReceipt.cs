using System.Text.Json;
using System.Text.Json.Serialization;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Import;

/// <summary>
/// What an import left in the target registry: the record an air-gapped site keeps (and later hands back as the base
/// of a delta bundle). Written atomically; its shape is versioned by <see cref="ReceiptVersion"/>. <see cref="Contents"/>
/// lists every manifest and blob the imported images need (all in the target when the receipt was written), so release
/// engineering can leave exactly those out of the next bundle.
/// </summary>
public sealed record ImportReceipt
{
    public const int CurrentVersion = 1;

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
    };

    public int ReceiptVersion { get; init; } = CurrentVersion;

    public required string Registry { get; init; }

    public required DateTimeOffset Time { get; init; }

    public required string BundleDigest { get; init; }

    public required ReceiptPlatform Platform { get; init; }

    public required IReadOnlyList<ReceiptImage> Images { get; init; }

    /// <summary>Every manifest and blob in the target that the images need, sorted by digest (empty in receipts of older tools).</summary>
    public IReadOnlyList<ReceiptBlob> Contents { get; init; } = [];

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
            Contents = result.Contents,
        };
    }

    /// <summary>Writes the receipt to <paramref name="path"/> (temporary file, then rename).</summary>
    public void Write(string path) => AtomicFile.WriteAllBytes(path, Serialize());

    public byte[] Serialize() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    /// <summary>Reads a receipt from its bytes; anything that is not one (not JSON, another kind of file, a newer version) is an input error naming <paramref name="where"/>.</summary>
    public static ImportReceipt Parse(byte[] bytes, string where)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ImportReceipt? receipt;
        try
        {
            using (var doc = JsonDocument.Parse(bytes))
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("receiptVersion", out var version) || version.ValueKind != JsonValueKind.Number)
                {
                    throw new InputException($"{where}: not an import receipt (no receiptVersion); a receipt is what 'import' or 'inventory' wrote");
                }

                if (!version.TryGetInt32(out var v) || v != CurrentVersion)
                {
                    throw new InputException($"{where}: receiptVersion {version} is not supported (this tool reads version {CurrentVersion})");
                }
            }

            receipt = JsonSerializer.Deserialize<ImportReceipt>(bytes, Json);
        }
        catch (JsonException ex)
        {
            throw new InputException($"{where}: not a valid import receipt: {ex.Message}", ex);
        }

        if (receipt is null)
        {
            throw new InputException($"{where}: not a valid import receipt (null)");
        }

        foreach (var blob in receipt.Contents)
        {
            if (!Oci.Digest.TryParse(blob.Digest, out _) || blob.Size < 0)
            {
                throw new InputException($"{where}: contents lists '{blob.Digest}' ({blob.Size} bytes), which is not a digest with a size");
            }
        }

        return receipt;
    }
}

/// <summary>The platform release a receipt records.</summary>
public sealed record ReceiptPlatform([property: JsonPropertyName("name")] string Name, [property: JsonPropertyName("version")] string Version);

/// <summary>One image a receipt records: where it came from, where it is, and its digest.</summary>
public sealed record ReceiptImage(
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("target")] string Target,
    [property: JsonPropertyName("digest")] string Digest,
    [property: JsonPropertyName("mediaType")] string MediaType);

/// <summary>One manifest or blob a receipt records as present in the target.</summary>
public sealed record ReceiptBlob(
    [property: JsonPropertyName("digest")] string Digest,
    [property: JsonPropertyName("size")] long Size);
