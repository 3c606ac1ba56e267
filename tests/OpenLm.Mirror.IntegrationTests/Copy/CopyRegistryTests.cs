using System.Text.Json;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Copy;

/// <summary>copy between real Distribution registries and OCI layouts: digests preserved end to end, peers agree.</summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class CopyRegistryTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private readonly string _namespace = "it" + Guid.NewGuid().ToString("N")[..10];
    private GeneratedPlatform _platform = null!;

    public async Task InitializeAsync() =>
        _platform = await SamplePlatform.Small(seed: 7, @namespace: _namespace).PushAsync(registry.Host, _temp.Sub("gen"));

    public Task DisposeAsync()
    {
        _temp.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Copy_RegistryToRegistry_EveryImageKeepsItsDigest()
    {
        foreach (var image in _platform.Images)
        {
            // Given an image of every kind in the source repository
            var source = $"{registry.Host}/{image.Reference}";
            var target = $"{registry.Host}/copied/{image.Reference}";

            // When it is copied to another repository
            var run = await MirrorCli.RunAsync("copy", "--plain-http", source, target);

            // Then the copy has the source digest, and skopeo reads the same bytes
            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.Contains(image.Digest, run.Output);
            Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{target}"));
        }
    }

    [Fact]
    public async Task Copy_RegistryToLayoutToRegistry_DigestsIdenticalAndPeersReadTheLayout()
    {
        // Given all images copied in one run into an OCI layout
        var layout = _temp.Sub("layout");
        var sources = _platform.Images.Select(i => $"{registry.Host}/{i.Reference}").ToArray();
        var toLayout = await MirrorCli.RunAsync(["copy", "--plain-http", "--json", .. sources, $"oci:{layout}"]);
        Assert.True(toLayout.ExitCode == 0, toLayout.ToString());

        // Then every image is named by its full source reference, with the source digest
        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(layout, "index.json")));
        var entries = index.RootElement.GetProperty("manifests").EnumerateArray()
            .ToDictionary(e => e.GetProperty("annotations").GetProperty("org.opencontainers.image.ref.name").GetString()!, e => e.GetProperty("digest").GetString());
        foreach (var image in _platform.Images)
        {
            Assert.Equal(image.Digest, entries[$"{registry.Host}/{image.Reference}"]);
        }

        // And skopeo reads every OCI-typed image from the layout with the same digest; umoci lists them
        foreach (var image in _platform.Images.Where(i => i.MediaType.StartsWith("application/vnd.oci", StringComparison.Ordinal)))
        {
            Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"oci:{layout}:{registry.Host}/{image.Reference}"));
        }

        var (umociExit, umociOut, umociErr) = await Tools.RunAsync("umoci", "ls", "--layout", layout);
        Assert.True(umociExit == 0, umociErr);
        Assert.Contains($"{registry.Host}/{_platform.Images[0].Reference}", System.Text.Encoding.UTF8.GetString(umociOut));

        // When the layout is copied back into a registry
        foreach (var image in _platform.Images)
        {
            var back = await MirrorCli.RunAsync("copy", "--plain-http", $"oci:{layout}:{registry.Host}/{image.Reference}", $"{registry.Host}/back/{image.Reference}");
            Assert.True(back.ExitCode == 0, back.ToString());

            // Then the registry holds the very same digest
            Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{registry.Host}/back/{image.Reference}"));
        }
    }

    [Fact]
    public async Task Copy_PlatformFilter_KeepsOnlyTheRequestedChild()
    {
        // Given a multi-arch OCI index
        var image = _platform.Images.First(i => i.Kind == SampleImageKind.OciIndex);
        var amd64 = image.Manifests.Single(m => m.Platform == ImagePlatform.LinuxAmd64);
        var layout = _temp.Sub("filtered");

        // When copied with --platform linux/amd64
        var run = await MirrorCli.RunAsync("copy", "--plain-http", "--platform", "linux/amd64", "--json", $"{registry.Host}/{image.Reference}", $"oci:{layout}");
        Assert.True(run.ExitCode == 0, run.ToString());

        // Then the stored index lists only the amd64 manifest, and other platforms' layers are absent
        using var report = JsonDocument.Parse(run.Output);
        var digest = report.RootElement.GetProperty("images")[0].GetProperty("digest").GetString()!;
        Assert.NotEqual(image.Digest, digest);
        var indexBytes = File.ReadAllBytes(Path.Combine(layout, "blobs", "sha256", digest["sha256:".Length..]));
        using var stored = JsonDocument.Parse(indexBytes);
        var children = stored.RootElement.GetProperty("manifests").EnumerateArray().Select(m => m.GetProperty("digest").GetString()).ToList();
        Assert.Equal([amd64.Digest], children);
        foreach (var other in image.Manifests.Where(m => m.Platform != ImagePlatform.LinuxAmd64))
        {
            Assert.False(File.Exists(Path.Combine(layout, "blobs", "sha256", other.Digest["sha256:".Length..])));
        }
    }

    [Fact]
    public async Task Copy_NoPlatformFilter_IndexStaysByteIdentical()
    {
        var image = _platform.Images.First(i => i.Kind == SampleImageKind.DockerList);
        var layout = _temp.Sub("all");
        var run = await MirrorCli.RunAsync("copy", "--plain-http", $"{registry.Host}/{image.Reference}", $"oci:{layout}:list");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(
            _platform.ReadBlob(image.Digest),
            File.ReadAllBytes(Path.Combine(layout, "blobs", "sha256", image.Digest["sha256:".Length..])));
    }

    [Fact]
    public async Task Copy_SecondRun_SkipsEverything()
    {
        var image = _platform.Images.First(i => i.Kind == SampleImageKind.OciImage);
        var target = $"{registry.Host}/again/{image.Reference}";
        Assert.Equal(0, (await MirrorCli.RunAsync("copy", "--plain-http", $"{registry.Host}/{image.Reference}", target)).ExitCode);

        var second = await MirrorCli.RunAsync("copy", "--plain-http", "--json", $"{registry.Host}/{image.Reference}", target);

        Assert.True(second.ExitCode == 0, second.ToString());
        using var report = JsonDocument.Parse(second.Output);
        Assert.Equal(0, report.RootElement.GetProperty("bytesCopied").GetInt64());
    }

    [Fact]
    public async Task Copy_UnknownImage_ExitsOneNamingTheReference()
    {
        var missing = $"{registry.Host}/{_namespace}/does-not-exist:9.9";
        var run = await MirrorCli.RunAsync("copy", "--plain-http", missing, $"oci:{_temp.Sub("none")}");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"{_namespace}/does-not-exist", run.Error);
        Assert.Contains("404", run.Error);
    }

    [Fact]
    public async Task Copy_MalformedReference_ExitsTwoQuotingIt()
    {
        var run = await MirrorCli.RunAsync("copy", "--plain-http", "redis:alpine3.17:25.6.17.422", $"oci:{_temp.Sub("bad")}");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("'redis:alpine3.17:25.6.17.422'", run.Error);
        Assert.False(Directory.Exists(_temp.Sub("bad")));
    }
}
