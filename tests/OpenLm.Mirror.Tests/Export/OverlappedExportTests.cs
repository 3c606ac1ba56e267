using System.Net;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Tests.Bundle;
using OpenLm.Mirror.Tests.Support;
using Xunit;

namespace OpenLm.Mirror.Tests.Export;

/// <summary>
/// The export writing its bundle while it pulls: the registry holds back every layer until the writer has started, so
/// each test below runs with the writer waiting on blobs the pull has not stored yet.
/// </summary>
public sealed class OverlappedExportTests(SamplePlatformFixture fixture) : IClassFixture<SamplePlatformFixture>, IAsyncLifetime
{
    private static readonly DateTimeOffset Epoch = new(2026, 11, 3, 9, 0, 0, TimeSpan.Zero);
    private ExportHarness _harness = null!;

    public async Task InitializeAsync() => _harness = await ExportHarness.StartAsync(fixture.Platform);

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    [Fact]
    public async Task BundleExporter_ExportAsync_BlobsServedOnlyOnceTheWriterStarted_SameBytesAsFromAWarmCacheAndAsTheLayoutWriter()
    {
        // Given a registry that serves no layer before the bundle writer has written its head
        var writer = HoldBlobsUntilTheWriterStarts();
        var cache = _harness.Directory.Sub("cache");
        var overlapped = _harness.Directory.Sub("overlapped.tar");

        // When the release is exported into an empty cache
        await _harness.ExportAsync(Reproducible(overlapped, cache), writer, Unblocked);

        // Then it is the bundle an export from the now warm cache writes (which never waits for a blob)
        var warm = _harness.Directory.Sub("warm.tar");
        _harness.Registry.Server.ClearRequests();
        await _harness.ExportAsync(Reproducible(warm, cache));
        Assert.DoesNotContain(_harness.Registry.Requests, r => r.Method == "GET" && r.IsBlobPath());
        var bytes = await File.ReadAllBytesAsync(overlapped);
        BundleExporterTests.AssertIdenticalExceptSignature(bytes, await File.ReadAllBytesAsync(warm));

        // And the one the layout writer writes from the finished cache, given the same description
        using var key = _harness.Key.GetVerificationKey();
        var read = await BundleReader.ReadAsync(overlapped, new BundleReadOptions { Key = key });
        Assert.True(read.Complete);
        var fromLayout = _harness.Directory.Sub("layout.tar");
        await BundleWriter.WriteAsync(OciLayoutStore.Open(cache, create: false), read.Head.Manifest, _harness.Key, fromLayout, new BundleWriteOptions { SourceDateEpoch = Epoch });
        BundleExporterTests.AssertIdenticalExceptSignature(bytes, await File.ReadAllBytesAsync(fromLayout));
    }

    [Fact]
    public async Task BundleExporter_ExportAsync_BlobMissingAtTheSourceWhileTheWriterRuns_FailsNamingTheImageLeavesNoBundleAndResumes()
    {
        // Given a registry that serves no layer before the writer started, and lost a layer only one image has
        var writer = HoldBlobsUntilTheWriterStarts();
        var owners = fixture.Platform.Images.SelectMany(i => i.BlobDigests.Select(d => (Digest: d, Image: i))).ToLookup(x => x.Digest, x => x.Image);
        var (image, layer) = fixture.Platform.Images
            .SelectMany(i => i.Manifests.SelectMany(m => m.Layers).Select(l => (Image: i, Layer: l)))
            .Where(x => owners[x.Layer.Digest].Count() == 1)
            .MaxBy(x => x.Layer.Size);
        var repository = _harness.Registry.Repo(image.Repository);
        Assert.True(repository.Blobs.TryRemove(layer.Digest, out var lost));
        var output = _harness.Directory.Sub("bundle.tar");
        var cache = _harness.Directory.Sub("cache");

        // When the release is exported
        var error = await Assert.ThrowsAnyAsync<MirrorException>(() => _harness.ExportAsync(Reproducible(output, cache), writer, Unblocked));

        // Then the writer had started, the failure names the image, and neither a bundle nor a partial file is left
        Assert.True(writer.Started);
        Assert.Contains(_harness.SourceRef(image), error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_harness.Directory.Path));

        // And the cache holds the other images whole, but no manifest of the failed one (its children are incomplete)
        var layout = OciLayoutStore.Open(cache, create: false);
        Assert.False(File.Exists(layout.BlobPath(Digest.Parse(image.Digest))));
        Assert.All(fixture.Platform.Images.Where(i => i != image && !owners.Contains(i.Digest)), i => Assert.True(File.Exists(layout.BlobPath(Digest.Parse(i.Digest))), i.Reference));

