using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Tests.Bundle;
using OpenLm.Mirror.Tests.Support;
using Xunit;

namespace OpenLm.Mirror.Tests.Export;

/// <summary>The exporter pulling a locked release from a registry into a signed bundle.</summary>
public sealed class BundleExporterTests(SamplePlatformFixture fixture) : IClassFixture<SamplePlatformFixture>, IAsyncLifetime
{
    private ExportHarness _harness = null!;

    public async Task InitializeAsync() => _harness = await ExportHarness.StartAsync(fixture.Platform);

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    [Fact]
    public async Task BundleExporter_ExportAsync_LockedRelease_BundleVerifiesAndHoldsEveryBlobOnce()
    {
        // Given a lock of the sample release resolved against the registry
        var output = _harness.Directory.Sub("bundle.tar");

        // When it is exported
        var result = await _harness.ExportAsync(_harness.Request(output));

        // Then the bundle verifies with the release key, completely
        using var key = _harness.Key.GetVerificationKey();
        var read = await BundleReader.ReadAsync(output, new BundleReadOptions { Key = key });
        Assert.True(read.Complete);
        Assert.Equal(SignatureStatus.Verified, read.Head.Signature);
        Assert.Equal(result.Bundle.BundleDigest, read.Head.BundleDigest);

        // And names every locked image at its locked digest
        Assert.Equal(
            _harness.Lock.Images.Select(i => (i.Reference, i.Digest)).Order(),
            read.Head.Images.Select(d => (d.RefName!, d.Digest.ToString())).Order());
        Assert.All(fixture.Platform.Images, i => Assert.Contains(read.Head.Images, d => d.RefName == _harness.SourceRef(i) && d.Digest.ToString() == i.Digest));

        // And holds every blob the lock lists exactly once, and nothing else
        var blobEntries = BundleTar.ReadEntries(await File.ReadAllBytesAsync(output))
            .Where(e => e.Name.StartsWith(BundleFormat.BlobPrefix, StringComparison.Ordinal))
            .Select(e => "sha256:" + e.Name[BundleFormat.BlobPrefix.Length..])
            .ToList();
        Assert.Equal(blobEntries.Count, blobEntries.Distinct().Count());
        Assert.Equal(_harness.Lock.Blobs.Select(b => b.Digest).Order(StringComparer.Ordinal), blobEntries.Order(StringComparer.Ordinal));
        Assert.Equal(_harness.Lock.Blobs.Count, read.BlobCount);
        Assert.Equal(_harness.Lock.TotalBytes, read.BlobBytes);

        // And every blob was downloaded, none reused, and no temporary file is left
        Assert.Equal(0, result.BlobsReused);
        Assert.Equal(fixture.Platform.Images.SelectMany(i => i.BlobDigests).Distinct().Count(), result.BlobsDownloaded);
        Assert.Equal([output], Directory.GetFiles(_harness.Directory.Path));
    }

    [Fact]
    public async Task BundleExporter_ExportAsync_SameLockTwiceWithOneCache_IdenticalBytesExceptSignature()
    {
        // Given one export of the release
        var first = _harness.Directory.Sub("first.tar");
        var second = _harness.Directory.Sub("second.tar");
        await _harness.ExportAsync(_harness.Request(first));

        // When it is exported again with the same cache (as a resumed or repeated export is)
        await _harness.ExportAsync(_harness.Request(second));

        // Then the two bundles are byte-identical but for the signature entry
        AssertIdenticalExceptSignature(await File.ReadAllBytesAsync(first), await File.ReadAllBytesAsync(second));
    }

