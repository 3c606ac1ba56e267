using System.Text.Json;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Check;

/// <summary>A signed bundle of a TestKit Small platform (with its Helm chart), built once for the check tests.</summary>
public sealed class CheckBundleFixture : IAsyncLifetime
{
    public const string Source = "public.ecr.aws/r3q3q2f4";

    private readonly TempDir _temp = new();

    public string LayoutDirectory => _temp.Sub("layout");

    public string BundlePath => _temp.Sub("olm.tar");

    public string PublicKey { get; private set; } = null!;

    public BundleWriteResult Written { get; private set; } = null!;

    /// <summary>Every index.json entry (images and the chart) as (ref name, digest).</summary>
    public IReadOnlyList<(string Reference, string Digest)> Roots =>
        Written.Manifest.Images.Select(i => (i.Reference, i.Digest))
            .Concat(Written.Manifest.Charts.Select(c => (c.Reference, c.Digest)))
            .ToList();

    public async Task InitializeAsync()
    {
        SamplePlatform.Small(seed: 5, @namespace: Source).WriteLayout(LayoutDirectory);
        var pair = KeyPairGenerator.Generate(_temp.Sub("release"), null);
        PublicKey = pair.PublicKeyPath;
        using var key = SigningKey.Load(pair.PrivateKeyPath);
        var manifest = new BundleManifest
        {
            Platform = new BundleProduct { Name = "olm", Version = "1.0.0" },
            Tool = new BundleProduct { Name = "openlm-mirror", Version = "0.1.0" },
            Source = Source,
        };
        Written = await BundleWriter.WriteAsync(OciLayoutStore.Open(LayoutDirectory, create: false), manifest, key, BundlePath);
    }