        // And once the source has the layer again, the export resumes from the cache: only that image's missing blobs move
        repository.Blobs[layer.Digest] = lost!;
        _harness.Registry.Server.ClearRequests();
        var result = await _harness.ExportAsync(Reproducible(output, cache));
        using var key = _harness.Key.GetVerificationKey();
        Assert.True((await BundleReader.ReadAsync(output, new BundleReadOptions { Key = key })).Complete);
        var fetched = _harness.Registry.Requests.Where(r => r.Method == "GET" && r.IsBlobPath()).Select(r => r.Path[(r.Path.LastIndexOf('/') + 1)..]).ToList();
        Assert.Contains(layer.Digest, fetched);
        Assert.All(fetched, d => Assert.Contains(d, image.BlobDigests));
        Assert.True(result.BlobsReused > 0);
    }

    [Fact]
    public async Task BundleExporter_ExportAsync_SplitWhileItPulls_PartsVerifyAndEqualAWarmCacheSplit()
    {
        // Given a registry that serves no layer before the writer started
        var writer = HoldBlobsUntilTheWriterStarts();
        var cache = _harness.Directory.Sub("cache");
        var partSize = Math.Max(_harness.Lock.TotalBytes / 3, 64 * 1024);
        var cold = _harness.Directory.Sub("cold.tar");
        var warm = _harness.Directory.Sub("warm.tar");

        // When the release is exported in parts into an empty cache, and again from the warm cache
        var first = await _harness.ExportAsync(Reproducible(cold, cache, partSize), writer, Unblocked);
        var second = await _harness.ExportAsync(Reproducible(warm, cache, partSize));

        // Then the set verifies, and has the warm export's table and parts (only part 1 holds the differing signature)
        using var key = _harness.Key.GetVerificationKey();
        Assert.True(first.Bundle.PartPaths.Count >= 2, $"{first.Bundle.PartPaths.Count} parts");
        Assert.True((await BundleReader.ReadAsync(first.Bundle.PartPaths[0], new BundleReadOptions { Key = key })).Complete);
        Assert.Equal(first.Bundle.Manifest.Parts!.Files, second.Bundle.Manifest.Parts!.Files);
        for (var i = 1; i < first.Bundle.PartPaths.Count; i++)
        {
            Assert.Equal(await File.ReadAllBytesAsync(first.Bundle.PartPaths[i]), await File.ReadAllBytesAsync(second.Bundle.PartPaths[i]));
        }
    }

    [Fact]
    public async Task BundleExporter_ExportAsync_DeltaWhileItPulls_VerifiesLeavesOutTheBaseBlobsAndEqualsAWarmCacheDelta()
    {
        // Given a full bundle of the release as the base, and a registry that serves no layer before the writer started
        var full = _harness.Directory.Sub("full.tar");
        await _harness.ExportAsync(Reproducible(full, _harness.Directory.Sub("cache-full")));
        var writer = HoldBlobsUntilTheWriterStarts();
        var cache = _harness.Directory.Sub("cache");
        var cold = _harness.Directory.Sub("cold-delta.tar");
        var warm = _harness.Directory.Sub("warm-delta.tar");

        // When a delta over it is exported into an empty cache, and again from the warm cache
        var first = await _harness.ExportAsync(Reproducible(cold, cache) with { Bases = [full] }, writer, Unblocked);
        await _harness.ExportAsync(Reproducible(warm, cache) with { Bases = [full] });

        // Then it verifies, leaves out every config and layer (the base has them all) and is the warm export's delta
        using var key = _harness.Key.GetVerificationKey();
        var read = await BundleReader.ReadAsync(cold, new BundleReadOptions { Key = key });
        Assert.Equal(SignatureStatus.Verified, read.Head.Signature);
        var omitted = first.Bundle.Manifest.Base!.Omitted.Select(o => o.Digest).ToHashSet(StringComparer.Ordinal);
        var manifests = fixture.Platform.Images.SelectMany(i => i.IsIndex ? [i.Digest, .. i.Manifests.Select(m => m.Digest)] : new[] { i.Digest }).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(_harness.Lock.Blobs.Select(b => b.Digest).Where(d => !manifests.Contains(d)).Order(StringComparer.Ordinal), omitted.Order(StringComparer.Ordinal));
        BundleExporterTests.AssertIdenticalExceptSignature(await File.ReadAllBytesAsync(cold), await File.ReadAllBytesAsync(warm));

        // And the pull still filled the cache (the omitted blobs too), so the next export needs no download
        var layout = OciLayoutStore.Open(cache, create: false);
        Assert.All(_harness.Lock.Blobs, b => Assert.True(File.Exists(layout.BlobPath(Digest.Parse(b.Digest))), b.Digest));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task BundleExporter_ExportAsync_DeltaOrSplit_TheWritePhaseTotalIsTheBytesWrittenNotTheLocks(bool split)
    {
        // Given a full bundle of the release as the base (so the delta leaves out every config and layer)
        var full = _harness.Directory.Sub("full.tar");
        await _harness.ExportAsync(Reproducible(full, _harness.Directory.Sub("cache-full")));
        var output = _harness.Directory.Sub("delta.tar");
        var observer = new PhaseRecorder();

        // When a delta over it is exported, in parts or as one file, with a display listening
        var result = await _harness.ExportAsync(Reproducible(output, _harness.Directory.Sub("cache"), split ? 64 * 1024 : null) with { Bases = [full] }, observer: observer);

        // Then the write phase announced exactly the bytes the writer wrote, and its count ended there: far below the lock's total
        var written = result.Bundle.PartPaths.Count > 0 ? result.Bundle.PartPaths.Sum(p => new FileInfo(p).Length) : new FileInfo(output).Length;
        Assert.Equal(split, result.Bundle.PartPaths.Count > 0);
        var total = Assert.Single(observer.Phases, p => p.Phase == RunPhase.Write).Bytes;
        Assert.Equal(written, total);
        Assert.Equal(written, observer.LastBytes);
        Assert.True(total < _harness.Lock.TotalBytes / 2, $"{total} of {_harness.Lock.TotalBytes}");
    }

    [Fact]
    public async Task BundleExporter_ExportAsync_ManifestsInTheCachesStore_AreNotAskedForAgain()
    {
        // Given the manifests one export kept (resolve keeps them the same way), beside an otherwise empty cache
        var first = _harness.Directory.Sub("first-cache");
        await _harness.ExportAsync(Reproducible(_harness.Directory.Sub("first.tar"), first));
        var cache = _harness.Directory.Sub("cache");
        CopyDirectory(Path.Combine(first, ManifestStore.DirectoryName), Path.Combine(cache, ManifestStore.DirectoryName));
        _harness.Registry.Server.ClearRequests();

        // When the release is exported into it
        var output = _harness.Directory.Sub("second.tar");
        await _harness.ExportAsync(Reproducible(output, cache));

        // Then no manifest was fetched, every blob was, and the bundle is the same
        Assert.DoesNotContain(_harness.Registry.Requests, r => r.Path.Contains("/manifests/", StringComparison.Ordinal));
        Assert.Contains(_harness.Registry.Requests, r => r.Method == "GET" && r.IsBlobPath());
        BundleExporterTests.AssertIdenticalExceptSignature(await File.ReadAllBytesAsync(_harness.Directory.Sub("first.tar")), await File.ReadAllBytesAsync(output));
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    /// <summary>
    /// Blob slots for every blob at once: the held layers must not take the slots the configs need (the head is made
    /// from them), which only a registry that holds layers back on purpose would make the writer wait for.
    /// </summary>
    private const int Unblocked = 256;

    private Mirror.Export.ExportRequest Reproducible(string output, string cache, long? splitSize = null) =>
        _harness.Request(output, cache) with { WriteOptions = new BundleWriteOptions { SourceDateEpoch = Epoch, SplitSize = splitSize } };

    /// <summary>
    /// Makes the registry hold every layer GET until the bundle writer reports its first bytes (fails them after 20 s).
    /// Configs are served at once: the head describes each image's platforms, read from its config.
    /// </summary>
    private WriterSignal HoldBlobsUntilTheWriterStarts()
    {
        var writer = new WriterSignal();
        var layers = fixture.Platform.Images.SelectMany(i => i.Manifests.SelectMany(m => m.Layers)).Select(l => "/blobs/" + l.Digest).ToHashSet(StringComparer.Ordinal);
        _harness.Registry.Intercept = async context =>
        {
            var path = context.Request.Url!.AbsolutePath;
            var at = path.LastIndexOf("/blobs/", StringComparison.Ordinal);
            if (context.Request.HttpMethod == "GET" && at >= 0 && layers.Contains(path[at..]))
            {
                try
                {
                    await writer.Task.WaitAsync(TimeSpan.FromSeconds(20));
                }
                catch (TimeoutException)
                {
                    context.Response.StatusCode = (int)HttpStatusCode.Forbidden;
                    context.Response.Close();
                    return true;
                }
            }

            return false;
        };
        return writer;
    }

    /// <summary>Records the phases a display is told about, and the last byte count of the bundle write.</summary>
    private sealed class PhaseRecorder : Mirror.Copy.IRunObserver
    {
        private long _lastBytes;

        public System.Collections.Concurrent.ConcurrentQueue<(RunPhase Phase, long Bytes)> Phases { get; } = new();

        public long LastBytes => Interlocked.Read(ref _lastBytes);

        public void PhaseStarted(RunPhase phase, int images, long bytes) => Phases.Enqueue((phase, bytes));

        public void PhaseBytes(long bytesDone) => Interlocked.Exchange(ref _lastBytes, bytesDone);

        public void ImageStarted(string image)
        {
        }

        public void BlobStarted(string image, Descriptor blob)
        {
        }

        public void BytesTransferred(string image, long bytes)
        {
        }

        public void BlobFinished(string image, Descriptor blob, Mirror.Copy.BlobOutcome outcome)
        {
        }

        public void ManifestFinished(string image, Descriptor manifest, Mirror.Copy.BlobOutcome outcome)
        {
        }

        public void ImageFinished(string image, Mirror.Copy.CopyResult result)
        {
        }
    }

    /// <summary>Completes when the writer reports its first bytes (the head is written before any config or layer).</summary>
    private sealed class WriterSignal : IProgress<long>
    {
        private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Task => _started.Task;

        public bool Started => _started.Task.IsCompleted;

        public void Report(long value)
        {
            if (value > 0)
            {
                _started.TrySetResult();
            }
        }
    }
}
