using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.Tests.TestKit;

public sealed class SamplePlatformLayoutTests(SmallLayoutFixture fixture) : IClassFixture<SmallLayoutFixture>
{
    private readonly GeneratedPlatform _platform = fixture.Platform;

    private static string Sha256File(string path)
    {
        using var stream = File.OpenRead(path);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    [Fact]
    public void SamplePlatform_Small_CoversEveryKind()
    {
        var kinds = _platform.Images.Select(i => i.Kind).ToHashSet();
        Assert.Equal(Enum.GetValues<SampleImageKind>().ToHashSet(), kinds);
        Assert.InRange(_platform.Images.Count, 6, 8);
        Assert.InRange(_platform.UniqueBytes, 1L << 20, 16L << 20);
        Assert.All(_platform.Images, i => Assert.StartsWith("r3q3q2f4/", i.Repository, StringComparison.Ordinal));
    }

    [Fact]
    public void SamplePlatform_WriteLayout_IndexHasRefNames()
    {
        Assert.Equal("{\"imageLayoutVersion\":\"1.0.0\"}", File.ReadAllText(Path.Combine(fixture.Directory, "oci-layout")));
        using var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(fixture.Directory, "index.json")));
        var root = index.RootElement;
        Assert.Equal(2, root.GetProperty("schemaVersion").GetInt32());
        Assert.Equal(MediaTypes.OciIndex, root.GetProperty("mediaType").GetString());

