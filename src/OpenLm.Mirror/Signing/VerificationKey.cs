using System.Security.Cryptography;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Signing;

/// <summary>An ECDSA P-256 public key (SPKI PEM, <c>-----BEGIN PUBLIC KEY-----</c>) that checks bundle signatures.</summary>
public sealed class VerificationKey : IDisposable
{
    private readonly ECDsa _key;

    private VerificationKey(ECDsa key)
    {
        _key = key;
        KeyId = KeyMaterial.ComputeKeyId(key);
    }

    /// <summary><c>sha256:</c> + hex SHA-256 of the DER SubjectPublicKeyInfo.</summary>
    public string KeyId { get; }

    /// <summary>Loads an SPKI PEM public key (as written by <see cref="KeyPairGenerator"/> or <c>openssl pkey -pubout</c>).</summary>
    public static VerificationKey Load(string path)
    {
        var text = KeyMaterial.ReadKeyFile(path, "public key");
        return FromPem(text, $"public key '{path}'");
    }

    /// <summary>Loads an SPKI PEM public key from text; <paramref name="source"/> names it in messages.</summary>
    public static VerificationKey FromPem(string pem, string source)
    {
        var blocks = KeyMaterial.ReadPemBlocks(pem, source);
        var keyBlocks = blocks.Where(b => b.Label == KeyMaterial.PublicKeyLabel).ToList();
        if (keyBlocks.Count == 0)
        {
            var isPrivate = blocks.Any(b => b.Label.Contains("PRIVATE KEY", StringComparison.Ordinal));
            var labels = string.Join(", ", blocks.Select(b => b.Label).Distinct());
            throw new InputException(isPrivate
                ? $"{source}: this is a private key; verification needs the public key (the .pub file)"
                : $"{source}: no public key in the file (found PEM blocks: {labels}); expected 'PUBLIC KEY'");
        }

        if (keyBlocks.Count > 1)
        {
            throw new InputException($"{source}: the file holds {keyBlocks.Count} public keys; expected exactly one");
        }

        return FromSubjectPublicKeyInfo(keyBlocks[0].Der, source);
    }

    internal static VerificationKey FromSubjectPublicKeyInfo(byte[] der, string source)
    {
        var ecdsa = ECDsa.Create();
        try
        {
            try
            {
                ecdsa.ImportSubjectPublicKeyInfo(der, out _);
            }
            catch (CryptographicException ex)
            {
                var algorithm = KeyMaterial.DescribeAlgorithm(der, isPrivateKeyInfo: false);
                throw algorithm == "EC P-256"
                    ? new InputException($"{source}: the EC P-256 public key is malformed: {ex.Message}", ex)
                    : new InputException($"{source}: the key is {algorithm}; bundle signing keys must be EC P-256 (prime256v1)", ex);
            }

            KeyMaterial.RequireP256(ecdsa, source);
            return new VerificationKey(ecdsa);
        }
        catch
        {
            ecdsa.Dispose();
            throw;
        }
    }

    /// <summary>The key as SPKI PEM.</summary>
    public string ExportPem() => _key.ExportSubjectPublicKeyInfoPem() + "\n";

    /// <summary>True when <paramref name="derSignature"/> is a valid DER ECDSA signature over SHA-256(<paramref name="data"/>).</summary>
    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> derSignature) =>
        KeyMaterial.VerifyDer(_key, data, derSignature);

    public void Dispose() => _key.Dispose();
}
