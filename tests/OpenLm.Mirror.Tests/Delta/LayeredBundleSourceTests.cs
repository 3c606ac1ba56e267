using System.Security.Cryptography;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Delta;
using OpenLm.Mirror.EngineLoad;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Tests.Load;
using Xunit;

namespace OpenLm.Mirror.Tests.Delta;

/// <summary>
/// A delta read together with the earlier bundles it was made against: every blob of the release comes out verified,
/// and a wrong, missing, incomplete or tampered base is refused with its exit code before anything is loaded.
/// </summary>
public sealed class LayeredBundleSourceTests(DeltaReleases releases) : IClassFixture<DeltaReleases>
{
    private BundleOpenOptions Open => new() { Key = releases.Key };

    [Fact]
    public async Task OpenAsync_DeltaWithItsFullBase_ReadsEveryBlobOfTheReleaseVerified()
    {
        await using var full = await BundleSource.OpenAsync(releases.FullV2, Open);
        await using var layered = await LayeredBundleSource.OpenAsync(releases.DeltaV2, [releases.FullV1], Open);

        // The layered source lists exactly the configs and layers of the full 1.1 bundle, and every manifest
        Assert.NotEmpty(layered.Top.Omitted);
        Assert.Equal(
            full.Blobs.Select(b => b.Descriptor.Digest.ToString()).Order(StringComparer.Ordinal),
            layered.Blobs.Select(b => b.Digest.ToString()).Order(StringComparer.Ordinal));
        Assert.Equal(full.Documents.Keys.Select(k => k.ToString()).Order(StringComparer.Ordinal), layered.Documents.Keys.Select(k => k.ToString()).Order(StringComparer.Ordinal));

        // And each blob, omitted or carried, reads to the bytes of the full bundle's
        foreach (var entry in full.Blobs)
        {
            Assert.True(await layered.ExistsAsync(entry.Descriptor));
            var expected = await HashAsync(await full.FetchAsync(entry.Descriptor));
            var actual = await HashAsync(await layered.FetchAsync(entry.Descriptor));
            Assert.Equal(expected, actual);
            Assert.True(layered.IsVerified(entry.Descriptor.Digest));
        }

        await layered.VerifyRemainingAsync();
    }

    [Fact]
    public async Task OpenAsync_DeltaWithoutBase_RefusedNamingTheBaseAndTheRemedy()
    {
        var error = await Assert.ThrowsAsync<InputException>(() => LayeredBundleSource.OpenAsync(releases.DeltaV2, [], Open, "loaded into a Docker engine"));
        Assert.Equal(Remedy.BaseBundle, error.Remedy);
        Assert.Contains("delta bundle", error.Message, StringComparison.Ordinal);
        Assert.Contains("bundle of openlm-platform 1.0", error.Message, StringComparison.Ordinal);
        Assert.Contains("--base", ErrorReporter.Describe(error), StringComparison.Ordinal);
        Assert.Equal(ExitCodes.Usage, ExitCodes.For(error));
    }

