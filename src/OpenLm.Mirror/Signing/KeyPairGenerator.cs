using System.Security.Cryptography;
using System.Text;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Signing;

/// <summary>The files <see cref="KeyPairGenerator.Generate"/> wrote.</summary>
public sealed record GeneratedKeyPair(string PrivateKeyPath, string PublicKeyPath, string KeyId, bool Encrypted);

/// <summary>Creates an ECDSA P-256 key pair for signing bundles.</summary>
public static class KeyPairGenerator
{
    public const string PrivateKeyExtension = ".key";
    public const string PublicKeyExtension = ".pub";

    /// <summary>PBKDF2-HMAC-SHA256 iterations for an encrypted private key (OWASP 2023 guidance).</summary>
    public const int Pbkdf2Iterations = 600_000;

    /// <summary>
    /// Writes <c>&lt;basePath&gt;.key</c> (PKCS#8 PEM; <c>ENCRYPTED PRIVATE KEY</c> with PBES2 AES-256-CBC,
    /// PBKDF2-HMAC-SHA256 when <paramref name="passphrase"/> is given; mode 0600 on Unix) and
    /// <c>&lt;basePath&gt;.pub</c> (SPKI PEM <c>PUBLIC KEY</c>). Never overwrites: if either file exists,
    /// nothing is written and an <see cref="InputException"/> names it.
    /// </summary>
    public static GeneratedKeyPair Generate(string basePath, string? passphrase)
    {
        if (string.IsNullOrWhiteSpace(basePath))
        {
            throw new InputException("the key file base name is empty");
        }

        if (passphrase is not null && passphrase.Length == 0)
        {
            throw new InputException("the passphrase is empty; give a non-empty passphrase or none to write an unencrypted key");
        }

        var full = Path.GetFullPath(basePath);
        var privatePath = full + PrivateKeyExtension;
        var publicPath = full + PublicKeyExtension;
        var directory = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(directory))
        {
            throw new InputException($"directory '{directory}' does not exist");
        }

        foreach (var path in new[] { privatePath, publicPath })
        {
            if (File.Exists(path) || Directory.Exists(path))
            {
                throw new InputException($"'{path}' already exists; refusing to overwrite a key (choose another name or move it away)");
            }
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var privatePem = passphrase is null
            ? key.ExportPkcs8PrivateKeyPem()
            : key.ExportEncryptedPkcs8PrivateKeyPem(
                passphrase,
                new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, Pbkdf2Iterations));
        var publicPem = key.ExportSubjectPublicKeyInfoPem();
        var keyId = KeyMaterial.ComputeKeyId(key);

        WriteNew(privatePath, privatePem + "\n", privateFile: true);
        try
        {
            WriteNew(publicPath, publicPem + "\n", privateFile: false);
        }
        catch
        {
            // Do not leave half a key pair behind.
            TryDelete(privatePath);
            throw;
        }

        return new GeneratedKeyPair(privatePath, publicPath, keyId, passphrase is not null);
    }

    private static void WriteNew(string path, string content, bool privateFile)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = privateFile
                ? UnixFileMode.UserRead | UnixFileMode.UserWrite
                : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        }

        FileStream stream;
        try
        {
            stream = new FileStream(path, options);
        }
        catch (IOException) when (File.Exists(path))
        {
            throw new InputException($"'{path}' already exists; refusing to overwrite a key (choose another name or move it away)");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OperationException($"cannot create '{path}': {ex.Message}", ex);
        }

        try
        {
            using (stream)
            {
                stream.Write(Encoding.ASCII.GetBytes(content));
                stream.Flush(flushToDisk: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            TryDelete(path);
            throw new OperationException($"cannot write '{path}': {ex.Message}", ex);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
