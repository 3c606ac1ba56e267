using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Tests.Core;
using OpenLm.Mirror.Tests.Support;
using Xunit;

namespace OpenLm.Mirror.Tests.Import;

/// <summary>The importer when the bundle is damaged or the registry fails: retried, or refused with no tag changed.</summary>
public sealed class BundleImporterFaultTests(SignedSampleBundleFixture fixture) : IClassFixture<SignedSampleBundleFixture>, IAsyncLifetime
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
    public async Task BundleImporter_ImportAsync_CorruptLayerInBundle_IntegrityExceptionNamingDigestAndNoTag()
    {
        // Given a copy of the bundle with one byte flipped inside one layer's tar entry (the signed head still verifies)
        var layer = Bundle.Images.SelectMany(i => i.Manifests).SelectMany(m => m.Layers).MaxBy(l => l.Size)!;
        var corrupt = await CopyWithFlippedByteAsync(Digest.Parse(layer.Digest));

        // When it is imported
        var ex = await Assert.ThrowsAsync<IntegrityException>(() => _harness.ImportAsync(_harness.Request(Bundle) with { BundlePath = corrupt }));

        // Then the failure names the layer, no manifest was ever put by tag, and no repository has a tag or the bad blob
        Assert.Contains(layer.Digest, ex.Message, StringComparison.Ordinal);
        Assert.Empty(_harness.Registry.TagPuts());
        Assert.All(_harness.NonEmptyRepositories, r => Assert.Empty(r.Tags));
        Assert.All(_harness.NonEmptyRepositories, r => Assert.False(r.Blobs.ContainsKey(layer.Digest)));

        // And a mismatch is final: neither retried nor given another pass
        Assert.DoesNotContain(_harness.Log.Warnings, w => w.StartsWith("retry ", StringComparison.Ordinal) || w.Contains("pass 2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_FirstBlobCommitsAnswer503_RetriedAndEveryDigestInPlace()
    {
        // Given a registry that answers 503 to the first three blob uploads
        var failed = new Counter();
        _harness.Registry.Intercept = Faults.FirstWith503(3, Faults.IsBlobCommit, failed);

        // When the bundle is imported with retries
        var result = await _harness.ImportAsync(_harness.Request(Bundle), retries: 4);

        // Then the retries absorbed the failures within one pass and everything arrived
        Assert.True(failed.Value >= 3);
        Assert.Equal(1, result.Passes);
        AssertEverythingImported();
        Assert.All(result.Images, i => Assert.Equal(TagOutcome.Created, i.Tag));
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_ConnectionsResetDuringUploads_RetriedAndEveryDigestInPlace()
    {
        // Given a registry that resets the connection of the first two blob uploads
        var reset = new Counter();
        _harness.Registry.Intercept = Faults.FirstReset(2, Faults.IsBlobCommit, reset);

        // When the bundle is imported with retries
        var result = await _harness.ImportAsync(_harness.Request(Bundle), retries: 4);

        // Then the import completed with every digest in place
        Assert.True(reset.Value >= 2);
        AssertEverythingImported();
        Assert.All(result.Images, i => Assert.Equal(TagOutcome.Created, i.Tag));
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_WholePassFailsWithoutRetries_SecondPassCompletes()
    {
        // Given a registry whose first blob upload fails, and no per-request retries, so the first pass fails
        var failed = new Counter();
        _harness.Registry.Intercept = Faults.FirstWith503(1, Faults.IsBlobCommit, failed);

        // When the bundle is imported
        var result = await _harness.ImportAsync(_harness.Request(Bundle) with { MaxPasses = 3 }, retries: 0);

        // Then a second pass skipped what had arrived and finished the job, and the extra pass was warned about
        Assert.Equal(2, result.Passes);
        AssertEverythingImported();
        Assert.All(result.Images, i => Assert.Equal(TagOutcome.Created, i.Tag));
        Assert.Contains(_harness.Log.Warnings, w => w.Contains("pass 2 of 3", StringComparison.Ordinal));
        Assert.Equal(Bundle.UniqueBlobs.Count, _harness.Registry.BlobUploads().Select(r => r.UploadedDigest()).Distinct().Count());
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_UploadsKeepFailing_OperationExceptionAfterLastPassAndNoTag()
    {
        // Given a registry that answers 503 to every blob upload
        var failed = new Counter();
        _harness.Registry.Intercept = Faults.FirstWith503(int.MaxValue, Faults.IsBlobCommit, failed);

        // When the bundle is imported with two passes and no per-request retries
        var ex = await Assert.ThrowsAsync<OperationException>(() => _harness.ImportAsync(_harness.Request(Bundle) with { MaxPasses = 2 }, retries: 0));

        // Then it gives up after the second pass, says so, and no tag was created
        Assert.Contains("after 2 passes", ex.Message, StringComparison.Ordinal);
        Assert.Contains("no tag was created or moved", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_harness.Registry.TagPuts());
        Assert.True(failed.Value >= 2);
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_PushDenied_FailsOnceAsOperationalErrorWithoutRetryOrTag()
    {
        // Given a registry that refuses every upload with 403 DENIED
        _harness.Registry.Intercept = async context =>
        {
            if (context.Request.HttpMethod != "POST")
            {
                return false;
            }

            await Reply.ErrorAsync(context, 403, "DENIED", "requested access to the resource is denied");
            return true;
        };

        // When the bundle is imported one image and one blob at a time, with retries and passes to spare
        var ex = await Assert.ThrowsAsync<RegistryException>(() => _harness.ImportAsync(
            _harness.Request(Bundle) with { Concurrency = 1, ParallelImages = 1, MaxPasses = 3 },
            retries: 4));

        // Then the denial is reported as an operational failure, neither retried nor given another pass (only the first image's
        // blobs were tried, each once), and no tag was created
        Assert.Equal(FailureKind.Operational, ex.Kind);
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, ex.StatusCode);
        Assert.True(ex.HasCode("DENIED"));
        Assert.False(RetryPolicy.IsTransient(ex, CancellationToken.None));
        Assert.DoesNotContain(_harness.Log.Warnings, w => w.StartsWith("retry ", StringComparison.Ordinal) || w.Contains("pass 2", StringComparison.Ordinal));
        Assert.InRange(_harness.Registry.Requests.Count(r => r.Method == "POST"), 1, Bundle.Images.Max(i => i.BlobDigests.Count));
        Assert.Empty(_harness.Registry.TagPuts());
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_CancelledDuringUploads_OperationCanceledAndNoTag()
    {
        // Given an import that is cancelled (Ctrl+C) while the first blob upload is under way
        using var cancel = new CancellationTokenSource();
        _harness.Registry.Intercept = async context =>
        {
            if (!Faults.IsBlobCommit(context))
            {
                return false;
            }

            await cancel.CancelAsync();
            await Faults.DrainAsync(context);
            await Reply.ErrorAsync(context, 503, "UNAVAILABLE", "shutting down");
            return true;
        };

        // When the import runs
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _harness.Importer(retries: 4).ImportAsync(_harness.Request(Bundle), null, cancel.Token));

        // Then it stops without a retry or another pass, and no tag was created
        Assert.Empty(_harness.Registry.TagPuts());
        Assert.DoesNotContain(_harness.Log.Warnings, w => w.Contains("pass 2", StringComparison.Ordinal));
        Assert.All(_harness.NonEmptyRepositories, r => Assert.Empty(r.Tags));
    }

    private void AssertEverythingImported()
    {
        foreach (var image in Bundle.Images)
        {
            var repository = _harness.Stored(ImportNames.TargetRepository(image)) ?? throw new Xunit.Sdk.XunitException($"{image.Reference} not imported");
            Assert.Equal(image.Digest, repository.Tags[image.Tag]);
            Assert.All(image.ChildManifestDigests, d => Assert.True(repository.Manifests.ContainsKey(d), $"{image.Reference}: child {d} missing"));
            Assert.All(image.BlobDigests, d => Assert.Equal(Bundle.Platform.ReadBlob(d), repository.Blobs[d]));
        }
    }

    /// <summary>Copies the bundle and flips one byte in the middle of <paramref name="digest"/>'s tar entry data.</summary>
    private async Task<string> CopyWithFlippedByteAsync(Digest digest)
    {
        var copy = _harness.Directory.Sub("corrupt.tar");
        File.Copy(Bundle.Path, copy);
        BundleEntry entry;
        await using (var source = await BundleSource.OpenAsync(copy, new BundleOpenOptions { Key = Bundle.Key }))
        {
            entry = source.Blobs.Single(b => b.Descriptor.Digest == digest);
        }

        await using var file = new FileStream(copy, FileMode.Open, FileAccess.ReadWrite);
        var at = entry.Offset + (entry.Descriptor.Size / 2);
        file.Position = at;
        var b = file.ReadByte();
        file.Position = at;
        file.WriteByte((byte)(b ^ 0x5A));
        return copy;
    }
}
