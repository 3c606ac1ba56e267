using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.TestKit;
using Xunit;
using MediaTypes = OpenLm.Mirror.Oci.MediaTypes;

namespace OpenLm.Mirror.Tests.Core;

/// <summary>The TestKit's small platform, generated once: OCI media types only, and the mixed default.</summary>
public sealed class SampleLayoutsFixture : IDisposable
{
    private readonly TempDirectory _dir = new();

    public SampleLayoutsFixture()
    {
        Oci = SamplePlatform.Small(seed: 11).WithOciMediaTypesOnly().WriteLayout(_dir.Sub("oci"));
        Mixed = SamplePlatform.Small(seed: 12).WriteLayout(_dir.Sub("mixed"));
    }

    public GeneratedPlatform Oci { get; }

    public GeneratedPlatform Mixed { get; }

    public void Dispose() => _dir.Dispose();
}

public sealed class GraphCopierTests(SampleLayoutsFixture samples) : IClassFixture<SampleLayoutsFixture>, IDisposable
{
    private const string Agent = "r3q3q2f4/olm-agent:1.0.0";
    private const string Server = "r3q3q2f4/olm-server:1.0.0";
    private const string Worker = "r3q3q2f4/olm-worker:1.0.0";
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private OciLayoutStore Source(GeneratedPlatform platform) => OciLayoutStore.Open(platform.Directory, create: false);

    private OciLayoutStore NewTarget(string name = "dst") => OciLayoutStore.Open(_dir.Sub(name), create: true);

    private static HashSet<string> BlobDigests(OciLayoutStore store) =>
        Directory.GetFiles(Path.Combine(store.Root, "blobs", "sha256")).Select(f => "sha256:" + Path.GetFileName(f)).ToHashSet(StringComparer.Ordinal);

    [Fact]
    public async Task GraphCopier_CopyAsync_MultiArchIndexWithoutFilter_KeepsBytesIdentical()
    {
        // Given a 3-platform OCI index in a layout
        var image = samples.Oci[Agent];
        var target = NewTarget();

        // When it is copied without a platform filter
        var result = await new GraphCopier(new CopyOptions()).CopyAsync(Source(samples.Oci), Agent, target, "mirror/agent:1.0.0");

        // Then the index and every manifest and blob arrive byte for byte, and the tag points at the same digest
        Assert.Equal(image.Digest, result.Root.Digest.ToString());
        Assert.Equal(image.Digest, result.SourceRoot.Digest.ToString());
        Assert.Equal(["linux/amd64", "linux/arm64", "linux/arm/v7"], result.PlatformsKept.Select(p => p.ToString()));
        foreach (var digest in image.AllDigests)
        {
            Assert.Equal(samples.Oci.ReadBlob(digest), await File.ReadAllBytesAsync(target.BlobPath(Digest.Parse(digest))));
        }

        Assert.Equal(image.AllDigests.ToHashSet(StringComparer.Ordinal), BlobDigests(target));
        var tagged = await target.ResolveAsync("mirror/agent:1.0.0");
        Assert.Equal(image.Digest, tagged.Digest.ToString());
        Assert.Equal(MediaTypes.OciIndex, tagged.MediaType);
        Assert.Equal(image.BlobDigests.Count, result.BlobsCopied);
        Assert.Equal(4, result.Manifests);
        Assert.Equal(0, result.BlobsSkipped);
    }

