using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Tests.Support;
using Xunit;

namespace OpenLm.Mirror.Tests.Import;

/// <summary>The importer's copy of a signed bundle into a registry: names, bytes, tags, deduplication, re-runs, dry runs.</summary>
public sealed class BundleImporterTests(SignedSampleBundleFixture fixture) : IClassFixture<SignedSampleBundleFixture>, IAsyncLifetime
{
    private ImportHarness _harness = null!;

    private SampleBundle Bundle => fixture.Bundle;

    public Task InitializeAsync()
    {
        _harness = new ImportHarness();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    [Fact]
    public async Task BundleImporter_ImportAsync_SignedBundleWithMapRule_EveryImageAtItsMappedNameByteIdentical()
    {
        // Given the signed sample bundle, a target with a prefix and a --map rule for the platform's charts
        var request = _harness.Request(Bundle) with { Maps = [ImportNames.ChartsRule(Bundle)] };

        // When it is imported
        var result = await _harness.ImportAsync(request);

        // Then every image is stored at its mapped name, tagged with the bundle's digest, every manifest byte-identical
        Assert.Contains(Bundle.Images, i => ImportNames.TargetRepository(i, chartsMapped: true).StartsWith($"{ImportNames.Prefix}/helm/", StringComparison.Ordinal));
        foreach (var image in Bundle.Images)
        {
            var name = ImportNames.TargetRepository(image, chartsMapped: true);
            var repository = _harness.Stored(name) ?? throw new Xunit.Sdk.XunitException($"nothing stored in {name}");
            Assert.Equal(image.Digest, repository.Tags[image.Tag]);
            Assert.Equal(Bundle.Platform.ReadBlob(image.Digest), repository.Manifests[image.Tag].Bytes);
            Assert.Equal(image.MediaType, repository.Manifests[image.Tag].MediaType);
            foreach (var child in image.ChildManifestDigests)
            {
                Assert.Equal(Bundle.Platform.ReadBlob(child), repository.Manifests[child].Bytes);
            }

            foreach (var blob in image.BlobDigests)
            {
                Assert.Equal(Bundle.Platform.ReadBlob(blob), repository.Blobs[blob]);
            }

            var reported = Assert.Single(result.Images, i => i.Source == Bundle.SourceRef(image));
            Assert.StartsWith($"{_harness.Registry.Authority}/{name}:{image.Tag}", reported.Target, StringComparison.Ordinal);
            Assert.Equal(image.Digest, reported.Digest);
            Assert.Equal(TagOutcome.Created, reported.Tag);
        }

        // And nothing else was stored, the signature was verified, and one pass sufficed
        Assert.Equal(
            Bundle.Images.Select(i => ImportNames.TargetRepository(i, chartsMapped: true)).Order(StringComparer.Ordinal),
            _harness.NonEmptyRepositories.Select(r => r.Name).Order(StringComparer.Ordinal));
        Assert.True(result.SignatureVerified);
        Assert.False(result.DryRun);
        Assert.Equal(1, result.Passes);
        Assert.Equal(Bundle.Images.Sum(i => 1 + i.ChildManifestDigests.Count), result.ManifestsPushed);
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_LayersSharedAcrossRepositories_UploadedOnceThenMounted()
    {
        // Given a bundle whose base layers are used by several target repositories
        var needing = ImportNames.RepositoriesNeeding(Bundle);
        var expectedMounts = needing.Values.Sum(r => r.Count - 1);
        Assert.True(expectedMounts > 0, "the sample platform should share layers across repositories");

        // When it is imported
        var result = await _harness.ImportAsync(_harness.Request(Bundle));

        // Then every blob was uploaded exactly once to the registry...
        var uploads = _harness.Registry.BlobUploads().Select(r => r.UploadedDigest()).ToList();
        Assert.Equal(Bundle.UniqueBlobs.Order(StringComparer.Ordinal), uploads.Order(StringComparer.Ordinal));

        // ...and mounted into each other repository that needs it, one mount POST per extra repository
        var mounts = _harness.Registry.MountRequests()
            .Select(r => System.Web.HttpUtility.ParseQueryString(r.Query))
            .Select(q => (Digest: q["mount"]!, From: q["from"]!))
            .ToList();
        foreach (var (digest, repositories) in needing)
        {
            Assert.Equal(repositories.Count - 1, mounts.Count(m => m.Digest == digest));
            Assert.All(mounts.Where(m => m.Digest == digest), m => Assert.Contains(m.From, repositories));
            Assert.All(repositories, r => Assert.True(_harness.Registry.HasBlob(r, digest), $"{r} lacks {digest}"));
        }

        // And the result counts the same, with no blob read back from the registry
        Assert.Equal(Bundle.UniqueBlobs.Count, result.BlobsUploaded);
        Assert.Equal(Bundle.UniqueBlobs.Sum(d => new FileInfo(Bundle.Platform.GetBlobPath(d)).Length), result.BytesUploaded);
        Assert.Equal(expectedMounts, result.BlobsMounted);
        Assert.Equal(0, result.BlobsPresent);
        Assert.DoesNotContain(_harness.Registry.Requests, r => r.Method == "GET" && r.IsBlobPath());
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_SecondImport_UploadsNothingAndChecksOnlyImageRoots()
    {
        // Given a registry the bundle was already imported into
        await _harness.ImportAsync(_harness.Request(Bundle));
        _harness.Registry.Server.ClearRequests();

        // When it is imported again
        var result = await _harness.ImportAsync(_harness.Request(Bundle));

        // Then nothing is written, every tag is unchanged and every blob counts as present
        Assert.Empty(_harness.Registry.Writes());
        Assert.All(result.Images, i => Assert.Equal(TagOutcome.Unchanged, i.Tag));
        Assert.Equal(0, result.BlobsUploaded);
        Assert.Equal(0, result.BlobsMounted);
        Assert.Equal(0, result.ManifestsPushed);
        Assert.Equal(Bundle.UniqueBlobs.Count, result.BlobsPresent);

        // And the registry was asked about each image root once by digest, never about a blob
        Assert.DoesNotContain(_harness.Registry.Requests, r => r.IsBlobPath());
        var rootChecks = _harness.Registry.Requests
            .Where(r => r.Method == "HEAD" && RegistryTraffic.ManifestReference(r) is { } reference && reference.StartsWith("sha256:", StringComparison.Ordinal))
            .Select(r => RegistryTraffic.ManifestReference(r))
            .ToList();
        Assert.Equal(Bundle.Images.Select(i => i.Digest).Order(StringComparer.Ordinal), rootChecks.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_DryRunOnEmptyRegistry_WritesNothingAndPlansEveryBlob()
    {
        // Given an empty registry
        var needing = ImportNames.RepositoriesNeeding(Bundle);

        // When a dry run is asked for
        var result = await _harness.ImportAsync(_harness.Request(Bundle) with { DryRun = true });

        // Then no request could have changed the registry and nothing is stored
        Assert.Empty(_harness.Registry.Writes());
        Assert.Empty(_harness.NonEmptyRepositories);

        // And the plan uploads every blob once, mounts it into the other repositories, and commits no tag
        Assert.True(result.DryRun);
        Assert.Equal(Bundle.UniqueBlobs.Count, result.BlobsUploaded);
        Assert.Equal(Bundle.UniqueBlobs.Sum(d => new FileInfo(Bundle.Platform.GetBlobPath(d)).Length), result.BytesUploaded);
        Assert.Equal(needing.Values.Sum(r => r.Count - 1), result.BlobsMounted);
        Assert.Equal(0, result.BlobsPresent);
        Assert.All(result.Images, i => Assert.Equal(TagOutcome.Planned, i.Tag));
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_DryRunWithSomeBlobsPresent_PlansOnlyTheMissingOnes()
    {
        // Given a registry that already holds the blobs only one image needs, in that image's repository
        var needing = ImportNames.RepositoriesNeeding(Bundle);
        var image = Bundle.Images.First(i => i.BlobDigests.Any(d => needing[d].Count == 1));
        var own = image.BlobDigests.Where(d => needing[d].Count == 1).ToList();
        var repository = _harness.Registry.Repo(ImportNames.TargetRepository(image));
        foreach (var digest in own)
        {
            repository.AddBlob(Bundle.Platform.ReadBlob(digest));
        }

        _harness.Registry.Server.ClearRequests();

        // When a dry run is asked for
        var result = await _harness.ImportAsync(_harness.Request(Bundle) with { DryRun = true });

        // Then it writes nothing and plans to upload only what is missing
        Assert.Empty(_harness.Registry.Writes());
        Assert.Equal(Bundle.UniqueBlobs.Count - own.Count, result.BlobsUploaded);
        Assert.Equal(own.Count, result.BlobsPresent);
        Assert.Equal(own.Sum(d => new FileInfo(Bundle.Platform.GetBlobPath(d)).Length), result.BytesPresent);
        Assert.Equal(own.Count, repository.Blobs.Count);
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_DryRunAfterImport_OneRequestPerImageAndNothingToUpload()
    {
        // Given a registry the bundle was already imported into
        await _harness.ImportAsync(_harness.Request(Bundle));
        _harness.Registry.Server.ClearRequests();

        // When a dry run is asked for
        var result = await _harness.ImportAsync(_harness.Request(Bundle) with { DryRun = true });

        // Then the plan cost one HEAD per image root and finds every blob present
        Assert.All(_harness.Registry.Requests, r => Assert.Equal("HEAD", r.Method));
        Assert.Equal(
            Bundle.Images.Select(i => $"/v2/{ImportNames.TargetRepository(i)}/manifests/{i.Digest}").Order(StringComparer.Ordinal),
            _harness.Registry.Requests.Select(r => r.Path).Order(StringComparer.Ordinal));
        Assert.Equal(0, result.BlobsUploaded);
        Assert.Equal(0, result.BlobsMounted);
        Assert.Equal(Bundle.UniqueBlobs.Count, result.BlobsPresent);
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_TokenProtectedRegistry_ImportsWithBearerTokens()
    {
        // Given a registry that wants a bearer token for every repository request
        await using var harness = new ImportHarness(requireToken: true);

        // When the bundle is imported into it
        var result = await harness.ImportAsync(harness.Request(Bundle));

        // Then every image arrived, mounts included, with tokens fetched from the challenge's realm (tags set with one)
        Assert.All(result.Images, i => Assert.Equal(TagOutcome.Created, i.Tag));
        Assert.All(Bundle.Images, i => Assert.Equal(i.Digest, harness.Registry.Repo(ImportNames.TargetRepository(i)).Tags[i.Tag]));
        Assert.True(result.BlobsMounted > 0);
        Assert.True(harness.Registry.TokensIssued > 0);
        Assert.All(harness.Registry.TagPuts(), r => Assert.StartsWith("Bearer ", r.Authorization));
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_TagPointingElsewhere_MovedAndWarnedOthersUnchanged()
    {
        // Given an imported bundle, then one tag moved by someone to another image's manifest
        await _harness.ImportAsync(_harness.Request(Bundle));
        var moved = Bundle.Images.First(i => !i.IsIndex);
        var other = Bundle.Images.First(i => i != moved && !i.IsIndex);
        var repositoryName = ImportNames.TargetRepository(moved);
        var repository = _harness.Registry.Repo(repositoryName);
        repository.AddManifest(moved.Tag, Bundle.Platform.ReadBlob(other.Digest), other.MediaType);
        _harness.Registry.Server.ClearRequests();

        // When the bundle is imported again
        var result = await _harness.ImportAsync(_harness.Request(Bundle));

        // Then that tag is moved back (and warned about, naming both digests); every other tag was already right
        var reported = Assert.Single(result.Images, i => i.Source == Bundle.SourceRef(moved));
        Assert.Equal(TagOutcome.Moved, reported.Tag);
        Assert.All(result.Images.Where(i => i != reported), i => Assert.Equal(TagOutcome.Unchanged, i.Tag));
        Assert.Equal(moved.Digest, repository.Tags[moved.Tag]);
        var warning = Assert.Single(_harness.Log.Warnings, w => w.Contains("tag moved", StringComparison.Ordinal));
        Assert.Contains($"{repositoryName}:{moved.Tag}", warning, StringComparison.Ordinal);
        Assert.Contains($"from {other.Digest} to {moved.Digest}", warning, StringComparison.Ordinal);

        // And the only write was that one tag
        var put = Assert.Single(_harness.Registry.Writes());
        Assert.Equal($"/v2/{repositoryName}/manifests/{moved.Tag}", put.Path);
        Assert.DoesNotContain(_harness.Log.Lines, l => l.Level == LogLevel.Error);
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_WithProgress_ReportsEveryUploadedByte()
    {
        // Given a progress sink that keeps the running totals it hears
        var totals = new System.Collections.Concurrent.ConcurrentQueue<long>();
        var progress = new SyncProgress(totals.Enqueue);

        // When the bundle is imported with it
        var result = await _harness.Importer().ImportAsync(_harness.Request(Bundle), progress);

        // Then the largest running total is exactly the bytes uploaded, which is every unique blob once
        Assert.NotEmpty(totals);
        Assert.Equal(result.BytesUploaded, totals.Max());
        Assert.Equal(Bundle.UniqueBlobs.Sum(d => new FileInfo(Bundle.Platform.GetBlobPath(d)).Length), totals.Max());
    }

    /// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread (Progress&lt;T&gt; posts, and could report after the import returned).</summary>
    private sealed class SyncProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
