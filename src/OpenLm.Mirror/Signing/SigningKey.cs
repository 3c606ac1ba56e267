using System.Security.Cryptography;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Signing;

/// <summary>
/// An ECDSA P-256 private key used to sign bundles. Signatures are over SHA-256 of the data and
/// DER-encoded (RFC 3279 <c>Ecdsa-Sig-Value</c>), the form <c>openssl dgst -sha256 -sign</c> produces.
/// </summary>
public sealed class SigningKey : IDisposable
{
    private readonly ECDsa _key;

    private SigningKey(ECDsa key)
    {
        _key = key;
        KeyId = KeyMaterial.ComputeKeyId(key);
    }

    /// <summary><c>sha256:</c> + hex SHA-256 of the DER SubjectPublicKeyInfo of the public half.</summary>
    public string KeyId { get; }

    /// <summary>
    /// Loads a PEM private key: PKCS#8 (<c>PRIVATE KEY</c>), encrypted PKCS#8 (<c>ENCRYPTED PRIVATE KEY</c>)
    /// or SEC1 (<c>EC PRIVATE KEY</c>, as written by <c>openssl ecparam -genkey</c>).
    /// <paramref name="passphraseProvider"/> is called only when the key is encrypted.
    /// </summary>
    public static SigningKey Load(string path, Func<string?>? passphraseProvider = null)
    {
        var text = KeyMaterial.ReadKeyFile(path, "signing key");
        return FromPem(text, passphraseProvider, $"signing key '{path}'");
    }

    /// <summary>Loads a PEM private key from text; <paramref name="source"/> names it in messages.</summary>
    public static SigningKey FromPem(string pem, Func<string?>? passphraseProvider, string source)
    {
        var blocks = KeyMaterial.ReadPemBlocks(pem, source);
        var keyBlocks = blocks
            .Where(b => b.Label is KeyMaterial.PrivateKeyLabel or KeyMaterial.EncryptedPrivateKeyLabel or KeyMaterial.EcPrivateKeyLabel)
            .ToList();
        if (keyBlocks.Count == 0)
        {
            var labels = string.Join(", ", blocks.Select(b => b.Label).Distinct());
            throw new InputException(blocks.Any(b => b.Label == KeyMaterial.PublicKeyLabel)
                ? $"{source}: this is a public key; signing needs the private key (the .key file)"
                : $"{source}: no private key in the file (found PEM blocks: {labels}); expected 'PRIVATE KEY', 'ENCRYPTED PRIVATE KEY' or 'EC PRIVATE KEY'");
        }

        if (keyBlocks.Count > 1)
        {
            throw new InputException($"{source}: the file holds {keyBlocks.Count} private keys; expected exactly one");
        }

        var (label, der) = keyBlocks[0];
        var ecdsa = ECDsa.Create();
        try
        {
            switch (label)
            {
                case KeyMaterial.EncryptedPrivateKeyLabel:
                    ImportEncrypted(ecdsa, der, passphraseProvider, source);
                    break;
                case KeyMaterial.PrivateKeyLabel:
                    try
                    {
                        ecdsa.ImportPkcs8PrivateKey(der, out _);
                    }
                    catch (CryptographicException ex)
                    {
                        throw NotP256(der, source, ex);
                    }

                    break;
                default:
                    try
                    {
                        ecdsa.ImportECPrivateKey(der, out _);
                    }
                    catch (CryptographicException ex)
                    {
                        throw new InputException($"{source}: the EC PRIVATE KEY block is malformed or uses an unsupported curve: {ex.Message}", ex);
                    }

                    break;
            }

            KeyMaterial.RequireP256(ecdsa, source);
            return new SigningKey(ecdsa);
        }
        catch
        {
            ecdsa.Dispose();
            throw;
        }
    }

    /// <summary>The public half, for verification.</summary>
    public VerificationKey GetVerificationKey() =>
        VerificationKey.FromSubjectPublicKeyInfo(_key.ExportSubjectPublicKeyInfo(), "public half of the signing key");

    /// <summary>The public half as SPKI PEM (<c>PUBLIC KEY</c>).</summary>
    public string ExportPublicKeyPem() => _key.ExportSubjectPublicKeyInfoPem() + "\n";

    /// <summary>Signs SHA-256(<paramref name="data"/>); returns the DER-encoded signature.</summary>
    public byte[] Sign(ReadOnlySpan<byte> data) =>
        _key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);

    /// <summary>Checks a DER-encoded signature over SHA-256(<paramref name="data"/>) against the public half.</summary>
    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> derSignature) =>
        KeyMaterial.VerifyDer(_key, data, derSignature);

    public void Dispose() => _key.Dispose();

    internal ECDsa Algorithm => _key;

    private static void ImportEncrypted(ECDsa ecdsa, byte[] der, Func<string?>? passphraseProvider, string source)
    {
        var passphrase = passphraseProvider?.Invoke();
        if (string.IsNullOrEmpty(passphrase))
        {
            throw new InputException($"{source}: the key is encrypted (ENCRYPTED PRIVATE KEY) and no passphrase was given");
        }

        try
        {
            ecdsa.ImportEncryptedPkcs8PrivateKey(passphrase, der, out _);
        }
        catch (CryptographicException ex)
        {
            // A wrong passphrase yields garbage that fails to decrypt (bad padding) or to parse.
            // Tell it apart from a right passphrase on a non-EC key by trying to decrypt generically.
            string? algorithm = null;
            try
            {
                using var probe = RSA.Create();
                probe.ImportEncryptedPkcs8PrivateKey(passphrase, der, out _);
                algorithm = "RSA";
            }
            catch (CryptographicException)
            {
            }

            throw algorithm is not null
                ? new InputException($"{source}: the key is {algorithm}; bundle signing keys must be EC P-256 (prime256v1)", ex)
                : new InputException($"{source}: cannot decrypt the key: wrong passphrase (or the file is corrupt)", ex);
        }
    }

    private static InputException NotP256(byte[] der, string source, Exception inner)
    {
        var algorithm = KeyMaterial.DescribeAlgorithm(der, isPrivateKeyInfo: true);
        return algorithm == "EC P-256"
            ? new InputException($"{source}: the EC P-256 key is malformed: {inner.Message}", inner)
            : new InputException($"{source}: the key is {algorithm}; bundle signing keys must be EC P-256 (prime256v1)", inner);
    }
}
