using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Copy;

/// <summary>A proxy that alters content: the copy fails with exit 3 and commits nothing.</summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class CopyTamperingTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private GeneratedPlatform _platform = null!;
    private TamperingProxy _proxy = null!;

    public async Task InitializeAsync()
    {
        _platform = await SamplePlatform.Small(seed: 11, @namespace: "tamper" + Guid.NewGuid().ToString("N")[..8]).PushAsync(registry.Host, _temp.Sub("gen"));
        _proxy = new TamperingProxy(registry.BaseUri);
        await _proxy.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync();
        _temp.Dispose();
    }

    [Fact]
    public async Task Copy_TamperedLayer_ExitsThreeAndWritesNothingToTheLayout()
    {
        // Given a proxy that flips a byte in one layer
        var image = _platform.Images.First(i => i.Kind == SampleImageKind.OciImage);
        var layer = image.Manifests[0].Layers[^1].Digest;
        _proxy.FlipBlob(layer);
        var layout = _temp.Sub("layout");

        // When copying through it
        var run = await MirrorCli.RunAsync("copy", "--plain-http", "--retries", "1", $"{_proxy.RegistryHost}/{image.Reference}", $"oci:{layout}");

        // Then: integrity failure naming the digest; no blob with that digest, no ref name, no temp files
        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.Contains(layer, run.Error);
        Assert.False(File.Exists(Path.Combine(layout, "blobs", "sha256", layer["sha256:".Length..])));
        Assert.DoesNotContain("ref.name", File.ReadAllText(Path.Combine(layout, "index.json")));
        var temp = Path.Combine(layout, ".openlm-tmp");
        Assert.True(!Directory.Exists(temp) || Directory.GetFiles(temp).Length == 0);
    }

    [Fact]
    public async Task Copy_TamperedManifest_ExitsThreeAndCreatesNoTag()
    {
        // Given a proxy that alters a manifest but keeps the registry's Docker-Content-Digest
        var image = _platform.Images.First(i => i.Kind == SampleImageKind.DockerImage);
        _proxy.FlipManifest();
        var target = $"{registry.Host}/tampered/{image.Reference}";

        // When copying it into the registry
        var run = await MirrorCli.RunAsync("copy", "--plain-http", "--retries", "0", $"{_proxy.RegistryHost}/{image.Reference}", target);

        // Then: exit 3, and the target tag does not exist
        Assert.True(run.ExitCode == 3, run.ToString());
        var (exit, _, _) = await Tools.RunAsync("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{target}");
        Assert.NotEqual(0, exit);
    }
}
