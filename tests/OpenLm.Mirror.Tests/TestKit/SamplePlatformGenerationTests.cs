using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.Tests.TestKit;

public sealed class SamplePlatformGenerationTests : IDisposable
{
    private readonly List<string> _dirs = [];

    private string NewDir()
    {
        var dir = TempDir.Create();
        _dirs.Add(dir);
        return dir;
    }

    public void Dispose()
    {
        foreach (var dir in _dirs) TempDir.Delete(dir);
    }

    [Fact]
    public void SamplePlatform_WriteLayout_IsDeterministicPerSeed()
    {
        var a = SamplePlatform.Small(seed: 3).WriteLayout(NewDir());
        var b = SamplePlatform.Small(seed: 3).WriteLayout(NewDir(), new GenerateOptions { MaxParallelism = 1 });
        var c = SamplePlatform.Small(seed: 4).WriteLayout(NewDir());

        Assert.Equal(a.Images.Select(i => i.Digest), b.Images.Select(i => i.Digest));
        Assert.Equal(File.ReadAllBytes(Path.Combine(a.Directory, "index.json")), File.ReadAllBytes(Path.Combine(b.Directory, "index.json")));
        Assert.Empty(a.Images.Select(i => i.Digest).Intersect(c.Images.Select(i => i.Digest)));
    }

    [Fact]
    public void SamplePlatform_Synthetic_HitsTargetSizeWithSharedBasesAndMixedKinds()
    {
        const long target = 12L << 20;
        var spec = SamplePlatform.Synthetic(target, imageCount: 16, seed: 5);
        var generated = spec.WriteLayout(NewDir());

        Assert.Equal(16, generated.Images.Count);
        Assert.InRange(generated.UniqueBytes, target * 95 / 100, target * 110 / 100);
        Assert.InRange(spec.EstimatedPayloadBytes, target * 95 / 100, target * 105 / 100);
        Assert.Contains(generated.Images, i => i.Kind == SampleImageKind.DockerImage);
        Assert.Contains(generated.Images, i => i.Kind == SampleImageKind.OciImage);
        Assert.Contains(generated.Images, i => i.Kind == SampleImageKind.DockerList);
        Assert.Contains(generated.Images, i => i.Kind == SampleImageKind.OciIndex);
        Assert.Contains(generated.Images, i => i.Kind == SampleImageKind.Artifact);

        // Shared base layers: some layer digest is used by several repositories, but stored once.
        var usage = generated.Images.SelectMany(i => i.BlobDigests.Select(d => (Digest: d, i.Repository)))
            .GroupBy(x => x.Digest).Max(g => g.Select(x => x.Repository).Distinct().Count());
        Assert.True(usage >= 4, $"max sharing {usage}");
        var perImageSum = generated.Images.Sum(i => i.TotalSize);
        Assert.True(perImageSum > generated.UniqueBytes * 11 / 10, "sharing should make per-image totals exceed unique bytes");
    }

    [Fact]
    public void SamplePlatform_WithOciMediaTypesOnly_KeepsLayersAndDropsDockerTypes()
    {
        var docker = SamplePlatform.Small(seed: 2).WriteLayout(NewDir());
        var oci = SamplePlatform.Small(seed: 2).WithOciMediaTypesOnly().WriteLayout(NewDir());

        Assert.All(oci.Images, i => Assert.DoesNotContain("docker", i.MediaType, StringComparison.Ordinal));
        Assert.All(oci.Images.SelectMany(i => i.Manifests), m => Assert.DoesNotContain("docker", m.MediaType, StringComparison.Ordinal));
        var server = docker["r3q3q2f4/olm-server:1.0.0"].Manifests.Single();
        var ociServer = oci["r3q3q2f4/olm-server:1.0.0"].Manifests.Single();
        Assert.Equal(server.Layers.Select(l => (l.Digest, l.DiffId)), ociServer.Layers.Select(l => (l.Digest, l.DiffId)));
        Assert.NotEqual(server.Digest, ociServer.Digest);
    }

    [Fact]
    public void SamplePlatform_Constructor_RejectsInvalidSpecs()
    {
        SampleImageSpec Image(string repo, SampleImageKind kind = SampleImageKind.OciImage) => new(repo, "1.0", kind, [1024]);
        Assert.Throws<ArgumentException>(() => new SamplePlatform(1, [], [Image("Upper/Case")]));
        Assert.Throws<ArgumentException>(() => new SamplePlatform(1, [], [Image("a/b"), Image("a/b")]));
        Assert.Throws<ArgumentException>(() => new SamplePlatform(1, [], [Image("a/b") with { BaseName = "missing" }]));
        Assert.Throws<ArgumentException>(() => new SamplePlatform(1, [], [Image("a/b", SampleImageKind.Artifact) with { Platforms = [ImagePlatform.LinuxAmd64] }]));
        Assert.Throws<ArgumentException>(() => new SamplePlatform(1, [], [Image("a/b", SampleImageKind.OciIndex) with
        {
            Platforms = [ImagePlatform.LinuxAmd64, ImagePlatform.Parse("linux/amd64")],
        }]));
    }
}
