using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Delta;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.Tests.Core;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.Tests.Delta;

/// <summary>
/// Two releases of the small sample platform, bundled once per test class: release 1.0 lacks one image (<see cref="Added"/>),
/// release 1.1 adds it and replaces <see cref="Changed"/> with an image of another generated platform (new digest, new
/// blobs); everything else is byte-identical. Written: the full bundle of 1.0, the full bundle of 1.1 and the delta of
/// 1.1 over the 1.0 bundle.
/// </summary>
public sealed class DeltaReleases : IAsyncLifetime
{
    public const string Platform = "openlm-platform";
    public const string Source = "public.ecr.aws/r3q3q2f4";

    private readonly TempDirectory _dir = new();

    public SigningKey SigningKey { get; } = Support.SampleBundle.NewKey();

    public VerificationKey Key => _key ??= SigningKey.GetVerificationKey();

    private VerificationKey? _key;

    public GeneratedPlatform Old { get; private set; } = null!;

    public GeneratedPlatform Other { get; private set; } = null!;

    public OciLayoutStore Staging { get; private set; } = null!;

    /// <summary>Source reference of the image release 1.1 adds.</summary>
    public string Added { get; private set; } = string.Empty;

    /// <summary>Source reference of the image whose content release 1.1 replaces.</summary>
    public string Changed { get; private set; } = string.Empty;

    public IReadOnlyList<Descriptor> RootsV1 { get; private set; } = [];

    public IReadOnlyList<Descriptor> RootsV2 { get; private set; } = [];

    public string FullV1 => _dir.Sub("v1.tar");

    public string FullV2 => _dir.Sub("v2.tar");

    public string DeltaV2 => _dir.Sub("v2-delta.tar");

    public string Scratch(string name) => _dir.Sub(name);

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir.Path);
        Old = SamplePlatform.Small(41).WriteLayout(_dir.Sub("gen-a"));
        Other = SamplePlatform.Small(42).WriteLayout(_dir.Sub("gen-b"));
        Staging = OciLayoutStore.Open(_dir.Sub("staging"), create: true);
        var copier = new GraphCopier(new CopyOptions());
        var a = OciLayoutStore.Open(Old.Directory, create: false);
        var b = OciLayoutStore.Open(Other.Directory, create: false);

        var images = Old.Images.Where(i => i.Kind != SampleImageKind.HelmChart).ToList();
        var added = images[^1];
        var changed = images[0];
        Added = SourceRef(added);
        Changed = SourceRef(changed);

        var roots = new Dictionary<string, Descriptor>(StringComparer.Ordinal);
        foreach (var image in Old.Images)
        {
            var copied = await copier.CopyAsync(a, image.Reference, Staging, SourceRef(image));
            roots[SourceRef(image)] = copied.Root.WithRefName(SourceRef(image));
        }

        var replacement = Other.Images.First(i => i.Kind == changed.Kind);
        var newRoot = (await copier.CopyAsync(b, replacement.Reference, Staging, null)).Root.WithRefName(Changed);
        RootsV1 = roots.Values.Where(r => r.RefName != Added).ToList();
        RootsV2 = roots.Values.Where(r => r.RefName != Changed).Append(newRoot).ToList();

        await WriteAsync(RootsV1, "1.0", FullV1, null);
        await WriteAsync(RootsV2, "1.1", FullV2, null);
        var (_, input) = await DeltaBases.LoadAsync([FullV1], Platform);
        await WriteAsync(RootsV2, "1.1", DeltaV2, input);
    }

    /// <summary>Writes a bundle of <paramref name="roots"/> from the staging layout (its index is replaced for the write).</summary>
    public async Task<BundleWriteResult> WriteAsync(IReadOnlyList<Descriptor> roots, string version, string path, BundleDeltaInput? delta, long? splitSize = null)
    {
        await Staging.ReplaceIndexAsync(roots);
        return await BundleWriter.WriteAsync(
            Staging,
            new BundleManifest { Platform = new BundleProduct { Name = Platform, Version = version }, Source = Source },
            SigningKey,
            path,
            new BundleWriteOptions { Delta = delta, Overwrite = true, SplitSize = splitSize, SourceDateEpoch = DateTimeOffset.FromUnixTimeSeconds(1_780_000_000) });
    }

    public static string SourceRef(GeneratedImage image) => $"{Source}/{image.Repository.Split('/', 2)[1]}:{image.Tag}";

    public Task DisposeAsync()
    {
        _key?.Dispose();
        SigningKey.Dispose();
        _dir.Dispose();
        return Task.CompletedTask;
    }
}
