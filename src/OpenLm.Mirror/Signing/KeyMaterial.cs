using System.Formats.Asn1;
using System.Security.Cryptography;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Signing;

/// <summary>Shared helpers for reading and identifying ECDSA P-256 keys.</summary>
internal static class KeyMaterial
{
    public const string P256Oid = "1.2.840.10045.3.1.7";
    public const string EcPublicKeyOid = "1.2.840.10045.2.1";
    public const string PrivateKeyLabel = "PRIVATE KEY";
    public const string EncryptedPrivateKeyLabel = "ENCRYPTED PRIVATE KEY";
    public const string EcPrivateKeyLabel = "EC PRIVATE KEY";
    public const string PublicKeyLabel = "PUBLIC KEY";

    /// <summary>Largest key file read; real PEM keys are a few hundred bytes.</summary>
    public const int MaxKeyFileBytes = 64 * 1024;

    /// <summary><c>sha256:</c> + hex SHA-256 of the DER SubjectPublicKeyInfo.</summary>
    public static string ComputeKeyId(ECDsa key) =>
        "sha256:" + Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()));

    public static string ReadKeyFile(string path, string what)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new InputException(Directory.Exists(path)
                    ? $"{what} '{path}' is a directory, not a key file"
                    : $"{what} '{path}' does not exist");
            }

            if (info.Length > MaxKeyFileBytes)
            {
                throw new InputException($"{what} '{path}' is {info.Length} bytes; a PEM key file is a few hundred bytes");
            }

            return File.ReadAllText(path);
        }
        catch (IOException ex)
        {
            throw new OperationException($"cannot read {what} '{path}': {ex.Message}", ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new OperationException($"cannot read {what} '{path}': {ex.Message}", ex);
        }
    }

    /// <summary>All PEM blocks in <paramref name="text"/>, as (label, DER bytes).</summary>
    public static List<(string Label, byte[] Der)> ReadPemBlocks(string text, string source)
    {
        var blocks = new List<(string, byte[])>();
        var remaining = text.AsSpan();
        while (PemEncoding.TryFind(remaining, out var fields))
        {
            var label = remaining[fields.Label].ToString();
            var der = new byte[fields.DecodedDataLength];
            if (!Convert.TryFromBase64Chars(remaining[fields.Base64Data], der, out var written))
            {
                throw new InputException($"{source}: the PEM block '{label}' has invalid base64 content");
            }

            blocks.Add((label, der[..written]));
            remaining = remaining[fields.Location.End..];
        }

        if (blocks.Count == 0)
        {
            throw new InputException($"{source}: not a PEM file (no '-----BEGIN …-----' block found)");
        }

        return blocks;
    }

    /// <summary>Names the algorithm of a PKCS#8 PrivateKeyInfo or SubjectPublicKeyInfo, for error messages.</summary>
    public static string DescribeAlgorithm(byte[] der, bool isPrivateKeyInfo)
    {
        try
        {
            var reader = new AsnReader(der, AsnEncodingRules.DER);
            var outer = reader.ReadSequence();
            if (isPrivateKeyInfo)
            {
                outer.ReadInteger();
            }

            var algorithm = outer.ReadSequence();
            var oid = algorithm.ReadObjectIdentifier();
            string? parameter = algorithm.HasData && algorithm.PeekTag().HasSameClassAndValue(Asn1Tag.ObjectIdentifier)
                ? algorithm.ReadObjectIdentifier()
                : null;
            return oid switch
            {
                EcPublicKeyOid => parameter switch
                {
                    P256Oid => "EC P-256",
                    "1.3.132.0.34" => "EC P-384",
                    "1.3.132.0.35" => "EC P-521",
                    "1.3.132.0.10" => "EC secp256k1",
                    null => "EC (explicit curve parameters)",
                    _ => $"EC curve {parameter}",
                },
                "1.2.840.113549.1.1.1" => "RSA",
                "1.2.840.113549.1.1.10" => "RSA-PSS",
                "1.3.101.112" => "Ed25519",
                "1.3.101.113" => "Ed448",
                "1.2.840.10040.4.1" => "DSA",
                _ => $"algorithm {oid}",
            };
        }
        catch (AsnContentException)
        {
            return "malformed key data";
        }
    }

    /// <summary>Throws unless <paramref name="key"/> is on NIST P-256.</summary>
    public static void RequireP256(ECDsa key, string source)
    {
        var curve = key.ExportParameters(false).Curve;
        var isP256 = curve.IsNamed
            && (curve.Oid.Value == P256Oid || curve.Oid.FriendlyName is "nistP256" or "ECDSA_P256" or "prime256v1" or "secp256r1");
        if (!isP256)
        {
            var name = !curve.IsNamed
                ? "explicit curve parameters"
                : curve.Oid.Value switch
                {
                    "1.3.132.0.34" => "P-384",
                    "1.3.132.0.35" => "P-521",
                    _ => curve.Oid.FriendlyName switch
                    {
                        "nistP384" or "ECDSA_P384" or "secp384r1" => "P-384",
                        "nistP521" or "ECDSA_P521" or "secp521r1" => "P-521",
                        var other => other ?? curve.Oid.Value ?? "unknown",
                    },
                };
            throw new InputException($"{source}: the key is EC {name}; bundle signing keys must be EC P-256 (prime256v1)");
        }
    }

    public static bool VerifyDer(ECDsa key, ReadOnlySpan<byte> data, ReadOnlySpan<byte> derSignature)
    {
        try
        {
            return key.VerifyData(data, derSignature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        }
        catch (CryptographicException)
        {
            // Malformed DER is simply a signature that does not verify.
            return false;
        }
    }
}
