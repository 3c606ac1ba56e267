using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestKit;

namespace OpenLm.Mirror.IntegrationTests.Support;

/// <summary>A signed bundle of the TestKit's small platform, named as if it came from public.ecr.aws/r3q3q2f4.</summary>
public sealed record TestBundle(string Path, string PublicKey, string PrivateKey, GeneratedPlatform Platform, string Source)
{
    /// <summary>The full source reference of a generated image (its ref name in the bundle).</summary>
    public string SourceRef(GeneratedImage image) => $"{Source}/{image.Repository.Split('/', 2)[1]}:{image.Tag}";

    public static async Task<TestBundle> CreateAsync(string directory, int seed, BundleCompression compression = BundleCompression.None, string source = "public.ecr.aws/r3q3q2f4")
    {
        Directory.CreateDirectory(directory);
        var generated = SamplePlatform.Small(seed).WriteLayout(System.IO.Path.Combine(directory, "gen"));
        var staging = System.IO.Path.Combine(directory, "staging");
        var layout = OciLayoutStore.Open(staging, create: true);
        var bundle = new TestBundle(System.IO.Path.Combine(directory, compression == BundleCompression.Zstd ? "bundle.tar.zst" : "bundle.tar"), string.Empty, string.Empty, generated, source);

        // Re-name every generated image under its full source reference.
        var refs = generated.Images.Select(i => $"oci:{generated.Directory}:{i.Reference}").ToList();
        foreach (var image in generated.Images)
        {
            var run = await MirrorCli.RunAsync("copy", $"oci:{generated.Directory}:{image.Reference}", $"oci:{staging}:{bundle.SourceRef(image)}");
            if (run.ExitCode != 0)
            {
                throw new InvalidOperationException(run.ToString());
            }
        }

        var keys = KeyPairGenerator.Generate(System.IO.Path.Combine(directory, "release"), passphrase: null);
        using var key = SigningKey.Load(keys.PrivateKeyPath);
        await BundleWriter.WriteAsync(
            layout,
            new BundleManifest { Platform = new BundleProduct { Name = "openlm-platform", Version = "1.0." + seed }, Source = source },
            key,
            bundle.Path,
            new BundleWriteOptions { Compression = compression });
        return bundle with { PublicKey = keys.PublicKeyPath, PrivateKey = keys.PrivateKeyPath };
    }
}
