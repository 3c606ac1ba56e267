using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Registries;

/// <summary>import into a Nexus-like registry whose Bearer challenge names a broken realm: the client falls back to Basic.</summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class NexusRealmImportTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private NexusRealmProxy _nexus = null!;
    private TestBundle _bundle = null!;

    public async Task InitializeAsync()
    {
        _nexus = new NexusRealmProxy(registry.BaseUri);
        await _nexus.StartAsync();
        _bundle = await TestBundle.CreateAsync(_temp.Sub("b"), seed: 95);
    }

    public async Task DisposeAsync()
    {
        await _nexus.DisposeAsync();
        _temp.Dispose();
    }

    [Fact]
    public async Task Import_BrokenBearerRealm_FallsBackToBasicAndStoresIdenticalDigests()
    {
        var prefix = $"nx{Guid.NewGuid().ToString("N")[..8]}";
        var config = _temp.Sub("docker");
        Directory.CreateDirectory(config);
        var auth = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{NexusRealmProxy.User}:{NexusRealmProxy.Password}"));
        File.WriteAllText(Path.Combine(config, "config.json"), "{\"auths\":{\"" + _nexus.Host + "\":{\"auth\":\"" + auth + "\"}}}");

        var run = await MirrorCli.RunProcessAsync(
            new Dictionary<string, string> { ["DOCKER_CONFIG"] = config },
            "import", _bundle.Path, "--key", _bundle.PublicKey, "--to", $"{_nexus.Host}/{prefix}", "--plain-http");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.True(_nexus.Challenges > 0);
        Assert.True(_nexus.BasicAccepted > 0);
        foreach (var image in _bundle.Platform.Images)
        {
            Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{registry.Host}/{prefix}/{image.Repository.Split('/', 2)[1]}:{image.Tag}"));
        }
    }

    [Fact]
    public async Task Import_HeadClaimsMissingBlobs_ReuploadsThemAndStoresIdenticalDigests()
    {
        // Given a Nexus-like registry whose HEAD says "stored" for three blobs it does not have
        await using var lying = new NexusRealmProxy(registry.BaseUri) { FalseBlobHeads = 3 };
        await lying.StartAsync();
        var prefix = $"nxh{Guid.NewGuid().ToString("N")[..8]}";
        var config = DockerConfig(lying.Host);

        // When the bundle is imported
        var run = await MirrorCli.RunProcessAsync(
            new Dictionary<string, string> { ["DOCKER_CONFIG"] = config },
            "import", _bundle.Path, "--key", _bundle.PublicKey, "--to", $"{lying.Host}/{prefix}", "--plain-http");

        // Then the manifests refused over those blobs went up after the blobs were uploaded after all
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(3, lying.FalseHeadsAnswered.Count);
        Assert.Contains("uploading that blob after all", run.Error, StringComparison.Ordinal);
        foreach (var image in _bundle.Platform.Images)
        {
            Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{registry.Host}/{prefix}/{image.Repository.Split('/', 2)[1]}:{image.Tag}"));
        }

        // and every blob the HEAD lied about is really stored now
        using var http = new HttpClient();
        foreach (var claimed in lying.FalseHeadsAnswered)
        {
            var parts = claimed.Split('@');
            using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, new Uri(registry.BaseUri, $"v2/{parts[0]}/blobs/{parts[1]}")));
            Assert.True(head.IsSuccessStatusCode, $"{claimed} is not stored: {(int)head.StatusCode}");
        }
    }

    private string DockerConfig(string host)
    {
        var config = _temp.Sub("docker-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(config);
        var auth = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{NexusRealmProxy.User}:{NexusRealmProxy.Password}"));
        File.WriteAllText(Path.Combine(config, "config.json"), "{\"auths\":{\"" + host + "\":{\"auth\":\"" + auth + "\"}}}");
        return config;
    }
}
