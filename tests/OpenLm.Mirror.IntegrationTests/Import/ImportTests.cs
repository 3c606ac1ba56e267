using System.Text.Json;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Import;

/// <summary>import into a real Distribution registry: digests preserved, idempotent, nothing tagged unless all verified.</summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ImportTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private TestBundle _bundle = null!;

    public async Task InitializeAsync() => _bundle = await TestBundle.CreateAsync(_temp.Sub("b"), seed: 41);

    public Task DisposeAsync()
    {
        _temp.Dispose();
        return Task.CompletedTask;
    }

    private string Prefix() => $"{registry.Host}/imp{Guid.NewGuid().ToString("N")[..8]}";

    [Fact]
    public async Task Import_SignedBundle_EveryImageAtItsMappedNameWithTheBundleDigest()
    {
        var to = Prefix();

        var run = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, "--plain-http", "--json", "--receipt", _temp.Sub("receipt.json"));

        Assert.True(run.ExitCode == 0, run.ToString());
        foreach (var image in _bundle.Platform.Images)
        {
            var target = $"{to}/{image.Repository.Split('/', 2)[1]}:{image.Tag}";
            Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{target}"));
        }

        using var receipt = JsonDocument.Parse(File.ReadAllText(_temp.Sub("receipt.json")));
        Assert.Equal(_bundle.Platform.Images.Count, receipt.RootElement.GetProperty("images").GetArrayLength());
    }

    [Fact]
    public async Task Import_SameBundleTwice_SecondUploadsNothingAndSaysSo()
    {
        var to = Prefix();
        Assert.Equal(0, (await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, "--plain-http")).ExitCode);

        var again = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, "--plain-http");
        var againJson = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, "--plain-http", "--json");

        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("nothing uploaded", again.Output);
        using var report = JsonDocument.Parse(againJson.Output);
        Assert.Equal(0, report.RootElement.GetProperty("blobsUploaded").GetInt32());
        Assert.All(report.RootElement.GetProperty("images").EnumerateArray(), i => Assert.Equal("unchanged", i.GetProperty("status").GetString()));
    }

    [Fact]
    public async Task Import_DryRun_PlansAndWritesNothing()
    {
        var to = Prefix();

        var run = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, "--plain-http", "--dry-run", "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        using var plan = JsonDocument.Parse(run.Output);
        Assert.True(plan.RootElement.GetProperty("blobsUploaded").GetInt32() > 0);
        Assert.Equal(_bundle.Platform.Images.Count, plan.RootElement.GetProperty("images").GetArrayLength());
        await AssertNoTagsAsync(to);
    }

    [Fact]
    public async Task Import_WrongKey_ExitsThreeAndPushesNothing()
    {
        var other = await TestBundle.CreateAsync(_temp.Sub("other"), seed: 43);
        var to = Prefix();

        var run = await MirrorCli.RunAsync("import", _bundle.Path, "--key", other.PublicKey, "--to", to, "--plain-http");

        Assert.Equal(3, run.ExitCode);
        Assert.Contains("signature", run.Error, StringComparison.OrdinalIgnoreCase);
        await AssertNothingPushedAsync(to);
    }

    [Fact]
    public async Task Import_NoKey_RefusedUnlessExplicitlySkipped()
    {
        var to = Prefix();
        var refused = await MirrorCli.RunAsync("import", _bundle.Path, "--to", to, "--plain-http");
        Assert.Equal(3, refused.ExitCode);
        await AssertNothingPushedAsync(to);

        var skipped = await MirrorCli.RunAsync("import", _bundle.Path, "--insecure-skip-signature", "--to", to, "--plain-http");
        Assert.True(skipped.ExitCode == 0, skipped.ToString());
        Assert.Contains("NOT checked", skipped.Error);
    }

    [Fact]
    public async Task Import_CorruptBlobMidBundle_ExitsThreeAndCreatesNoTag()
    {
        // Given a copy of the bundle with one byte flipped in the last layer entry
        var corrupt = _temp.Sub("corrupt.tar");
        File.Copy(_bundle.Path, corrupt);
        var bytes = File.ReadAllBytes(corrupt);
        var lastLayer = _bundle.Platform.Images.SelectMany(i => i.Manifests).SelectMany(m => m.Layers).OrderBy(l => l.Digest, StringComparer.Ordinal).Last();
        var offset = IndexOf(bytes, System.Text.Encoding.ASCII.GetBytes("blobs/sha256/" + lastLayer.Digest["sha256:".Length..])) + 512 + 100;
        bytes[offset] ^= 0xFF;
        File.WriteAllBytes(corrupt, bytes);
        var to = Prefix();

        // When importing it
        var run = await MirrorCli.RunAsync("import", corrupt, "--key", _bundle.PublicKey, "--to", to, "--plain-http");

        // Then: integrity failure naming the blob, and no tag anywhere under the target
        Assert.Equal(3, run.ExitCode);
        Assert.Contains(lastLayer.Digest, run.Error);
        await AssertNoTagsAsync(to);
    }

    [Fact]
    public async Task Import_MappingCollision_ExitsTwoAndPushesNothing()
    {
        // Two source repositories renamed onto one target repository, both tagged 1.0.0
        var images = _bundle.Platform.Images.Where(i => i.Tag == "1.0.0").Take(2).Select(i => i.Repository.Split('/', 2)[1]).ToList();
        var to = Prefix();

        var run = await MirrorCli.RunAsync(
            "import", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, "--plain-http",
            "--map", $"public.ecr.aws/r3q3q2f4/{images[0]}=same", "--map", $"public.ecr.aws/r3q3q2f4/{images[1]}=same");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("same", run.Error);
        await AssertNothingPushedAsync(to);
    }

    [Fact]
    public async Task Import_ZstdBundle_Works()
    {
        var zstd = await TestBundle.CreateAsync(_temp.Sub("z"), seed: 41, BundleCompression.Zstd);
        var to = Prefix();

        var run = await MirrorCli.RunAsync("import", zstd.Path, "--key", zstd.PublicKey, "--to", to, "--plain-http");

        Assert.True(run.ExitCode == 0, run.ToString());
        var first = zstd.Platform.Images[0];
        Assert.Equal(first.Digest, await Tools.SkopeoRawDigestAsync($"docker://{to}/{first.Repository.Split('/', 2)[1]}:{first.Tag}"));
    }

    private async Task AssertNoTagsAsync(string to)
    {
        foreach (var image in _bundle.Platform.Images)
        {
            var (exit, _, _) = await Tools.RunAsync("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{to}/{image.Repository.Split('/', 2)[1]}:{image.Tag}");
            Assert.NotEqual(0, exit);
        }
    }

    private async Task AssertNothingPushedAsync(string to)
    {
        using var http = new HttpClient();
        var catalog = await http.GetStringAsync(new Uri(registry.BaseUri, "v2/_catalog?n=1000"));
        var prefix = to[(registry.Host.Length + 1)..];
        Assert.DoesNotContain(prefix, catalog);
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (var i = 0; i <= haystack.Length - needle.Length; i++)
        {
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle))
            {
                return i;
            }
        }

        throw new InvalidOperationException("entry not found");
    }
}
