using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Bundle;

/// <summary>Names, limits and encodings of the bundle format (see docs/bundle-format.md).</summary>
public static class BundleFormat
{
    /// <summary>The only format version this library writes and reads.</summary>
    public const int FormatVersion = 1;

    public const string OciLayoutEntry = "oci-layout";
    public const string ManifestEntry = "openlm-bundle.json";
    public const string SignatureEntry = "openlm-bundle.json.sig";
    public const string IndexEntry = "index.json";
    public const string BlobPrefix = "blobs/sha256/";

    /// <summary>The exact <c>oci-layout</c> content the writer stores.</summary>
    public const string OciLayoutContent = "{\"imageLayoutVersion\":\"1.0.0\"}";

    /// <summary>Largest <c>oci-layout</c> entry a reader accepts.</summary>
    public const int MaxOciLayoutBytes = 4096;

    /// <summary>Largest <c>openlm-bundle.json</c> a reader accepts.</summary>
    public const int MaxManifestBytes = 4 * 1024 * 1024;

    /// <summary>Largest <c>openlm-bundle.json.sig</c> a reader accepts (a P-256 DER signature is at most 72 bytes).</summary>
    public const int MaxSignatureBytes = 1024;

    /// <summary>Largest <c>index.json</c> a reader accepts (the OCI manifest limit).</summary>
    public const int MaxIndexBytes = Oci.ManifestDocument.MaxManifestBytes;

    /// <summary>The zstd frame magic, little-endian <c>0xFD2FB528</c>.</summary>
    public static ReadOnlySpan<byte> ZstdMagic => [0x28, 0xB5, 0x2F, 0xFD];

    /// <summary>
    /// JSON settings for <c>openlm-bundle.json</c>: two-space indent, <c>\n</c> line ends on every OS,
    /// no HTML escaping of <c>+</c> and friends. The writer appends one <c>\n</c> after the document.
    /// </summary>
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        IndentCharacter = ' ',
        IndentSize = 2,
        NewLine = "\n",
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        TypeInfoResolver = BundleJsonContext.Resolver,
    };

    /// <summary>Serialises the model to the exact bytes stored (and signed) as <c>openlm-bundle.json</c>.</summary>
    public static byte[] SerializeManifest(BundleManifest manifest)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(manifest, JsonOptions);
        var bytes = new byte[json.Length + 1];
        json.CopyTo(bytes, 0);
        bytes[^1] = (byte)'\n';
        return bytes;
    }

    /// <summary>
    /// Parses <c>openlm-bundle.json</c>. Refuses a format version other than 1 before anything else and
    /// ignores unknown properties.
    /// </summary>
    public static BundleManifest ParseManifest(ReadOnlySpan<byte> bytes, string source)
    {
        var version = PeekFormatVersion(bytes, source);
        if (version != FormatVersion)
        {
            throw new InputException(version > FormatVersion
                ? $"{source}: bundle format version {version} is newer than this tool supports (version {FormatVersion}); use a newer openlm-mirror"
                : $"{source}: bundle format version {version} is not valid (expected {FormatVersion})");
        }

        BundleManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<BundleManifest>(bytes, JsonOptions);
        }
        catch (JsonException ex)
        {
            throw new InputException($"{source}: malformed {ManifestEntry}: {ex.Message}", ex);
        }

        if (manifest is null)
        {
            throw new InputException($"{source}: {ManifestEntry} is null");
        }

        return manifest;
    }

    /// <summary>Reads just <c>formatVersion</c>; throws <see cref="InputException"/> when the document is not JSON or lacks it.</summary>
    public static int PeekFormatVersion(ReadOnlySpan<byte> bytes, string source)
    {
        try
        {
            var reader = new Utf8JsonReader(bytes);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw new InputException($"{source}: {ManifestEntry} is not a JSON object");
            }

            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                if (reader.TokenType != JsonTokenType.PropertyName)
                {
                    continue;
                }

                var isVersion = reader.ValueTextEquals("formatVersion"u8);
                reader.Read();
                if (isVersion)
                {
                    if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out var version))
                    {
                        throw new InputException($"{source}: {ManifestEntry} formatVersion is not an integer");
                    }

                    return version;
                }

                reader.Skip();
            }
        }
        catch (JsonException ex)
        {
            throw new InputException($"{source}: {ManifestEntry} is not valid JSON: {ex.Message}", ex);
        }

        throw new InputException($"{source}: {ManifestEntry} has no formatVersion");
    }

    /// <summary>The <c>openlm-bundle.json.sig</c> content: base64 of the DER signature on one line, then <c>\n</c>.</summary>
    public static byte[] EncodeSignature(ReadOnlySpan<byte> derSignature) =>
        Encoding.ASCII.GetBytes(Convert.ToBase64String(derSignature) + "\n");

    /// <summary>Decodes <c>openlm-bundle.json.sig</c>; surrounding whitespace is tolerated, anything else is not.</summary>
    public static byte[] DecodeSignature(ReadOnlySpan<byte> content, string source)
    {
        var text = Encoding.ASCII.GetString(content).Trim();
        if (text.Length == 0)
        {
            throw new IntegrityException($"{source}: {SignatureEntry} is empty");
        }

        foreach (var c in text)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '='))
            {
                throw new IntegrityException($"{source}: {SignatureEntry} is not a single line of base64");
            }
        }

        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException ex)
        {
            throw new IntegrityException($"{source}: {SignatureEntry} is not valid base64", ex);
        }
    }

    /// <summary>
    /// Parses a SOURCE_DATE_EPOCH value (decimal seconds since 1970-01-01 UTC). Returns null for null or empty.
    /// </summary>
    public static DateTimeOffset? ParseSourceDateEpoch(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        if (!long.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds > MaxTarTime)
        {
            throw new InputException($"SOURCE_DATE_EPOCH '{value}' is not a whole number of seconds between 0 and {MaxTarTime}");
        }

        return DateTimeOffset.FromUnixTimeSeconds(seconds);
    }

    /// <summary>SOURCE_DATE_EPOCH from the environment, or null when unset.</summary>
    public static DateTimeOffset? SourceDateEpochFromEnvironment() =>
        ParseSourceDateEpoch(Environment.GetEnvironmentVariable("SOURCE_DATE_EPOCH"));

    /// <summary>Largest mtime a ustar header holds (11 octal digits).</summary>
    internal const long MaxTarTime = (1L << 33) - 1; // octal 77777777777
}
