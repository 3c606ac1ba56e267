using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestKit;

namespace OpenLm.Mirror.Tests.Support;

/// <summary>
/// A signed bundle of the TestKit's small platform (8 images of every kind, bases shared across repositories), every image
/// named under its full source reference as a release names it — built in process the way the integration tests'
/// BundleFactory does it with the CLI: generate a layout, copy each image under its source name, write the bundle.
/// </summary>
internal sealed class SampleBundle : IDisposable
{
    public const string DefaultSource = "public.ecr.aws/r3q3q2f4";

    private SampleBundle(string path, GeneratedPlatform platform, string source, SigningKey key)
    {
        Path = path;
        Platform = platform;
        Source = source;
        SigningKey = key;
        Key = key.GetVerificationKey();
    }

    public string Path { get; }

    public GeneratedPlatform Platform { get; }

    /// <summary>The registry/namespace the images are named under (the bundle's <c>source</c>).</summary>
    public string Source { get; }

    public SigningKey SigningKey { get; }

    /// <summary>The public half of <see cref="SigningKey"/>.</summary>
    public VerificationKey Key { get; }

    public IReadOnlyList<GeneratedImage> Images => Platform.Images;

    /// <summary>Distinct config and layer digests over every image (what an import uploads at least once).</summary>
    public IReadOnlySet<string> UniqueBlobs => Images.SelectMany(i => i.BlobDigests).ToHashSet(StringComparer.Ordinal);

    /// <summary>The full source reference of a generated image (its ref name in the bundle).</summary>
    public string SourceRef(GeneratedImage image) => $"{Source}/{image.Repository.Split('/', 2)[1]}:{image.Tag}";

    /// <summary>The repository path of a generated image below the platform namespace, e.g. <c>olm-server</c>, <c>charts/olm-platform</c>.</summary>
    public static string RelativeName(GeneratedImage image) => image.Repository.Split('/', 2)[1];

    public static async Task<SampleBundle> CreateAsync(string directory, int seed, BundleCompression compression = BundleCompression.None, string source = DefaultSource, SigningKey? key = null)
    {
        Directory.CreateDirectory(directory);
        var generated = SamplePlatform.Small(seed).WriteLayout(System.IO.Path.Combine(directory, "gen"));
        var staging = OciLayoutStore.Open(System.IO.Path.Combine(directory, "staging"), create: true);
        key ??= NewKey();
        var bundle = new SampleBundle(System.IO.Path.Combine(directory, compression == BundleCompression.Zstd ? "bundle.tar.zst" : "bundle.tar"), generated, source, key);

        var layout = OciLayoutStore.Open(generated.Directory, create: false);
        var copier = new GraphCopier(new CopyOptions());
        foreach (var image in generated.Images)
        {
            await copier.CopyAsync(layout, image.Reference, staging, bundle.SourceRef(image));
        }

        await BundleWriter.WriteAsync(
            staging,
            new BundleManifest { Platform = new BundleProduct { Name = "openlm-platform", Version = "1.0." + seed }, Source = source },
            key,
            bundle.Path,
            new BundleWriteOptions { Compression = compression });
        return bundle;
    }

    public static SigningKey NewKey()
    {
        using var ecdsa = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        return SigningKey.FromPem(ecdsa.ExportPkcs8PrivateKeyPem(), null, "test key");
    }

    public void Dispose()
    {
        SigningKey.Dispose();
        Key.Dispose();
    }
}
