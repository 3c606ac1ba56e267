using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Registries;

/// <summary>import through an nginx-like body limit: monolithic PUTs refused with 413 fall back to chunked PATCH uploads.</summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class BodyLimitImportTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private BodyLimitProxy _proxy = null!;
    private TestBundle _bundle = null!;

    public async Task InitializeAsync()
    {
        // Smaller than the sample's biggest layers (384 KiB, 640 KiB), bigger than the 256 KiB chunk floor.
        _proxy = new BodyLimitProxy(registry.BaseUri, 300 * 1024);
        await _proxy.StartAsync();
        _bundle = await TestBundle.CreateAsync(_temp.Sub("b"), seed: 95);
    }

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync();
        _temp.Dispose();
    }

    [Fact]
    public async Task Import_BehindBodyLimit_FallsBackToChunksAndStoresIdenticalDigests()
    {
        var prefix = $"lim{Guid.NewGuid().ToString("N")[..8]}";

        var run = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", $"{_proxy.Host}/{prefix}", "--plain-http");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.True(_proxy.Refused413 > 0, "the limit was never hit; the test proves nothing");
        Assert.True(_proxy.PatchRequests > 0, "no chunked upload was made");
        Assert.Contains("uploading in chunks", run.Error);
        foreach (var image in _bundle.Platform.Images)
        {
            Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{registry.Host}/{prefix}/{image.Repository.Split('/', 2)[1]}:{image.Tag}"));
        }
    }

    [Fact]
    public async Task Import_ChunkSizeGiven_UploadsInChunksFromTheStartWithoutHittingTheLimit()
    {
        var prefix = $"chk{Guid.NewGuid().ToString("N")[..8]}";

        var run = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", $"{_proxy.Host}/{prefix}", "--plain-http", "--chunk-size", "256KiB");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(0, _proxy.Refused413);
        Assert.True(_proxy.PatchRequests > 0, "no chunked upload was made");
        var first = _bundle.Platform.Images[0];
        Assert.Equal(first.Digest, await Tools.SkopeoRawDigestAsync($"docker://{registry.Host}/{prefix}/{first.Repository.Split('/', 2)[1]}:{first.Tag}"));
    }

    [Fact]
    public async Task Import_ChunkSizeTooSmall_ExitsTwo()
    {
        var run = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", $"{_proxy.Host}/x", "--plain-http", "--chunk-size", "64KiB");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--chunk-size must be at least 256KiB", run.Error);
    }
}