    [Fact]
    public async Task GraphCopier_CopyAsync_PlatformFilter_WritesFilteredIndexWithOnlyThatChild()
    {
        // Given a 3-platform OCI index
        var image = samples.Oci[Agent];
        var amd64 = image.Manifests.Single(m => m.Platform == ImagePlatform.LinuxAmd64);
        var target = NewTarget();
        var options = new CopyOptions { Platforms = [Platform.Parse("linux/amd64")] };

        // When only linux/amd64 is copied
        var result = await new GraphCopier(options).CopyAsync(Source(samples.Oci), Agent, target, "agent:amd64");

        // Then a new index holds only the amd64 child, other fields kept
        Assert.NotEqual(image.Digest, result.Root.Digest.ToString());
        Assert.Equal(image.Digest, result.SourceRoot.Digest.ToString());
        Assert.Equal(["linux/amd64"], result.PlatformsKept.Select(p => p.ToString()));
        var written = await File.ReadAllBytesAsync(target.BlobPath(result.Root.Digest));
        Assert.Equal(TestContent.Sha256(written), result.Root.Digest.ToString());
        Assert.Equal(written.Length, result.Root.Size);
        var filtered = JsonNode.Parse(written)!.AsObject();
        var child = Assert.Single(filtered["manifests"]!.AsArray());
        Assert.Equal(amd64.Digest, child!["digest"]!.GetValue<string>());
        var original = JsonNode.Parse(samples.Oci.ReadBlob(image.Digest))!.AsObject();
        var originalChild = original["manifests"]!.AsArray().Single(m => m!["digest"]!.GetValue<string>() == amd64.Digest);
        Assert.True(JsonNode.DeepEquals(originalChild, child));
        filtered.Remove("manifests");
        original.Remove("manifests");
        Assert.True(JsonNode.DeepEquals(original, filtered));

        // And only the amd64 image's blobs were copied
        var expected = new[] { result.Root.Digest.ToString(), amd64.Digest, amd64.ConfigDigest }.Concat(amd64.Layers.Select(l => l.Digest));
        Assert.Equal(expected.ToHashSet(StringComparer.Ordinal), BlobDigests(target));
        Assert.Equal(result.Root.Digest, (await target.ResolveAsync("agent:amd64")).Digest);
    }

