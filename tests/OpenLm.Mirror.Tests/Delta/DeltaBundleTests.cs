using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Delta;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Import;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Tests.Import;
using Xunit;

namespace OpenLm.Mirror.Tests.Delta;

/// <summary>Delta bundles: what the writer leaves out, what the signed head records, how the reader checks it, and the import's base check.</summary>
public sealed class DeltaBundleTests(DeltaReleases releases) : IClassFixture<DeltaReleases>, IAsyncLifetime
{
    private ImportHarness _harness = null!;

    public Task InitializeAsync()
    {
        _harness = new ImportHarness();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    private ImportRequest Request(string bundle) => new() { BundlePath = bundle, Key = releases.Key, Target = _harness.Target, PassDelay = TimeSpan.Zero };

    [Fact]
    public async Task BundleWriter_WriteAsync_DeltaOverPreviousBundle_OmitsExactlyTheBaseBlobsAndRecordsThemSigned()
    {
        // Given the full bundles of 1.0 and 1.1 and the delta of 1.1 over 1.0
        await using var v1 = await BundleSource.OpenAsync(releases.FullV1, new BundleOpenOptions { Key = releases.Key });
        await using var v2 = await BundleSource.OpenAsync(releases.FullV2, new BundleOpenOptions { Key = releases.Key });
        await using var delta = await BundleSource.OpenAsync(releases.DeltaV2, new BundleOpenOptions { Key = releases.Key });

        // Then the delta carries every manifest of 1.1, and exactly the configs and layers 1.0 lacks
        var v1Blobs = v1.Blobs.Select(b => b.Descriptor.Digest).ToHashSet();
        var expectedCarried = v2.Blobs.Where(b => !v1Blobs.Contains(b.Descriptor.Digest)).Select(b => b.Descriptor.Digest.ToString()).Order(StringComparer.Ordinal).ToList();
        var expectedOmitted = v2.Blobs.Where(b => v1Blobs.Contains(b.Descriptor.Digest)).ToList();
        Assert.NotEmpty(expectedCarried);
        Assert.NotEmpty(expectedOmitted);
        Assert.Equal(expectedCarried, delta.Blobs.Select(b => b.Descriptor.Digest.ToString()).Order(StringComparer.Ordinal).ToList());
        Assert.Equal(v2.Documents.Keys.Select(k => k.ToString()).Order(StringComparer.Ordinal), delta.Documents.Keys.Select(k => k.ToString()).Order(StringComparer.Ordinal));

        // And the signed head says it is a delta of the 1.0 bundle and lists every omitted digest with its size
        var head = delta.Head.Manifest;
        var baseFile = Assert.Single(head.Base!.Files);
        Assert.Equal("bundle", baseFile.Kind);
        Assert.Equal("1.0", baseFile.Release.Version);
        Assert.Equal(v1.Head.BundleDigest.ToString(), baseFile.Digest);
        Assert.Equal(
            expectedOmitted.Select(b => (b.Descriptor.Digest.ToString(), b.Descriptor.Size)).OrderBy(x => x.Item1, StringComparer.Ordinal),
            head.Base.Omitted.Select(o => (o.Digest, o.Size)));
        Assert.All(head.Base.Omitted, o => Assert.Equal(1, o.Base));

        // And the full image list of the release, as a full bundle has it
        Assert.Equal(v2.Head.Manifest.Images.Select(i => (i.Reference, i.Digest)), head.Images.Select(i => (i.Reference, i.Digest)));
        Assert.Equal(v2.Head.Manifest.Blobs!.Count - expectedOmitted.Count, head.Blobs!.Count);
        Assert.Null(v2.Head.Manifest.Base);
        Assert.True(new FileInfo(releases.DeltaV2).Length < new FileInfo(releases.FullV2).Length - expectedOmitted.Sum(b => b.Descriptor.Size) + 4096);
    }

    [Fact]
    public async Task BundleReader_ReadAsync_Delta_VerifiesAllItCarriesAndReportsTheOmitted()
    {
        // When the delta is read in one pass with the release key
        var result = await BundleReader.ReadAsync(releases.DeltaV2, new BundleReadOptions { Key = releases.Key });

        // Then it is complete except the omitted blobs, which it counts
        Assert.True(result.Complete);
        Assert.Equal(result.Head.Manifest.Base!.Omitted.Count, result.OmittedCount);
        Assert.Equal(result.Head.Manifest.Base.Omitted.Sum(o => o.Size), result.OmittedBytes);
        Assert.Equal(result.Head.Manifest.Blobs!.Count, result.BlobCount);
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_DeltaOntoImportedBase_EveryImageOfTheNewReleaseStoredAndTagged()
    {
        // Given release 1.0 imported into the target
        await _harness.ImportAsync(Request(releases.FullV1));

        // When the 1.1 delta is imported
        var result = await _harness.ImportAsync(Request(releases.DeltaV2));

        // Then every image of 1.1 is tagged at its digest, and every blob it needs is in its repository
        await using var v2 = await BundleSource.OpenAsync(releases.FullV2, new BundleOpenOptions { Key = releases.Key });
        foreach (var root in v2.Head.Images)
        {
            var reference = Reference.Parse(root.RefName!);
            var repository = _harness.Stored($"{ImportNames.Prefix}/{reference.Repository.Split('/', 2)[1]}")!;
            Assert.Equal(root.Digest.ToString(), repository.Tags[reference.Tag!]);
            foreach (var node in ImageGraph.Reachable(root, v2.Documents).Values.Where(n => !v2.Documents.ContainsKey(n.Digest)))
            {
                Assert.True(repository.Blobs.ContainsKey(node.Digest.ToString()), $"{repository.Name} lacks {node.Digest}");
            }
        }

        Assert.Contains(_harness.Log.Lines.Select(l => l.Message), m => m.Contains("base check", StringComparison.Ordinal));
        Assert.Equal(v2.Head.Images.Count, result.Images.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task BundleImporter_ImportAsync_DeltaIntoEmptyRegistry_StopsAtTheBaseCheckWithNothingPushed(bool dryRun)
    {
        // When the 1.1 delta is imported into a registry that holds nothing of 1.0
        var error = await Assert.ThrowsAsync<IncompleteTargetException>(() => _harness.ImportAsync(Request(releases.DeltaV2) with { DryRun = dryRun }));

        // Then the target is incomplete (exit 4), the message names a missing blob, an image that needs it and the base release
        Assert.Equal(FailureKind.Incomplete, error.Kind);
        Assert.Contains("the target is incomplete", error.Message, StringComparison.Ordinal);
        Assert.Contains("bundle of openlm-platform 1.0", error.Message, StringComparison.Ordinal);
        Assert.Contains("nothing was pushed", error.Message, StringComparison.Ordinal);
        var unchanged = releases.RootsV2.First(r => r.RefName != releases.Changed && r.RefName != releases.Added && !r.RefName!.Contains("/charts/", StringComparison.Ordinal)).RefName!;
        Assert.Contains(unchanged, error.Message, StringComparison.Ordinal);

        // And nothing at all was stored or tagged
        Assert.Empty(_harness.NonEmptyRepositories);
        Assert.DoesNotContain(_harness.Registry.RegistryRequests, r => r.Method is "PUT" or "POST" or "PATCH");
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_DeltaWithOneBaseBlobDeleted_NamesThatBlobAndItsRepository()
    {
        // Given release 1.0 imported, then one omitted layer removed from one repository
        await _harness.ImportAsync(Request(releases.FullV1));
        await using var delta = await BundleSource.OpenAsync(releases.DeltaV2, new BundleOpenOptions { Key = releases.Key });
        var victim = _harness.NonEmptyRepositories.SelectMany(r => r.Blobs.Keys.Select(k => (Repo: r, Digest: k)))
            .First(x => delta.Omitted.ContainsKey(Digest.Parse(x.Digest)));
        victim.Repo.Blobs.TryRemove(victim.Digest, out _);
        var tagsBefore = _harness.NonEmptyRepositories.ToDictionary(r => r.Name, r => r.Tags.ToDictionary());

        // When the delta is imported
        var error = await Assert.ThrowsAsync<IncompleteTargetException>(() => _harness.ImportAsync(Request(releases.DeltaV2)));

        // Then exactly that blob is reported, in that repository, and no tag changed
        Assert.Contains($"{victim.Repo.Name}@{victim.Digest}", error.Message, StringComparison.Ordinal);
        Assert.Equal(tagsBefore, _harness.NonEmptyRepositories.ToDictionary(r => r.Name, r => r.Tags.ToDictionary()));
    }

    [Fact]
    public async Task ImportReceipt_AsBase_GivesTheSameDeltaAsTheBundleItRecords()
    {
        // Given the receipt of importing 1.0
        var imported = await _harness.ImportAsync(Request(releases.FullV1));
        var receiptPath = releases.Scratch($"receipt-{Guid.NewGuid():N}.json");
        ImportReceipt.From(imported, DateTimeOffset.UnixEpoch).Write(receiptPath);

        // When a delta of 1.1 is written over the receipt
        var (bases, input) = await DeltaBases.LoadAsync([receiptPath], DeltaReleases.Platform);
        var written = await releases.WriteAsync(releases.RootsV2, "1.1", releases.Scratch($"from-receipt-{Guid.NewGuid():N}.tar"), input);

        // Then it omits exactly what the delta over the 1.0 bundle omits, and names the receipt as its base
        await using var byBundle = await BundleSource.OpenAsync(releases.DeltaV2, new BundleOpenOptions { Key = releases.Key });
        Assert.Equal(byBundle.Head.Manifest.Base!.Omitted.Select(o => o.Digest), written.Manifest.Base!.Omitted.Select(o => o.Digest));
        Assert.Equal("receipt", Assert.Single(written.Manifest.Base.Files).Kind);
        Assert.Equal(DeltaBaseKind.Receipt, Assert.Single(bases).Kind);
        Assert.Equal(Digest.Sha256(await File.ReadAllBytesAsync(receiptPath)).ToString(), written.Manifest.Base.Files[0].Digest);
    }

    [Fact]
    public async Task DeltaBase_LoadAsync_DeltaOfADelta_CountsWhatTheFirstDeltaOmittedAndTheImportStillNeedsItInTheTarget()
    {
        // Given a delta of 1.1 over the 1.1 delta (so everything is omitted)
        var (_, input) = await DeltaBases.LoadAsync([releases.DeltaV2], DeltaReleases.Platform);
        var path = releases.Scratch($"delta-of-delta-{Guid.NewGuid():N}.tar");
        var written = await releases.WriteAsync(releases.RootsV2, "1.1", path, input);
        await using (var source = await BundleSource.OpenAsync(path, new BundleOpenOptions { Key = releases.Key }))
        {
            Assert.Empty(source.Blobs);
            Assert.NotEmpty(written.Manifest.Base!.Omitted);
        }

        // When it is imported where neither 1.0 nor the first delta was imported
        var error = await Assert.ThrowsAsync<IncompleteTargetException>(() => _harness.ImportAsync(Request(path)));

        // Then the base check names the first delta's release as the supplier
        Assert.Contains("bundle of openlm-platform 1.1", error.Message, StringComparison.Ordinal);
        Assert.Empty(_harness.NonEmptyRepositories);
    }

    [Fact]
    public async Task DeltaBases_LoadAsync_BadBases_RefusedAsInputNamingTheFile()
    {
        var notJson = releases.Scratch("not-json.json");
        await File.WriteAllTextAsync(notJson, "{ this is not json");
        var notReceipt = releases.Scratch("not-receipt.json");
        await File.WriteAllTextAsync(notReceipt, "{\"hello\": 1}");
        var text = releases.Scratch("notes.txt");
        await File.WriteAllTextAsync(text, "release notes");

        foreach (var path in new[] { notJson, notReceipt, text, releases.Scratch("absent.tar") })
        {
            var error = await Assert.ThrowsAsync<InputException>(() => DeltaBases.LoadAsync([path], DeltaReleases.Platform));
            Assert.Contains(path, error.Message, StringComparison.Ordinal);
        }

        // A base of another platform is refused, naming both platforms
        var foreign = await Assert.ThrowsAsync<InputException>(() => DeltaBases.LoadAsync([releases.FullV1], "another-platform"));
        Assert.Contains("openlm-platform", foreign.Message, StringComparison.Ordinal);
        Assert.Contains("another-platform", foreign.Message, StringComparison.Ordinal);

        // The same base twice is refused
        await Assert.ThrowsAsync<InputException>(() => DeltaBases.LoadAsync([releases.FullV1, releases.FullV1], DeltaReleases.Platform));
    }

    [Fact]
    public async Task BundleSource_RequireFull_Delta_RefusedForLoadAndServeNamingTheBase()
    {
        await using var delta = await BundleSource.OpenAsync(releases.DeltaV2, new BundleOpenOptions { Key = releases.Key });
        var error = Assert.Throws<InputException>(() => delta.RequireFull("loaded into a Docker engine"));
        Assert.Contains("delta bundle", error.Message, StringComparison.Ordinal);
        Assert.Contains("bundle of openlm-platform 1.0", error.Message, StringComparison.Ordinal);

        var omitted = delta.Omitted.First();
        var fetch = await Assert.ThrowsAsync<NotFoundException>(() => delta.FetchAsync(new Descriptor { MediaType = MediaTypes.OciLayer, Digest = omitted.Key, Size = omitted.Value.Size }));
        Assert.Contains("omitted from this delta", fetch.Message, StringComparison.Ordinal);

        await using var full = await BundleSource.OpenAsync(releases.FullV2, new BundleOpenOptions { Key = releases.Key });
        full.RequireFull("served");
    }
}