    [Fact]
    public async Task OpenAsync_WrongBase_Exit2NamingTheBaseFileAndRelease()
    {
        // The full 1.1 bundle is not what the 1.1 delta was made against
        var error = await Assert.ThrowsAsync<InputException>(() => LayeredBundleSource.OpenAsync(releases.DeltaV2, [releases.FullV2], Open));
        Assert.Equal(ExitCodes.Usage, ExitCodes.For(error));
        Assert.Contains(releases.FullV2, error.Message, StringComparison.Ordinal);
        Assert.Contains("openlm-platform 1.1", error.Message, StringComparison.Ordinal);
        Assert.Contains("not a base", error.Message, StringComparison.Ordinal);
        Assert.Contains("openlm-platform 1.0", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpenAsync_BadBaseArguments_Exit2()
    {
        var missing = await Assert.ThrowsAsync<InputException>(() => LayeredBundleSource.OpenAsync(releases.DeltaV2, [releases.Scratch("no-such.tar")], Open));
        Assert.Contains("no-such.tar", missing.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", missing.Message, StringComparison.Ordinal);

        var twice = await Assert.ThrowsAsync<InputException>(() => LayeredBundleSource.OpenAsync(releases.DeltaV2, [releases.FullV1, releases.FullV1], Open));
        Assert.Contains("give each base once", twice.Message, StringComparison.Ordinal);

        var fullWithBase = await Assert.ThrowsAsync<InputException>(() => LayeredBundleSource.OpenAsync(releases.FullV2, [releases.FullV1], Open));
        Assert.Contains("full bundle", fullWithBase.Message, StringComparison.Ordinal);
        Assert.Contains("needs no base", fullWithBase.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpenAsync_OnlyOneOfTwoBases_Exit2ListingTheBlobsAndTheBaseThatSuppliesThem()
    {
        // Given a delta of 1.1 made over a partial 0.9 bundle and the full 1.0 bundle
        var partial = releases.Scratch("v09-partial.tar");
        await releases.WriteAsync(releases.RootsV1.Take(2).ToList(), "0.9", partial, null);
        var (_, input) = await DeltaBases.LoadAsync([partial, releases.FullV1], DeltaReleases.Platform);
        var delta = releases.Scratch("v2-over-two.tar");
        await releases.WriteAsync(releases.RootsV2, "1.1", delta, input);

        // When only the 0.9 bundle is given, the blobs the delta took from 1.0 are missing: refused, naming 1.0
        var error = await Assert.ThrowsAsync<InputException>(() => LayeredBundleSource.OpenAsync(delta, [partial], Open));
        Assert.Equal(ExitCodes.Usage, ExitCodes.For(error));
        Assert.Contains("none of the given bases carries", error.Message, StringComparison.Ordinal);
        Assert.Contains("bundle of openlm-platform 1.0", error.Message, StringComparison.Ordinal);
        Assert.Contains(partial, error.Message, StringComparison.Ordinal);

        // And with both it reads
        await using var layered = await LayeredBundleSource.OpenAsync(delta, [partial, releases.FullV1], Open);
        await layered.VerifyRemainingAsync();
    }

    [Fact]
    public async Task OpenAsync_ChainOfDeltas_ReadsWithEveryBaseAndNamesTheOneMissing()
    {
        // Given 0.9 (partial, full bundle), 1.0 as a delta over 0.9, and 1.1 as a delta over the 1.0 delta
        var v09 = releases.Scratch("chain-v09.tar");
        await releases.WriteAsync(releases.RootsV1.Take(2).ToList(), "0.9", v09, null);
        var d10 = releases.Scratch("chain-v10-delta.tar");
        await releases.WriteAsync(releases.RootsV1, "1.0", d10, (await DeltaBases.LoadAsync([v09], DeltaReleases.Platform)).Input);
        var d11 = releases.Scratch("chain-v11-delta.tar");
        await releases.WriteAsync(releases.RootsV2, "1.1", d11, (await DeltaBases.LoadAsync([d10], DeltaReleases.Platform)).Input);

        // With both bases every blob of 1.1 reads
        await using (var layered = await LayeredBundleSource.OpenAsync(d11, [d10, v09], Open))
        {
            await using var full = await BundleSource.OpenAsync(releases.FullV2, Open);
            Assert.Equal(
                full.Blobs.Select(b => b.Descriptor.Digest.ToString()).Order(StringComparer.Ordinal),
                layered.Blobs.Select(b => b.Digest.ToString()).Order(StringComparer.Ordinal));
            await layered.VerifyRemainingAsync();
        }

        // Without the 0.9 bundle the blobs the 1.0 delta left to it are missing, and the message says the base is a delta
        var missing = await Assert.ThrowsAsync<InputException>(() => LayeredBundleSource.OpenAsync(d11, [d10], Open));
        Assert.Contains("itself a delta", missing.Message, StringComparison.Ordinal);

        // The 0.9 bundle alone is not a base of 1.1 (1.1 names the 1.0 delta)
        var wrong = await Assert.ThrowsAsync<InputException>(() => LayeredBundleSource.OpenAsync(d11, [v09], Open));
        Assert.Contains("not a base", wrong.Message, StringComparison.Ordinal);
        Assert.Contains(v09, wrong.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpenAsync_BaseSignedWithAnotherKey_Exit3()
    {
        // Given the 1.0 bundle written again, signed with a key that is not the release key
        using var otherKey = Support.SampleBundle.NewKey();
        var forged = releases.Scratch("v1-other-key.tar");
        await releases.Staging.ReplaceIndexAsync(releases.RootsV1);
        await BundleWriter.WriteAsync(
            releases.Staging,
            new BundleManifest { Platform = new BundleProduct { Name = DeltaReleases.Platform, Version = "1.0" }, Source = DeltaReleases.Source },
            otherKey,
            forged,
            new BundleWriteOptions { Overwrite = true, SourceDateEpoch = DateTimeOffset.FromUnixTimeSeconds(1_780_000_000) });

        var error = await Assert.ThrowsAsync<IntegrityException>(() => LayeredBundleSource.OpenAsync(releases.DeltaV2, [forged], Open));
        Assert.Equal(ExitCodes.Integrity, ExitCodes.For(error));
        Assert.Contains(forged, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LoadAsync_DeltaWithBaseWhoseOmittedBlobIsAltered_Exit3AndNothingLoaded()
    {
        // Given a copy of the 1.0 bundle with one byte changed inside a blob the 1.1 delta omits
        var tampered = releases.Scratch($"v1-tampered-{Guid.NewGuid():N}.tar");
        File.Copy(releases.FullV1, tampered);
        long offset;
        await using (var delta = await BundleSource.OpenAsync(releases.DeltaV2, Open))
        await using (var copy = await BundleSource.OpenAsync(tampered, Open))
        {
            var omitted = delta.Omitted.Values.OrderByDescending(o => o.Size).First();
            offset = copy.CarriedBlob(Digest.Parse(omitted.Digest))!.Offset;
        }

        await using (var file = new FileStream(tampered, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = offset;
            var b = file.ReadByte();
            file.Position = offset;
            file.WriteByte((byte)(b ^ 0xFF));
        }

        // When the delta is loaded with it, the blob fails its digest as it is read, and the engine never sees a byte
        var engine = new FakeEngine();
        var error = await Assert.ThrowsAsync<IntegrityException>(() => DockerBundleLoader.LoadAsync(
            releases.DeltaV2, engine, new DockerLoadOptions { Key = releases.Key, Bases = [tampered] }));
        Assert.Equal(ExitCodes.Integrity, ExitCodes.For(error));
        Assert.Contains(tampered, error.Message, StringComparison.Ordinal);
        Assert.Equal(0, engine.LoadCalls);
    }

    [Fact]
    public async Task LoadAsync_DeltaWithBase_LoadsTheSameImagesAsTheFullBundle()
    {
        var fromFull = new FakeEngine();
        var expected = await DockerBundleLoader.LoadAsync(releases.FullV2, fromFull, new DockerLoadOptions { Key = releases.Key });
        var fromDelta = new FakeEngine();
        var actual = await DockerBundleLoader.LoadAsync(releases.DeltaV2, fromDelta, new DockerLoadOptions { Key = releases.Key, Bases = [releases.FullV1] });

        Assert.NotEmpty(actual.Loaded);
        Assert.Contains(actual.Loaded, i => i.Reference == releases.Changed);
        Assert.Equal(expected.Loaded.Select(i => (i.Tag, i.ImageId, i.Config)), actual.Loaded.Select(i => (i.Tag, i.ImageId, i.Config)));
        Assert.Equal(fromFull.Entries.Keys.Order(StringComparer.Ordinal), fromDelta.Entries.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, bytes) in fromFull.Entries)
        {
            Assert.True(bytes.AsSpan().SequenceEqual(fromDelta.Entries[name]), name);
        }
    }

    [Fact]
    public async Task LoadAsync_DeltaWithoutBase_RefusedBeforeTheEngine()
    {
        var engine = new FakeEngine();
        var error = await Assert.ThrowsAsync<InputException>(() => DockerBundleLoader.LoadAsync(releases.DeltaV2, engine, new DockerLoadOptions { Key = releases.Key }));
        Assert.Equal(Remedy.BaseBundle, error.Remedy);
        Assert.Equal(0, engine.LoadCalls);
    }

    [Fact]
    public async Task LoadCommand_DeltaWithoutBase_Exit2NamingTheFlagBeforeTheEngineIsContacted()
    {
        var pub = releases.Scratch($"release-{Guid.NewGuid():N}.pub");
        await File.WriteAllTextAsync(pub, releases.Key.ExportPem());
        var output = new StringWriter();
        var error = new StringWriter();

        // The Docker host is a socket that does not exist: the refusal must come first
        var exit = await CliApp.RunAsync(
            ["load", releases.DeltaV2, "--key", pub, "--docker-host", "unix://" + releases.Scratch("no-docker.sock")],
            CliConsole.Capture(output, error));

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("delta bundle", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("--base", error.ToString(), StringComparison.Ordinal);
    }

    private static async Task<string> HashAsync(Stream stream)
    {
        await using (stream)
        {
            return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream));
        }
    }
}
