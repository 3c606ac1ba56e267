using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Registries;

/// <summary>
/// import into a registry with a GitLab-like depth limit (3 components here): names that are too deep stop the import
/// before anything is pushed; with <c>--max-path-components 3</c> the excess components are joined with '-' and import
/// import, check (with the same <c>--registry-kind</c>), the receipt and an inventory agree on the flattened names.
/// </summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class PathFlatteningImportTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private DepthLimitProxy _proxy = null!;
    private TestBundle _bundle = null!;

    public async Task InitializeAsync()
    {
        _proxy = new DepthLimitProxy(registry.BaseUri, maxComponents: 3);
        await _proxy.StartAsync();
        _bundle = await TestBundle.CreateAsync(_temp.Sub("b"), seed: 94);
    }

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync();
        _temp.Dispose();
    }

    [Fact]
    public async Task Import_TooDeep_ExitsOneBeforePushing_WithMaxPathComponentsFlattensAndCheckAgrees()
    {
        // Given names of 4 components (prefix/team/sub/<image>) and a registry that takes 3
        var prefix = $"fl{Guid.NewGuid().ToString("N")[..8]}";
        string[] common = ["--key", _bundle.PublicKey, "--to", $"{_proxy.Host}/{prefix}", "--map", $"{_bundle.Source}=team/sub", "--plain-http"];

        var refused = await MirrorCli.RunAsync(["import", _bundle.Path, .. common]);

        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains("nothing was pushed", refused.Error);
        Assert.Contains($"{prefix}/team/sub/olm-server", refused.Error);
        Assert.Equal(0, _proxy.BlobWrites);

        // When flattening to 3 components
        var receipt = _temp.Sub("receipt.json");
        var run = await MirrorCli.RunAsync(["import", _bundle.Path, .. common, "--max-path-components", "3", "--receipt", receipt]);

        // Then every image is stored under prefix/team/sub-<image> with its digest, and check finds them all there
        Assert.True(run.ExitCode == 0, run.ToString());
        foreach (var image in _bundle.Platform.Images)
        {
            var name = $"{prefix}/team/sub-{image.Repository.Split('/', 2)[1].Replace('/', '-')}";
            Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{registry.Host}/{name}:{image.Tag}"));
        }

        var check = await MirrorCli.RunAsync(["check", _bundle.Path, .. common, "--max-path-components", "3", "--registry-kind", "gitlab"]);
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Contains("gitlab", check.Output, StringComparison.Ordinal);

        // And the receipt, an inventory of the target and the expected flattened names are one list
        var expected = _bundle.Platform.Images.Select(i => $"{_proxy.Host}/{prefix}/team/sub-{i.Repository.Split('/', 2)[1].Replace('/', '-')}:{i.Tag}").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected, TargetsOf(receipt));
        var inventory = _temp.Sub("inventory.json");
        var taken = await MirrorCli.RunAsync(["inventory", "--to", $"{_proxy.Host}/{prefix}", "--map", $"{_bundle.Source}=team/sub", "--plain-http", "--lock", WriteLock(), "-o", inventory, "--max-path-components", "3"]);
        Assert.True(taken.ExitCode == 0, taken.ToString());
        Assert.Equal(expected, TargetsOf(inventory));
    }

    private static List<string> TargetsOf(string receipt)
    {
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(receipt));
        return json.RootElement.GetProperty("images").EnumerateArray().Select(i => i.GetProperty("target").GetString()!).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The lock of the bundle's release, as resolve would have written it (what inventory looks up).</summary>
    private string WriteLock()
    {
        var path = _temp.Sub("lock.json");
        var images = _bundle.Platform.Images.Select(i => new { reference = _bundle.SourceRef(i), digest = i.Digest, sourceDigest = i.Digest, mediaType = i.MediaType });
        File.WriteAllText(path, System.Text.Json.JsonSerializer.Serialize(new { lockVersion = 1, name = "openlm-platform", version = "1.0.94", source = _bundle.Source, images }));
        return path;
    }
}