    [Fact]
    public async Task GraphCopier_CopyAsync_FilteredIndex_PreservesOtherFieldsAndWritesMediaTypesLiterally()
    {
        // Given a hand-made index with annotations, artifactType and a child-level annotation
        var layout = new HandLayout(_dir.Sub("src"));
        var amd = layout.AddImage(MediaTypes.OciManifest, MediaTypes.OciConfig, MediaTypes.OciLayerGzip, TestContent.Utf8("{\"architecture\":\"amd64\"}"), TestContent.Random(64, 1));
        var arm = layout.AddImage(MediaTypes.OciManifest, MediaTypes.OciConfig, MediaTypes.OciLayerGzip, TestContent.Utf8("{\"architecture\":\"arm64\"}"), TestContent.Random(64, 2));
        var index = TestContent.Utf8(
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"artifactType\":\"application/vnd.example+type\"," +
            $"\"manifests\":[{TestContent.DescriptorJson(MediaTypes.OciManifest, amd, "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},\"annotations\":{\"k\":\"<v&>\"}")}," +
            $"{TestContent.DescriptorJson(MediaTypes.OciManifest, arm, "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}")}]," +
            "\"annotations\":{\"org.opencontainers.image.source\":\"https://example.com/x?a=1&b=2\",\"z\":\"é\"}}");
        layout.AddBlob(index);
        layout.Name("multi", MediaTypes.OciIndex, index);
        var target = NewTarget();

        // When only linux/arm64 is copied
        var result = await new GraphCopier(new CopyOptions { Platforms = [Platform.Parse("linux/arm64")] })
            .CopyAsync(OciLayoutStore.Open(layout.Root, create: false), "multi", target, "multi");

        // Then every field but the manifests array is kept, and media types keep their literal '+'
        var written = await File.ReadAllBytesAsync(target.BlobPath(result.Root.Digest));
        var text = System.Text.Encoding.UTF8.GetString(written);
        Assert.Contains("\"application/vnd.oci.image.manifest.v1+json\"", text, StringComparison.Ordinal);
        Assert.Contains("\"application/vnd.oci.image.index.v1+json\"", text, StringComparison.Ordinal);
        var node = JsonNode.Parse(written)!.AsObject();
        Assert.Equal("application/vnd.example+type", node["artifactType"]!.GetValue<string>());
        Assert.Equal("https://example.com/x?a=1&b=2", node["annotations"]!["org.opencontainers.image.source"]!.GetValue<string>());
        Assert.Equal("é", node["annotations"]!["z"]!.GetValue<string>());
        Assert.Equal(TestContent.Sha256(arm), Assert.Single(node["manifests"]!.AsArray())!["digest"]!.GetValue<string>());
        Assert.False(File.Exists(target.BlobPath(Digest.Parse(TestContent.Sha256(amd)))));
    }

    [Fact]
    public async Task GraphCopier_CopyAsync_FilterWithoutVariant_KeepsEveryVariant()
    {
        // Given an index with linux/arm/v7
        var target = NewTarget();

        // When linux/arm is asked for
        var result = await new GraphCopier(new CopyOptions { Platforms = [Platform.Parse("linux/arm")] })
            .CopyAsync(Source(samples.Oci), Agent, target, "agent:arm");

        // Then the v7 child is kept
        Assert.Equal(["linux/arm/v7"], result.PlatformsKept.Select(p => p.ToString()));
    }

    [Fact]
    public async Task GraphCopier_CopyAsync_FilterMatchingEveryChild_KeepsOriginalBytes()
    {
        // Given an index and a filter naming all its platforms
        var image = samples.Oci[Agent];
        var target = NewTarget();
        var options = new CopyOptions { Platforms = Platform.ParseList("linux/amd64,linux/arm64,linux/arm") };

        // When it is copied
        var result = await new GraphCopier(options).CopyAsync(Source(samples.Oci), Agent, target, "a");

        // Then the index is not rewritten
        Assert.Equal(image.Digest, result.Root.Digest.ToString());
    }

    [Fact]
    public async Task GraphCopier_CopyAsync_FilterMatchingNothing_NamesAvailablePlatforms()
    {
        // Given an index without windows children
        var target = NewTarget();

        // When windows/amd64 is asked for
        var ex = await Assert.ThrowsAsync<NotFoundException>(() => new GraphCopier(new CopyOptions { Platforms = [Platform.Parse("windows/amd64")] })
            .CopyAsync(Source(samples.Oci), Agent, target, "a"));

        // Then the message lists what there is, and nothing was written
        Assert.Contains("no manifest for platform windows/amd64", ex.Message, StringComparison.Ordinal);
        Assert.Contains("linux/amd64, linux/arm64, linux/arm/v7", ex.Message, StringComparison.Ordinal);
        Assert.Empty(BlobDigests(target));
    }

    [Fact]
    public async Task GraphCopier_CopyAsync_SharedLayers_AreCopiedOnce()
    {
        // Given two images built on the same base layers, copied by one copier into one target
        var spy = new SpyTarget(NewTarget());
        var copier = new GraphCopier(new CopyOptions { Concurrency = 4 });
        var server = samples.Oci[Server].Manifests.Single();
        var worker = samples.Oci[Worker].Manifests.Single();
        var shared = server.Layers.Select(l => l.Digest).Intersect(worker.Layers.Select(l => l.Digest)).ToList();
        Assert.NotEmpty(shared);

        // When both are copied concurrently
        await Task.WhenAll(
            copier.CopyAsync(Source(samples.Oci), Server, spy, "server"),
            copier.CopyAsync(Source(samples.Oci), Worker, spy, "worker"));

        // Then no digest was pushed twice, the shared ones once
        Assert.All(spy.PushCounts, kv => Assert.Equal(1, kv.Value));
        Assert.All(shared, d => Assert.Equal(1, spy.PushCounts[d]));
    }

    [Fact]
    public async Task GraphCopier_CopyAsync_ChildrenBeforeParents_TagLast()
    {
        // Given a multi-arch index and a target that records the order of writes
        var image = samples.Oci[Agent];
        var spy = new SpyTarget(NewTarget());

        // When it is copied
        await new GraphCopier(new CopyOptions { Concurrency = 3 }).CopyAsync(Source(samples.Oci), Agent, spy, "agent");

        // Then each manifest was pushed after all its blobs, the index after its children, and the tag came last
        var order = spy.Events.ToList();
        int At(string digest) => order.IndexOf("push " + digest);
        foreach (var manifest in image.Manifests)
        {
            Assert.All(manifest.Layers.Select(l => l.Digest).Append(manifest.ConfigDigest), d => Assert.True(At(d) < At(manifest.Digest), $"{d} after {manifest.Digest}"));
            Assert.True(At(manifest.Digest) < At(image.Digest));
        }

        Assert.Equal("tag agent", order[^1]);
        Assert.Equal(image.AllDigests.Count(), order.Count(e => e.StartsWith("push ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task GraphCopier_CopyAsync_TargetHasManifest_SkipsItsGraph()
    {
        // Given a target that already holds the image
        var target = NewTarget();
        await new GraphCopier(new CopyOptions()).CopyAsync(Source(samples.Oci), Agent, target, "first");
        var spy = new SpyTarget(target);
        var observer = new RecordingObserver();

        // When it is copied again by a new copier
        var result = await new GraphCopier(new CopyOptions { Observer = observer }).CopyAsync(Source(samples.Oci), Agent, spy, "second");

        // Then nothing is pushed, no child is even checked, and only the tag is written
        Assert.Empty(spy.PushCounts);
        Assert.Equal(["exists " + samples.Oci[Agent].Digest, "tag second"], spy.Events);
        Assert.Equal(0, result.BlobsCopied);
        Assert.Equal(0, result.BytesCopied);
        Assert.Equal([BlobOutcome.Skipped], observer.Manifests.Values);
    }

    [Fact]
    public async Task GraphCopier_CopyAsync_TargetHasBlobsButNotManifest_SkipsBlobs()
    {
        // Given a target holding the worker image (sharing base layers with the server image)
        var target = NewTarget();
        await new GraphCopier(new CopyOptions()).CopyAsync(Source(samples.Oci), Worker, target, "worker");

        // When the server image is copied by a new copier
        var result = await new GraphCopier(new CopyOptions()).CopyAsync(Source(samples.Oci), Server, target, "server");

        // Then the shared layers count as skipped and the rest as copied
        var server = samples.Oci[Server].Manifests.Single();
        var worker = samples.Oci[Worker].Manifests.Single();
        var shared = server.Layers.Select(l => l.Digest).Intersect(worker.Layers.Select(l => l.Digest)).Count();
        Assert.Equal(shared, result.BlobsSkipped);
        Assert.Equal(server.Layers.Count + 1 - shared, result.BlobsCopied);
    }

    [Fact]
    public async Task GraphCopier_CopyAsync_TamperedSourceBlob_IntegrityExceptionAndNothingOfItInTarget()
    {
        // Given a copy of the sample layout with one layer of the agent image overwritten
        var sourceDir = _dir.Sub("tampered-src");
        CopyDirectory(samples.Oci.Directory, sourceDir);
        var victim = samples.Oci[Agent].Manifests.Single(m => m.Platform == ImagePlatform.LinuxArm64).Layers[^1];
        var blobPath = Path.Combine(sourceDir, "blobs", "sha256", victim.Digest["sha256:".Length..]);
        var bytes = await File.ReadAllBytesAsync(blobPath);
        bytes[bytes.Length / 2] ^= 0x5a;
        await File.WriteAllBytesAsync(blobPath, bytes);
        var target = NewTarget();

        // When the image is copied
        var ex = await Assert.ThrowsAsync<IntegrityException>(() => new GraphCopier(new CopyOptions())
            .CopyAsync(OciLayoutStore.Open(sourceDir, create: false), Agent, target, "agent"));

        // Then the failure names the blob, the target has no blob with that digest, no parent manifest and no ref name
        Assert.Contains(victim.Digest, ex.Message, StringComparison.Ordinal);
        var stored = BlobDigests(target);
        Assert.DoesNotContain(victim.Digest, stored);
        Assert.DoesNotContain(samples.Oci[Agent].Digest, stored);
        Assert.DoesNotContain(samples.Oci[Agent].Manifests.Single(m => m.Platform == ImagePlatform.LinuxArm64).Digest, stored);
        Assert.Empty(await target.ReadIndexAsync());
        Assert.Empty(Directory.GetFiles(Path.Combine(target.Root, OciLayoutStore.TempDirectoryName)));
    }

    [Fact]
    public async Task GraphCopier_CopyAsync_WholeMixedPlatform_EveryImageArrivesUnchanged()
    {
        // Given the mixed sample platform: Docker and OCI images, a Docker list, an OCI index, an artifact and a chart
        var target = NewTarget();
        var copier = new GraphCopier(new CopyOptions { Concurrency = 8 });
        var source = Source(samples.Mixed);

        // When every image is copied under its own name
        var results = await Task.WhenAll(samples.Mixed.Images.Select(i => copier.CopyAsync(source, i.Reference, target, i.Reference)));

        // Then each arrives with its digest and media type, and the target holds exactly the source's blobs
        foreach (var (image, result) in samples.Mixed.Images.Zip(results))
        {
            Assert.Equal(image.Digest, result.Root.Digest.ToString());
            var resolved = await target.ResolveAsync(image.Reference);
            Assert.Equal(image.Digest, resolved.Digest.ToString());
            Assert.Equal(image.MediaType, resolved.MediaType);
            Assert.Equal(image.ArtifactType, resolved.ArtifactType);
        }

        Assert.Equal(samples.Mixed.UniqueBlobCount, BlobDigests(target).Count);
        Assert.Equal(samples.Mixed.UniqueBytes, results.Sum(r => r.BytesCopied) + samples.Mixed.Images.Sum(i => i.ManifestSize + i.ChildManifestDigests.Sum(samples.Mixed.GetBlobSize)));
    }

    [Fact]
    public async Task GraphCopier_CopyAsync_ByDigestWithoutTag_WritesNoRefName()
    {
        // Given an image addressed by digest
        var image = samples.Oci[Server];
        var target = NewTarget();

        // When it is copied without a target tag
        var result = await new GraphCopier(new CopyOptions()).CopyAsync(Source(samples.Oci), image.Digest, target, null);

        // Then the content is there but index.json names nothing
        Assert.Equal(image.Digest, result.Root.Digest.ToString());
        Assert.True(File.Exists(target.BlobPath(result.Root.Digest)));
        Assert.Empty(await target.ReadIndexAsync());
    }

    [Fact]
    public async Task GraphCopier_CopyAsync_ChildMediaTypeDisagreesWithIndex_IsIntegrityFailure()
    {
        // Given an index that calls a Docker manifest an OCI manifest
        var layout = new HandLayout(_dir.Sub("src"));
        var docker = layout.AddImage(MediaTypes.DockerManifest, MediaTypes.DockerConfig, MediaTypes.DockerLayer, TestContent.Utf8("{}"), TestContent.Random(10, 1));
        var index = TestContent.Utf8($"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciIndex}\",\"manifests\":[{TestContent.DescriptorJson(MediaTypes.OciManifest, docker)}]}}");
        layout.AddBlob(index);
        layout.Name("x", MediaTypes.OciIndex, index);

        // When it is copied
        var ex = await Assert.ThrowsAsync<IntegrityException>(() => new GraphCopier(new CopyOptions())
            .CopyAsync(OciLayoutStore.Open(layout.Root, create: false), "x", NewTarget(), "x"));

        // Then the disagreement is reported
        Assert.Contains("the index says application/vnd.oci.image.manifest.v1+json but the manifest is application/vnd.docker.distribution.manifest.v2+json", ex.Message, StringComparison.Ordinal);
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        }

        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
        }
    }

    /// <summary>Wraps a target and records what the copier asks of it.</summary>
    private sealed class SpyTarget(ITarget inner) : ITarget
    {
        private readonly ConcurrentQueue<string> _events = new();

        public ConcurrentDictionary<string, int> PushCounts { get; } = new(StringComparer.Ordinal);

        public IReadOnlyList<string> Events => _events.ToList();

        public string DisplayName => inner.DisplayName;

        public Task<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken = default) => inner.ResolveAsync(reference, cancellationToken);

        public Task<Stream> FetchAsync(Descriptor descriptor, CancellationToken cancellationToken = default) => inner.FetchAsync(descriptor, cancellationToken);

        public async Task<bool> ExistsAsync(Descriptor descriptor, CancellationToken cancellationToken = default)
        {
            var exists = await inner.ExistsAsync(descriptor, cancellationToken);
            if (exists)
            {
                _events.Enqueue("exists " + descriptor.Digest);
            }

            return exists;
        }

        public async Task PushAsync(Descriptor expected, Stream content, CancellationToken cancellationToken = default)
        {
            await inner.PushAsync(expected, content, cancellationToken);
            PushCounts.AddOrUpdate(expected.Digest.ToString(), 1, (_, n) => n + 1);
            _events.Enqueue("push " + expected.Digest);
        }

        public async Task TagAsync(Descriptor descriptor, string reference, CancellationToken cancellationToken = default)
        {
            await inner.TagAsync(descriptor, reference, cancellationToken);
            _events.Enqueue("tag " + reference);
        }
    }

    private sealed class RecordingObserver : ICopyObserver
    {
        public ConcurrentDictionary<string, BlobOutcome> Manifests { get; } = new(StringComparer.Ordinal);

        public void ImageStarted(string image)
        {
        }

        public void BlobStarted(string image, Descriptor blob)
        {
        }

        public void BytesTransferred(string image, long bytes)
        {
        }

        public void BlobFinished(string image, Descriptor blob, BlobOutcome outcome)
        {
        }

        public void ManifestFinished(string image, Descriptor manifest, BlobOutcome outcome) => Manifests[manifest.Digest.ToString()] = outcome;

        public void ImageFinished(string image, CopyResult result)
        {
        }
    }
}