    [Fact]
    public async Task BundleExporter_ExportAsync_FreshCachesWithSourceDateEpoch_IdenticalBytesExceptSignature()
    {
        // Given a reproducible-build timestamp
        var epoch = new DateTimeOffset(2026, 8, 10, 12, 50, 0, TimeSpan.Zero);
        var first = _harness.Directory.Sub("first.tar");
        var second = _harness.Directory.Sub("second.tar");

        // When the release is exported twice, each time with an empty cache
        await _harness.ExportAsync(_harness.Request(first, _harness.Directory.Sub("cache-1")) with { WriteOptions = new BundleWriteOptions { SourceDateEpoch = epoch } });
        await _harness.ExportAsync(_harness.Request(second, _harness.Directory.Sub("cache-2")) with { WriteOptions = new BundleWriteOptions { SourceDateEpoch = epoch } });

        // Then the bundles are byte-identical but for the signature entry, and record that time
        var a = await File.ReadAllBytesAsync(first);
        AssertIdenticalExceptSignature(a, await File.ReadAllBytesAsync(second));
        var manifest = BundleTar.ReadEntries(a).Single(e => e.Name == BundleFormat.ManifestEntry);
        Assert.Equal(epoch, BundleFormat.ParseManifest(manifest.Data, "first.tar").Created);
    }

    [Fact]
    public async Task BundleExporter_ExportAsync_TagMovedAtSourceAfterResolve_ExportsThePinnedDigest()
    {
        // Given a lock, and then one image's tag moved at the source to another image's manifest
        var image = fixture.Platform.Images.First(i => !i.IsIndex);
        var other = fixture.Platform.Images.First(i => i != image && !i.IsIndex);
        var repository = _harness.Registry.Repo(image.Repository);
        foreach (var blob in other.BlobDigests)
        {
            repository.AddBlob(fixture.Platform.ReadBlob(blob));
        }

        repository.AddManifest(image.Tag, fixture.Platform.ReadBlob(other.Digest), other.MediaType);
        var output = _harness.Directory.Sub("bundle.tar");

        // When the release is exported
        await _harness.ExportAsync(_harness.Request(output));

        // Then the bundle holds what the lock pinned, not what the tag names now
        using var key = _harness.Key.GetVerificationKey();
        var read = await BundleReader.ReadAsync(output, new BundleReadOptions { Key = key });
        Assert.Equal(image.Digest, read.Head.Images.Single(d => d.RefName == _harness.SourceRef(image)).Digest.ToString());
        Assert.DoesNotContain(_harness.Registry.Requests, r => r.Path == $"/v2/{image.Repository}/manifests/{image.Tag}");
    }

    [Fact]
    public async Task BundleExporter_ExportAsync_CacheWithPartialDownloads_DiscardsThemAndExports()
    {
        // Given a cache holding the half-written download of a killed run
        var cache = _harness.Directory.Sub("cache");
        OciLayoutStore.Open(cache, create: true);
        var temp = Path.Combine(cache, OciLayoutStore.TempDirectoryName);
        Directory.CreateDirectory(temp);
        var partial = Path.Combine(temp, "sha256-killed.partial");
        await File.WriteAllBytesAsync(partial, [1, 2, 3]);

        // When the release is exported with it
        var output = _harness.Directory.Sub("bundle.tar");
        await _harness.ExportAsync(_harness.Request(output, cache));

        // Then the partial file is gone and the bundle verifies
        Assert.False(File.Exists(partial));
        using var key = _harness.Key.GetVerificationKey();
        Assert.True((await BundleReader.ReadAsync(output, new BundleReadOptions { Key = key })).Complete);
    }

    [Fact]
    public async Task BundleExporter_ExportAsync_SecondExportWithSameCache_DownloadsNoBlob()
    {
        // Given one export that filled the cache
        await _harness.ExportAsync(_harness.Request(_harness.Directory.Sub("first.tar")));
        _harness.Registry.Server.ClearRequests();

        // When the release is exported again with that cache
        var result = await _harness.ExportAsync(_harness.Request(_harness.Directory.Sub("second.tar")));

        // Then no blob was fetched from the registry and every locked blob came from the cache
        Assert.DoesNotContain(_harness.Registry.Requests, r => r.Method == "GET" && r.IsBlobPath());
        Assert.Equal(0, result.BlobsDownloaded);
        Assert.Equal(0, result.BytesDownloaded);
        Assert.Equal(_harness.Lock.Blobs.Count, result.BlobsReused);
    }

