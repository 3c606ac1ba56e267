using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Oci;

/// <summary>A content digest such as <c>sha256:4c2e…</c>. Only sha256 and sha512 are accepted.</summary>
public readonly record struct Digest
{
    private Digest(string algorithm, string hex)
    {
        Algorithm = algorithm;
        Hex = hex;
    }

    public string Algorithm { get; }

    public string Hex { get; }

    public static Digest Parse(string value, string? context = null)
    {
        if (TryParse(value, out var digest, out var error))
        {
            return digest;
        }

        throw new InputException(context is null ? error : $"{context}: {error}");
    }

    public static bool TryParse([NotNullWhen(true)] string? value, out Digest digest) =>
        TryParse(value, out digest, out _);

    public static bool TryParse([NotNullWhen(true)] string? value, out Digest digest, out string error)
    {
        digest = default;
        if (string.IsNullOrEmpty(value))
        {
            error = "digest is empty";
            return false;
        }

        var colon = value.IndexOf(':');
        if (colon <= 0)
        {
            error = $"digest '{value}' has no algorithm prefix (expected sha256:<64 hex>)";
            return false;
        }

        var algorithm = value[..colon];
        var hex = value[(colon + 1)..];
        var expectedLength = algorithm switch
        {
            "sha256" => 64,
            "sha512" => 128,
            _ => -1,
        };
        if (expectedLength < 0)
        {
            error = $"digest '{value}' uses unsupported algorithm '{algorithm}' (expected sha256 or sha512)";
            return false;
        }

        if (hex.Length != expectedLength || !IsLowerHex(hex))
        {
            error = $"digest '{value}' must have {expectedLength} lowercase hex characters after '{algorithm}:'";
            return false;
        }

        digest = new Digest(algorithm, hex);
        error = string.Empty;
        return true;
    }

    public static Digest Sha256(ReadOnlySpan<byte> data) =>
        new("sha256", Convert.ToHexStringLower(SHA256.HashData(data)));

    public static Digest FromHash(string algorithm, byte[] hash) =>
        new(algorithm, Convert.ToHexStringLower(hash));

    public static async Task<Digest> Sha256Async(Stream stream, CancellationToken cancellationToken = default) =>
        new("sha256", Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false)));

    public HashAlgorithmName HashAlgorithm => Algorithm == "sha512" ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256;

    public bool IsEmpty => Hex is null;

    /// <summary>The OCI referrers tag-schema form (<c>sha256-&lt;hex&gt;</c>).</summary>
    public string ToTagForm() => $"{Algorithm}-{Hex}";

    public override string ToString() => IsEmpty ? string.Empty : $"{Algorithm}:{Hex}";

    public string Short => IsEmpty ? string.Empty : $"{Algorithm}:{Hex[..12]}";

    private static bool IsLowerHex(string s)
    {
        foreach (var c in s)
        {
            if (!char.IsAsciiDigit(c) && c is < 'a' or > 'f')
            {
                return false;
            }
        }

        return true;
    }
}
