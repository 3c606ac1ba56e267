using System.Security.Cryptography;
using System.Text;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Signing;
using Xunit;

namespace OpenLm.Mirror.Tests.Bundle;

public sealed class SigningTests
{
    private const string Passphrase = "correct horse battery staple";

    [Fact]
    public void KeyPairGenerator_Generate_WritesPemFilesWithPrivateMode()
    {
        using var dir = new TempDir();
        var pair = KeyPairGenerator.Generate(dir.File("release"), null);

        Assert.Equal(dir.File("release.key"), pair.PrivateKeyPath);
        Assert.Equal(dir.File("release.pub"), pair.PublicKeyPath);
        Assert.False(pair.Encrypted);
        var privateText = File.ReadAllText(pair.PrivateKeyPath);
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----\n", privateText, StringComparison.Ordinal);
        Assert.StartsWith("-----BEGIN PUBLIC KEY-----\n", File.ReadAllText(pair.PublicKeyPath), StringComparison.Ordinal);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(pair.PrivateKeyPath));
        }

        using var signing = SigningKey.Load(pair.PrivateKeyPath);
        using var verification = VerificationKey.Load(pair.PublicKeyPath);
        Assert.Equal(pair.KeyId, signing.KeyId);
        Assert.Equal(pair.KeyId, verification.KeyId);
        Assert.Matches("^sha256:[0-9a-f]{64}$", pair.KeyId);
        var sig = signing.Sign("data"u8);
        Assert.True(verification.Verify("data"u8, sig));
        Assert.False(verification.Verify("date"u8, sig));
        Assert.False(verification.Verify("data"u8, [0x30, 0x00]));
    }

    [Fact]
    public void KeyPairGenerator_Generate_NeverOverwrites()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("release.pub"), "existing");

        var ex = Assert.Throws<InputException>(() => KeyPairGenerator.Generate(dir.File("release"), null));
        Assert.Contains("release.pub", ex.Message, StringComparison.Ordinal);
        Assert.Contains("already exists", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(dir.File("release.key")));
        Assert.Equal("existing", File.ReadAllText(dir.File("release.pub")));

        var pair = KeyPairGenerator.Generate(dir.File("other"), null);
        var before = File.ReadAllText(pair.PrivateKeyPath);
        ex = Assert.Throws<InputException>(() => KeyPairGenerator.Generate(dir.File("other"), null));
        Assert.Contains("other.key", ex.Message, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllText(pair.PrivateKeyPath));
    }

    [Fact]
    public void KeyPairGenerator_Generate_EncryptedKeyRoundTrip()
    {
        using var dir = new TempDir();
        var pair = KeyPairGenerator.Generate(dir.File("release"), Passphrase);
        Assert.True(pair.Encrypted);
        Assert.StartsWith("-----BEGIN ENCRYPTED PRIVATE KEY-----", File.ReadAllText(pair.PrivateKeyPath), StringComparison.Ordinal);

        var calls = 0;
        using (var key = SigningKey.Load(pair.PrivateKeyPath, () => { calls++; return Passphrase; }))
        {
            Assert.Equal(pair.KeyId, key.KeyId);
        }

        Assert.Equal(1, calls);

        var wrong = Assert.Throws<InputException>(() => SigningKey.Load(pair.PrivateKeyPath, () => "wrong"));
        Assert.Contains("wrong passphrase", wrong.Message, StringComparison.Ordinal);

        var none = Assert.Throws<InputException>(() => SigningKey.Load(pair.PrivateKeyPath));
        Assert.Contains("encrypted", none.Message, StringComparison.Ordinal);
        Assert.Contains("no passphrase", none.Message, StringComparison.Ordinal);

        // OpenSSL reads it: PBES2, AES-256-CBC, PBKDF2 with HMAC-SHA256 and at least 600000 iterations.
        var (code, stdout, stderr) = Tool.Run("openssl", "pkey", "-in", pair.PrivateKeyPath, "-passin", "pass:" + Passphrase, "-noout", "-text");
        Assert.True(code == 0, stderr);
        Assert.Contains("prime256v1", stdout, StringComparison.Ordinal);
        (code, stdout, stderr) = Tool.Run("openssl", "asn1parse", "-in", pair.PrivateKeyPath);
        Assert.True(code == 0, stderr);
        Assert.Contains("PBES2", stdout, StringComparison.Ordinal);
        Assert.Contains("aes-256-cbc", stdout, StringComparison.Ordinal);
        Assert.Contains("hmacWithSHA256", stdout, StringComparison.Ordinal);
        Assert.Contains(":0927C0", stdout, StringComparison.Ordinal); // 600000 iterations
    }

    [Fact]
    public void KeyPairGenerator_Generate_RejectsEmptyPassphrase()
    {
        using var dir = new TempDir();
        Assert.Throws<InputException>(() => KeyPairGenerator.Generate(dir.File("k"), ""));
        Assert.False(File.Exists(dir.File("k.key")));
    }

    [Fact]
    public void SigningKey_Sign_VerifiesWithOpenSsl()
    {
        using var dir = new TempDir();
        var pair = KeyPairGenerator.Generate(dir.File("release"), null);
        using var key = SigningKey.Load(pair.PrivateKeyPath);
        var data = Encoding.UTF8.GetBytes("{\"formatVersion\": 1}\n");
        File.WriteAllBytes(dir.File("openlm-bundle.json"), data);
        File.WriteAllBytes(dir.File("openlm-bundle.json.sig"), BundleFormat.EncodeSignature(key.Sign(data)));

        // The command documented in docs/bundle-format.md, verbatim (bash for the process substitution).
        var command = $"cd '{dir.Path}' && openssl dgst -sha256 -verify '{pair.PublicKeyPath}' -signature <(base64 -d openlm-bundle.json.sig) openlm-bundle.json";
        var (vcode, vout, verr) = Tool.Run("bash", "-c", command);
        Assert.True(vcode == 0, vout + verr);
        Assert.Contains("Verified OK", vout, StringComparison.Ordinal);
        File.WriteAllBytes(dir.File("sig.der"), Convert.FromBase64String(File.ReadAllText(dir.File("openlm-bundle.json.sig"))));

        // And a changed file does not verify.
        File.WriteAllBytes(dir.File("openlm-bundle.json"), Encoding.UTF8.GetBytes("{\"formatVersion\": 2}\n"));
        (vcode, _, _) = Tool.Run("openssl", "dgst", "-sha256", "-verify", pair.PublicKeyPath, "-signature", dir.File("sig.der"), dir.File("openlm-bundle.json"));
        Assert.NotEqual(0, vcode);

        // Our KeyId equals sha256 of the DER SPKI openssl produces.
        var (dcode, _, derr) = Tool.Run("openssl", "pkey", "-pubin", "-in", pair.PublicKeyPath, "-outform", "DER", "-out", dir.File("pub.der"));
        Assert.True(dcode == 0, derr);
        Assert.Equal(pair.KeyId, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(dir.File("pub.der")))));
    }

    [Fact]
    public async Task BundleReader_Read_SignatureOfWrittenBundleVerifiesWithOpenSsl()
    {
        using var dir = new TempDir();
        var pair = KeyPairGenerator.Generate(dir.File("release"), null);
        using var key = SigningKey.Load(pair.PrivateKeyPath);
        var bundle = await WrittenBundle.CreateAsync(dir, key);
        var entries = BundleTar.ReadEntries(bundle.Bytes);
        File.WriteAllBytes(dir.File("m.json"), entries[1].Data);
        File.WriteAllBytes(dir.File("m.sig"), Convert.FromBase64String(Encoding.ASCII.GetString(entries[2].Data)));
        var (code, stdout, stderr) = Tool.Run("openssl", "dgst", "-sha256", "-verify", pair.PublicKeyPath, "-signature", dir.File("m.sig"), dir.File("m.json"));
        Assert.True(code == 0, stdout + stderr);
        Assert.Equal(1, entries[2].Data.Count(b => b == (byte)'\n'));
        Assert.Equal((byte)'\n', entries[2].Data[^1]);
    }

    [Theory]
    [InlineData("genpkey")]
    [InlineData("ecparam")]
    [InlineData("pkcs8-encrypted")]
    public void SigningKey_Load_AcceptsOpenSslKeysAndOpenSslSignaturesVerify(string kind)
    {
        using var dir = new TempDir();
        var keyPath = dir.File("k.pem");
        string? passphrase = null;
        switch (kind)
        {
            case "genpkey":
                Run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyPath);
                break;
            case "ecparam":
                // SEC1 "EC PRIVATE KEY" preceded by an "EC PARAMETERS" block.
                Run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-out", keyPath);
                break;
            default:
                passphrase = "s3cret";
                Run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", dir.File("plain.pem"));
                Run("openssl", "pkcs8", "-topk8", "-in", dir.File("plain.pem"), "-out", keyPath, "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256", "-passout", "pass:" + passphrase);
                break;
        }

        Run("openssl", "pkey", "-in", keyPath, "-pubout", "-out", dir.File("k.pub"), "-passin", "pass:" + (passphrase ?? "unused"));
        File.WriteAllText(dir.File("data"), "hello bundle\n");
        Run("openssl", "dgst", "-sha256", "-sign", keyPath, "-passin", "pass:" + (passphrase ?? "unused"), "-out", dir.File("data.sig"), dir.File("data"));

        using var signing = SigningKey.Load(keyPath, () => passphrase);
        using var verification = VerificationKey.Load(dir.File("k.pub"));
        Assert.Equal(verification.KeyId, signing.KeyId);
        var data = File.ReadAllBytes(dir.File("data"));
        Assert.True(verification.Verify(data, File.ReadAllBytes(dir.File("data.sig"))));
        Assert.True(signing.Verify(data, File.ReadAllBytes(dir.File("data.sig"))));

        // And the reverse: our signature with their key verifies in openssl.
        File.WriteAllBytes(dir.File("ours.sig"), signing.Sign(data));
        var (code, stdout, stderr) = Tool.Run("openssl", "dgst", "-sha256", "-verify", dir.File("k.pub"), "-signature", dir.File("ours.sig"), dir.File("data"));
        Assert.True(code == 0, stdout + stderr);
    }

    [Fact]
    public void SigningKey_Load_RejectsWrongKinds()
    {
        using var dir = new TempDir();
        Run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", dir.File("rsa.pem"));
        Run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", dir.File("p384.pem"));
        Run("openssl", "genpkey", "-algorithm", "ED25519", "-out", dir.File("ed.pem"));
        Run("openssl", "pkey", "-in", dir.File("rsa.pem"), "-pubout", "-out", dir.File("rsa.pub"));
        File.WriteAllText(dir.File("junk.pem"), "this is not a key");
        var pair = KeyPairGenerator.Generate(dir.File("good"), null);

        AssertInput(() => SigningKey.Load(dir.File("rsa.pem")), "RSA", "EC P-256");
        AssertInput(() => SigningKey.Load(dir.File("p384.pem")), "P-384");
        AssertInput(() => SigningKey.Load(dir.File("ed.pem")), "Ed25519");
        AssertInput(() => SigningKey.Load(dir.File("junk.pem")), "not a PEM file");
        AssertInput(() => SigningKey.Load(pair.PublicKeyPath), "public key");
        AssertInput(() => SigningKey.Load(dir.File("missing.pem")), "does not exist");
        AssertInput(() => VerificationKey.Load(pair.PrivateKeyPath), "private key", ".pub");
        AssertInput(() => VerificationKey.Load(dir.File("rsa.pub")), "RSA");
        AssertInput(() => VerificationKey.Load(dir.File("junk.pem")), "not a PEM file");
    }

    [Fact]
    public void SigningKey_ExportPublicKeyPem_MatchesGeneratedPublicKey()
    {
        using var dir = new TempDir();
        var pair = KeyPairGenerator.Generate(dir.File("k"), null);
        using var key = SigningKey.Load(pair.PrivateKeyPath);
        Assert.Equal(File.ReadAllText(pair.PublicKeyPath), key.ExportPublicKeyPem());
    }

    private static void AssertInput(Func<IDisposable> load, params string[] fragments)
    {
        var ex = Assert.Throws<InputException>(() => load().Dispose());
        foreach (var f in fragments)
        {
            Assert.Contains(f, ex.Message, StringComparison.Ordinal);
        }
    }

    private static void Run(string file, params string[] args)
    {
        var (code, stdout, stderr) = Tool.Run(file, args);
        Assert.True(code == 0, $"{file} {string.Join(' ', args)}: {stdout}{stderr}");
    }
}