        var descriptors = root.GetProperty("manifests").EnumerateArray().ToArray();
        Assert.Equal(_platform.Images.Count, descriptors.Length);
        foreach (var (descriptor, image) in descriptors.Zip(_platform.Images))
        {
            Assert.Equal(image.Reference, descriptor.GetProperty("annotations").GetProperty("org.opencontainers.image.ref.name").GetString());
            Assert.Equal(image.Digest, descriptor.GetProperty("digest").GetString());
            Assert.Equal(image.MediaType, descriptor.GetProperty("mediaType").GetString());
            Assert.Equal(image.ManifestSize, descriptor.GetProperty("size").GetInt64());
        }
    }

    [Fact]
    public void SamplePlatform_WriteLayout_BlobFileNamesMatchContentDigests()
    {
        var files = Directory.GetFiles(Path.Combine(fixture.Directory, "blobs", "sha256"));
        Assert.Equal(_platform.UniqueBlobCount, files.Length);
        foreach (var file in files)
        {
            Assert.Equal("sha256:" + Path.GetFileName(file), Sha256File(file));
        }
        Assert.False(Directory.Exists(Path.Combine(fixture.Directory, ".testkit-tmp")));

        foreach (var image in _platform.Images)
        {
            foreach (var digest in image.AllDigests)
            {
                Assert.True(File.Exists(_platform.GetBlobPath(digest)), $"{image.Reference}: missing {digest}");
                Assert.Equal(_platform.GetBlobSize(digest), new FileInfo(_platform.GetBlobPath(digest)).Length);
            }
            Assert.Equal(image.ManifestSize, _platform.GetBlobSize(image.Digest));
        }
    }

    [Fact]
    public void SamplePlatform_WriteLayout_SharesBaseLayers()
    {
        var server = _platform["r3q3q2f4/olm-server:1.0.0"].Manifests.Single();
        var worker = _platform["r3q3q2f4/olm-worker:1.0.0"].Manifests.Single();
        var gatewayAmd64 = _platform["r3q3q2f4/olm-gateway:1.0.0"].Manifests.Single(m => m.Platform == ImagePlatform.LinuxAmd64);
        var gatewayArm64 = _platform["r3q3q2f4/olm-gateway:1.0.0"].Manifests.Single(m => m.Platform == ImagePlatform.LinuxArm64);

        // base-os has two layers: identical digests in every amd64 image built on it (Docker and OCI alike)...
        Assert.Equal(server.Layers.Take(2).Select(l => l.Digest), worker.Layers.Take(2).Select(l => l.Digest));
        Assert.Equal(server.Layers.Take(2).Select(l => l.Digest), gatewayAmd64.Layers.Take(2).Select(l => l.Digest));
        // ...a different copy per architecture, and the images' own layers are their own.
        Assert.Empty(server.Layers.Select(l => l.Digest).Intersect(gatewayArm64.Layers.Select(l => l.Digest)));
        Assert.NotEqual(server.Layers[2].Digest, worker.Layers[2].Digest);

        var layerUse = _platform.Images.SelectMany(i => i.BlobDigests.Select(d => (d, i.Reference))).GroupBy(x => x.d);
        Assert.Contains(layerUse, g => g.Count() >= 3);
        // The shared blobs are stored once.
        var referenced = _platform.Images.SelectMany(i => i.AllDigests).Distinct().Count();
        Assert.Equal(referenced, _platform.UniqueBlobCount);
    }

    [Fact]
    public void SamplePlatform_WriteLayout_DiffIdsMatchUncompressedLayers()
    {
        var checkedLayers = 0;
        foreach (var manifest in _platform.Images.Where(i => i.Kind is not (SampleImageKind.Artifact or SampleImageKind.HelmChart))
                     .SelectMany(i => i.Manifests))
        {
            var config = fixture.ReadJson(manifest.ConfigDigest);
            var diffIds = config.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray().Select(e => e.GetString()).ToArray();
            Assert.Equal("layers", config.GetProperty("rootfs").GetProperty("type").GetString());
            Assert.Equal(manifest.Layers.Count, diffIds.Length);
            for (var i = 0; i < diffIds.Length; i++)
            {
                var layer = manifest.Layers[i];
                Assert.Equal(layer.DiffId, diffIds[i]);
                using var gzip = new GZipStream(_platform.OpenBlob(layer.Digest), CompressionMode.Decompress);
                using var tar = new MemoryStream();
                gzip.CopyTo(tar);
                Assert.Equal(diffIds[i], "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar.ToArray())));

                tar.Position = 0;
                using var reader = new TarReader(tar);
                var entries = new List<TarEntry>();
                while (reader.GetNextEntry() is { } entry) entries.Add(entry);
                Assert.Contains(entries, e => e.EntryType == TarEntryType.RegularFile && e.Name.EndsWith("/data-0.bin", StringComparison.Ordinal));
                Assert.Contains(entries, e => e.Name.EndsWith("/README.txt", StringComparison.Ordinal));
                checkedLayers++;
            }
        }
        Assert.True(checkedLayers >= 10, $"only {checkedLayers} layers checked");
    }

    [Fact]
    public void SamplePlatform_WriteLayout_ManifestsDeclareMediaTypesAndSchemaVersion()
    {
        foreach (var image in _platform.Images)
        {
            var top = fixture.ReadJson(image.Digest);
            Assert.Equal(2, top.GetProperty("schemaVersion").GetInt32());
            Assert.Equal(image.MediaType, top.GetProperty("mediaType").GetString());

            var docker = image.Kind is SampleImageKind.DockerImage or SampleImageKind.DockerList;
            foreach (var manifest in image.Manifests)
            {
                var json = fixture.ReadJson(manifest.Digest);
                Assert.Equal(2, json.GetProperty("schemaVersion").GetInt32());
                Assert.Equal(manifest.MediaType, json.GetProperty("mediaType").GetString());
                Assert.Equal(docker ? MediaTypes.DockerManifest : MediaTypes.OciManifest, manifest.MediaType);
                var config = json.GetProperty("config");
                Assert.Equal(manifest.ConfigDigest, config.GetProperty("digest").GetString());
                Assert.Equal(manifest.ConfigSize, config.GetProperty("size").GetInt64());
                Assert.Equal(manifest.ConfigMediaType, config.GetProperty("mediaType").GetString());
                var layers = json.GetProperty("layers").EnumerateArray().ToArray();
                Assert.Equal(manifest.Layers.Select(l => (l.MediaType, l.Digest, l.Size)),
                    layers.Select(l => (l.GetProperty("mediaType").GetString()!, l.GetProperty("digest").GetString()!, l.GetProperty("size").GetInt64())));
                if (image.Kind is SampleImageKind.DockerImage or SampleImageKind.DockerList)
                {
                    Assert.Equal(MediaTypes.DockerConfig, manifest.ConfigMediaType);
                    Assert.All(manifest.Layers, l => Assert.Equal(MediaTypes.DockerLayer, l.MediaType));
                }
                else if (image.Kind is SampleImageKind.OciImage or SampleImageKind.OciIndex)
                {
                    Assert.Equal(MediaTypes.OciConfig, manifest.ConfigMediaType);
                    Assert.All(manifest.Layers, l => Assert.Equal(MediaTypes.OciLayer, l.MediaType));
                }
            }
            // '+' must be written literally, not as \u002B.
            Assert.DoesNotContain("\\u002B", System.Text.Encoding.UTF8.GetString(_platform.ReadBlob(image.Digest)), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void SamplePlatform_WriteLayout_IndexChildrenCarryMatchingPlatforms()
    {
        var lists = _platform.Images.Where(i => i.IsIndex).ToArray();
        Assert.Contains(lists, i => i.MediaType == MediaTypes.DockerManifestList);
        Assert.Contains(lists, i => i.MediaType == MediaTypes.OciIndex && i.Platforms.Contains(ImagePlatform.LinuxArmV7));
        foreach (var image in lists)
        {
            var children = fixture.ReadJson(image.Digest).GetProperty("manifests").EnumerateArray().ToArray();
            Assert.Equal(image.ChildManifestDigests, children.Select(c => c.GetProperty("digest").GetString()));
            Assert.Contains(ImagePlatform.LinuxAmd64, image.Platforms);
            Assert.Contains(ImagePlatform.LinuxArm64, image.Platforms);
            foreach (var (child, manifest) in children.Zip(image.Manifests))
            {
                var platform = child.GetProperty("platform");
                var config = fixture.ReadJson(manifest.ConfigDigest);
                Assert.Equal(manifest.Platform!.Architecture, platform.GetProperty("architecture").GetString());
                Assert.Equal(manifest.Platform.Os, platform.GetProperty("os").GetString());
                Assert.Equal(config.GetProperty("architecture").GetString(), platform.GetProperty("architecture").GetString());
                Assert.Equal(config.GetProperty("os").GetString(), platform.GetProperty("os").GetString());
                var variant = platform.TryGetProperty("variant", out var v) ? v.GetString() : null;
                Assert.Equal(manifest.Platform.Variant, variant);
                Assert.Equal(variant, config.TryGetProperty("variant", out var cv) ? cv.GetString() : null);
                Assert.Equal(_platform.GetBlobSize(manifest.Digest), child.GetProperty("size").GetInt64());
            }
        }
    }

    [Fact]
    public void SamplePlatform_WriteLayout_ArtifactHasArtifactTypeAndEmptyConfig()
    {
        var artifact = _platform.Images.Single(i => i.Kind == SampleImageKind.Artifact);
        var json = fixture.ReadJson(artifact.Digest);
        Assert.Equal(MediaTypes.OciManifest, json.GetProperty("mediaType").GetString());
        Assert.Equal(MediaTypes.TestArtifact, json.GetProperty("artifactType").GetString());
        Assert.Equal(MediaTypes.TestArtifact, artifact.ArtifactType);
        var config = json.GetProperty("config");
        Assert.Equal(MediaTypes.OciEmpty, config.GetProperty("mediaType").GetString());
        Assert.Equal(MediaTypes.EmptyJsonDigest, config.GetProperty("digest").GetString());
        Assert.Equal(2, config.GetProperty("size").GetInt64());
        Assert.Equal("{}"u8.ToArray(), _platform.ReadBlob(MediaTypes.EmptyJsonDigest));
        var layer = Assert.Single(json.GetProperty("layers").EnumerateArray());
        Assert.Equal(MediaTypes.TestArtifactPayload, layer.GetProperty("mediaType").GetString());
    }

    [Fact]
    public void SamplePlatform_WriteLayout_HelmChartHasHelmMediaTypesAndChartYaml()
    {
        var chart = _platform.Images.Single(i => i.Kind == SampleImageKind.HelmChart);
        var manifest = chart.Manifests.Single();
        Assert.Equal(MediaTypes.HelmConfig, manifest.ConfigMediaType);
        var layer = Assert.Single(manifest.Layers);
        Assert.Equal(MediaTypes.HelmChartContent, layer.MediaType);
        Assert.Equal(chart.Tag, fixture.ReadJson(manifest.ConfigDigest).GetProperty("version").GetString());

        using var reader = new TarReader(new GZipStream(_platform.OpenBlob(layer.Digest), CompressionMode.Decompress));
        var names = new List<string>();
        while (reader.GetNextEntry() is { } entry) names.Add(entry.Name);
        Assert.Contains("olm-platform/Chart.yaml", names);
        Assert.Contains("olm-platform/values.yaml", names);
    }
}