    [Fact]
    public async Task BundleExporter_ExportAsync_RegistryServesWrongBlob_IntegrityExceptionAndNoBundleLeft()
    {
        // Given a registry that serves other bytes under the digest of a layer only one image has
        var owners = fixture.Platform.Images.SelectMany(i => i.BlobDigests.Select(d => (Digest: d, Image: i))).ToLookup(x => x.Digest, x => x.Image);
        var (image, layer) = fixture.Platform.Images
            .SelectMany(i => i.Manifests.SelectMany(m => m.Layers).Select(l => (Image: i, Layer: l)))
            .Where(x => owners[x.Layer.Digest].Count() == 1)
            .MaxBy(x => x.Layer.Size);
        var tampered = fixture.Platform.ReadBlob(layer.Digest);
        tampered[tampered.Length / 2] ^= 0x5A;
        _harness.Registry.Repo(image.Repository).Blobs[layer.Digest] = tampered;
        var output = _harness.Directory.Sub("bundle.tar");
        var cache = _harness.Directory.Sub("cache");

        // When the release is exported
        var ex = await Assert.ThrowsAsync<IntegrityException>(() => _harness.ExportAsync(_harness.Request(output, cache)));

        // Then the failure names the digest, and neither a bundle nor a temporary file is left
        Assert.Contains(layer.Digest, ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(_harness.Directory.Path, "*.partial-*"));
        Assert.Empty(Directory.GetFiles(_harness.Directory.Path));

        // And the cache did not keep the bad bytes under the digest
        Assert.False(File.Exists(Path.Combine(cache, "blobs", "sha256", Digest.Parse(layer.Digest).Hex)));
    }

    [Fact]
    public async Task BundleExporter_ExportAsync_OutputDirectoryMissing_InputExceptionAndNothingWritten()
    {
        // Given an output path in a directory that does not exist
        var missing = _harness.Directory.Sub("no-such-dir");
        var output = Path.Combine(missing, "bundle.tar");

        // When the release is exported there
        var ex = await Assert.ThrowsAsync<InputException>(() => _harness.ExportAsync(_harness.Request(output)));

        // Then it is refused as a usage error naming the directory, before any request and before the cache exists
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
        Assert.Contains(missing, ex.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(missing));
        Assert.Empty(_harness.Registry.Requests);
        Assert.False(Directory.Exists(_harness.Directory.Sub("cache")));
    }

    /// <summary>Asserts that two bundle tars hold the same entries in the same order, byte for byte, except the signature entry.</summary>
    internal static void AssertIdenticalExceptSignature(byte[] a, byte[] b)
    {
        var entriesA = TarLayout.Entries(a);
        var entriesB = TarLayout.Entries(b);
        Assert.Equal(entriesA.Select(e => e.Name), entriesB.Select(e => e.Name));
        Assert.Contains(entriesA, e => e.Name == BundleFormat.SignatureEntry);
        Assert.Equal(a.Length, b.Length);
        for (var i = 0; i < entriesA.Count; i++)
        {
            var (name, startA, endA) = entriesA[i];
            var (_, startB, endB) = entriesB[i];
            Assert.Equal((startA, endA), (startB, endB));
            if (name != BundleFormat.SignatureEntry)
            {
                Assert.True(a.AsSpan((int)startA, (int)(endA - startA)).SequenceEqual(b.AsSpan((int)startB, (int)(endB - startB))), $"entry {name} differs");
            }
        }

        var manifestA = BundleTar.ReadEntries(a).Single(e => e.Name == BundleFormat.ManifestEntry).Data;
        var manifestB = BundleTar.ReadEntries(b).Single(e => e.Name == BundleFormat.ManifestEntry).Data;
        Assert.Equal(manifestA, manifestB);
    }
}