    public Task DisposeAsync()
    {
        _temp.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary><c>check</c> against a real registry after the bundle's images were copied in under their mapped names.</summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class CheckCommandTests(SharedRegistryFixture registry, CheckBundleFixture bundle) : IClassFixture<CheckBundleFixture>, IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    private static string NewPrefix() => "chk" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>Copies the bundle's images from the layout to their mapped names under TARGET, except <paramref name="skip"/>.</summary>
    private async Task SeedAsync(string target, params string[] skip)
    {
        var mapper = TargetNameMapper.Create(target, null, CheckBundleFixture.Source);
        foreach (var (reference, _) in bundle.Roots.Where(r => !skip.Contains(r.Reference)))
        {
            var mapped = mapper.Map(Reference.Parse(reference)).ToString();
            var run = await MirrorCli.RunAsync("copy", "--plain-http", $"oci:{bundle.LayoutDirectory}:{reference}", mapped);
            Assert.True(run.ExitCode == 0, run.ToString());
        }
    }

    private static Dictionary<string, JsonElement> ImagesBySource(JsonElement report) =>
        report.GetProperty("images").EnumerateArray().ToDictionary(i => i.GetProperty("source").GetString()!, i => i.Clone());

    [Fact]
    public async Task Check_EverythingImported_Exits0WithReport()
    {
        // Given every image and the chart copied into the registry under their mapped names
        var target = $"{registry.Host}/{NewPrefix()}";
        await SeedAsync(target);
        var reportPath = _temp.Sub("report.json");

        // When check runs with the release key
        var run = await MirrorCli.RunAsync("check", bundle.BundlePath, "--to", target, "--key", bundle.PublicKey, "--plain-http", "-o", reportPath);

        // Then it exits 0 and the report shows every root ok, with the bundle's digests found in the registry
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("complete", run.Output, StringComparison.Ordinal);
        using var report = JsonDocument.Parse(File.ReadAllText(reportPath));
        var root = report.RootElement;
        Assert.True(root.GetProperty("complete").GetBoolean());
        Assert.Equal(target, root.GetProperty("registry").GetString());
        Assert.Equal("olm", root.GetProperty("bundle").GetProperty("platform").GetProperty("name").GetString());
        Assert.Equal("1.0.0", root.GetProperty("bundle").GetProperty("platform").GetProperty("version").GetString());
        Assert.Equal("verified", root.GetProperty("bundle").GetProperty("signature").GetProperty("status").GetString());
        Assert.Equal(bundle.Written.BundleDigest.ToString(), root.GetProperty("bundle").GetProperty("digest").GetString());
        Assert.True(DateTimeOffset.TryParse(root.GetProperty("checkedAt").GetString(), out _));
        var images = ImagesBySource(root);
        Assert.Equal(bundle.Roots.Count, images.Count);
        foreach (var (reference, digest) in bundle.Roots)
        {
            var image = images[reference];
            Assert.Equal("ok", image.GetProperty("status").GetString());
            Assert.Equal(digest, image.GetProperty("expectedDigest").GetString());
            Assert.Equal(digest, image.GetProperty("foundDigest").GetString());
            Assert.Empty(image.GetProperty("missingBlobs").EnumerateArray());
            Assert.True(image.GetProperty("blobsChecked").GetInt32() >= 1);
        }

        Assert.Equal("chart", images[bundle.Written.Manifest.Charts.Single().Reference].GetProperty("kind").GetString());
        Assert.Equal($"{target}/olm-server:1.0.0", images[$"{CheckBundleFixture.Source}/olm-server:1.0.0"].GetProperty("target").GetString());
    }

    [Fact]
    public async Task Check_OneImageMissing_Exits1ListingIt()
    {
        // Given a second prefix where olm-worker was never imported
        var target = $"{registry.Host}/{NewPrefix()}";
        var worker = $"{CheckBundleFixture.Source}/olm-worker:1.0.0";
        await SeedAsync(target, worker);

        // When check runs
        var run = await MirrorCli.RunAsync("check", bundle.BundlePath, "--to", target, "--key", bundle.PublicKey, "--plain-http", "--json");

        // Then it exits 4 (incomplete), names the missing image on stderr, and the JSON report marks only it missing
        Assert.True(run.ExitCode == 4, run.ToString());
        Assert.Contains($"missing: {target}/olm-worker:1.0.0", run.Error, StringComparison.Ordinal);
        using var report = JsonDocument.Parse(run.Output);
        Assert.False(report.RootElement.GetProperty("complete").GetBoolean());
        Assert.Equal(1, report.RootElement.GetProperty("summary").GetProperty("missing").GetInt32());
        foreach (var (reference, image) in ImagesBySource(report.RootElement))
        {
            Assert.Equal(reference == worker ? "missing" : "ok", image.GetProperty("status").GetString());
        }
    }

    [Fact]
    public async Task Check_TagOnOtherDigest_ReportsWrongDigest()
    {
        // Given olm-worker's target tag holding olm-tools' image instead
        var target = $"{registry.Host}/{NewPrefix()}";
        var worker = $"{CheckBundleFixture.Source}/olm-worker:1.0.0";
        var tools = $"{CheckBundleFixture.Source}/olm-tools:1.0.0";
        await SeedAsync(target, worker);
        var wrong = await MirrorCli.RunAsync("copy", "--plain-http", $"oci:{bundle.LayoutDirectory}:{tools}", $"{target}/olm-worker:1.0.0");
        Assert.True(wrong.ExitCode == 0, wrong.ToString());

        // When check runs
        var run = await MirrorCli.RunAsync("check", bundle.BundlePath, "--to", target, "--key", bundle.PublicKey, "--plain-http", "--json");

        // Then it exits 4 and reports the digest found against the one expected
        Assert.True(run.ExitCode == 4, run.ToString());
        Assert.Contains($"wrong-digest: {target}/olm-worker:1.0.0", run.Error, StringComparison.Ordinal);
        using var report = JsonDocument.Parse(run.Output);
        var image = ImagesBySource(report.RootElement)[worker];
        Assert.Equal("wrong-digest", image.GetProperty("status").GetString());
        Assert.Equal(bundle.Roots.Single(r => r.Reference == tools).Digest, image.GetProperty("foundDigest").GetString());
        Assert.Equal(bundle.Roots.Single(r => r.Reference == worker).Digest, image.GetProperty("expectedDigest").GetString());
    }

    [Fact]
    public async Task Check_AfterImport_AgreesOnEveryName()
    {
        // Given the bundle imported with the product's import command (its own naming of every image)
        var target = $"{registry.Host}/{NewPrefix()}";
        var import = await MirrorCli.RunAsync("import", bundle.BundlePath, "--key", bundle.PublicKey, "--to", target, "--plain-http");
        Assert.True(import.ExitCode == 0, import.ToString());

        // When check runs with the same target
        var run = await MirrorCli.RunAsync("check", bundle.BundlePath, "--to", target, "--key", bundle.PublicKey, "--plain-http", "--json");

        // Then it finds every image and chart complete
        Assert.True(run.ExitCode == 0, run.ToString());
        using var report = JsonDocument.Parse(run.Output);
        Assert.Equal(bundle.Roots.Count, report.RootElement.GetProperty("summary").GetProperty("ok").GetInt32());
    }

    [Fact]
    public async Task Check_WrongKey_Exits3BeforeContactingTheRegistry()
    {
        var other = KeyPairGenerator.Generate(_temp.Sub("other"), null);

        var run = await MirrorCli.RunAsync("check", bundle.BundlePath, "--to", "127.0.0.1:1/nothing", "--key", other.PublicKeyPath, "--plain-http");

        Assert.True(run.ExitCode == 3, run.ToString());
    }
}
