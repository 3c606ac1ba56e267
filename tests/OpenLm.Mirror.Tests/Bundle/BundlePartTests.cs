using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Tests.Delta;
using OpenLm.Mirror.Tests.Import;
using Xunit;

namespace OpenLm.Mirror.Tests.Bundle;

/// <summary>Split parts: the signed part table, each part checked on its own and named when bad, parts read in place.</summary>
public sealed class BundlePartTests(DeltaReleases releases) : IClassFixture<DeltaReleases>
{
    private long PartSize => Math.Max(new FileInfo(releases.FullV2).Length / 4, 16 * 1024);

    private async Task<BundleWriteResult> SplitAsync(string name) =>
        await releases.WriteAsync(releases.RootsV2, "1.1", releases.Scratch(name), null, PartSize);

    [Fact]
    public async Task BundleWriter_WriteAsync_SplitSize_PartsAtMostTheSizeListedSignedAndTheSetVerifies()
    {
        // When release 1.1 is written in parts
        var written = await SplitAsync($"split-{Guid.NewGuid():N}.tar");

        // Then there are several parts, each at most the size, in the signed table with ranges that tile the bundle
        var table = written.Manifest.Parts!;
        Assert.True(written.PartPaths.Count >= 4, $"{written.PartPaths.Count} parts");
        Assert.Equal(table.Files.Count, written.PartPaths.Count);
        for (var i = 0; i < written.PartPaths.Count; i++)
        {
            Assert.EndsWith($".{i + 1:000}", written.PartPaths[i], StringComparison.Ordinal);
            Assert.Equal(table.Files[i].Size, new FileInfo(written.PartPaths[i]).Length);
            Assert.True(table.Files[i].Size <= PartSize);
        }

        // And the set verifies from its first part and from its base name, with the same bundle digest
        var byFirst = await BundleReader.ReadAsync(written.PartPaths[0], new BundleReadOptions { Key = releases.Key });
        var byBase = await BundleReader.ReadAsync(written.PartPaths[0][..^4], new BundleReadOptions { Key = releases.Key });
        Assert.True(byFirst.Complete);
        Assert.Equal(written.BundleDigest, byFirst.Head.BundleDigest);
        Assert.Equal(written.BundleDigest, byBase.Head.BundleDigest);

        // And the parts joined are the single-file bundle's body byte for byte (only the head differs: it holds the table)
        var single = await File.ReadAllBytesAsync(releases.FullV2);
        var joined = written.PartPaths.SelectMany(File.ReadAllBytes).ToArray();
        Assert.Equal(single.AsSpan(single.Length - 4096).ToArray(), joined.AsSpan(joined.Length - 4096).ToArray());
    }

    [Fact]
    public async Task BundleWriter_WriteAsync_SplitTwice_SameTableAndEveryPartButTheHeadByteIdentical()
    {
        var first = await SplitAsync($"det-a-{Guid.NewGuid():N}.tar");
        var second = await SplitAsync($"det-b-{Guid.NewGuid():N}.tar");
        Assert.Equal(first.Manifest.Parts!.Files, second.Manifest.Parts!.Files);
        Assert.Equal(first.BundleDigest, second.BundleDigest);
        for (var i = 1; i < first.PartPaths.Count; i++)
        {
            Assert.Equal(await File.ReadAllBytesAsync(first.PartPaths[i]), await File.ReadAllBytesAsync(second.PartPaths[i]));
        }
    }

    [Fact]
    public async Task BundleReader_ReadAsync_OneCorruptPart_NamesThatPartOnlyAndReplacingItFixesTheSet()
    {
        // Given a split set with one byte flipped in part 3
        var written = await SplitAsync($"corrupt-{Guid.NewGuid():N}.tar");
        var victim = written.PartPaths[2];
        var pristine = await File.ReadAllBytesAsync(victim);
        var damaged = pristine.ToArray();
        damaged[damaged.Length / 2] ^= 0x40;
        await File.WriteAllBytesAsync(victim, damaged);

        // When it is verified, then part 3 alone is named, with what to re-copy
        var error = await Assert.ThrowsAsync<IntegrityException>(() => BundleReader.ReadAsync(written.PartPaths[0], new BundleReadOptions { Key = releases.Key }));
        Assert.Contains($"part 3 of {written.PartPaths.Count}: sha256 mismatch — re-copy {victim}", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("part 2 of", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("part 4 of", error.Message, StringComparison.Ordinal);

        // And once it is replaced the set verifies
        await File.WriteAllBytesAsync(victim, pristine);
        Assert.True((await BundleReader.ReadAsync(written.PartPaths[0], new BundleReadOptions { Key = releases.Key })).Complete);
    }

    [Fact]
    public async Task BundleReader_ReadAsync_MissingTruncatedReorderedExtraOrForeignParts_EachNamedByNumber()
    {
        var written = await SplitAsync($"bad-{Guid.NewGuid():N}.tar");
        var parts = written.PartPaths;
        var count = parts.Count;
        var key = new BundleReadOptions { Key = releases.Key };
        var originals = parts.Select(File.ReadAllBytes).ToList();
        async Task<string> FailureAsync() => (await Assert.ThrowsAsync<IntegrityException>(() => BundleReader.ReadAsync(parts[0], key))).Message;
        void Restore()
        {
            for (var i = 0; i < count; i++)
            {
                File.WriteAllBytes(parts[i], originals[i]);
            }

            File.Delete(BundlePartSet.PartPath(parts[0][..^4], count + 1));
        }

        // missing
        File.Delete(parts[1]);
        Assert.Contains($"part 2 of {count}: missing", await FailureAsync(), StringComparison.Ordinal);
        Restore();

        // truncated
        File.WriteAllBytes(parts[count - 1], originals[count - 1][..^100]);
        Assert.Contains($"part {count} of {count}: short", await FailureAsync(), StringComparison.Ordinal);
        Restore();

        // reordered (2 and 3 swapped: same sizes, both wrong)
        File.WriteAllBytes(parts[1], originals[2]);
        File.WriteAllBytes(parts[2], originals[1]);
        var reordered = await FailureAsync();
        Assert.Contains($"part 2 of {count}: sha256 mismatch", reordered, StringComparison.Ordinal);
        Assert.Contains($"part 3 of {count}: sha256 mismatch", reordered, StringComparison.Ordinal);
        Restore();

        // duplicated (part 2 copied over part 3)
        File.WriteAllBytes(parts[2], originals[1]);
        Assert.Contains($"part 3 of {count}: sha256 mismatch", await FailureAsync(), StringComparison.Ordinal);
        Restore();

        // extra
        File.WriteAllBytes(BundlePartSet.PartPath(parts[0][..^4], count + 1), originals[1]);
        Assert.Contains($"part {count + 1}: extra", await FailureAsync(), StringComparison.Ordinal);
        Restore();

        // from another bundle (release 1.0 split the same way)
        var other = await releases.WriteAsync(releases.RootsV1, "1.0", releases.Scratch($"other-{Guid.NewGuid():N}.tar"), null, PartSize);
        File.Copy(other.PartPaths[1], parts[1], overwrite: true);
        Assert.Contains($"part 2 of {count}:", await FailureAsync(), StringComparison.Ordinal);
        Restore();
        Assert.True((await BundleReader.ReadAsync(parts[0], key)).Complete);
    }

    [Fact]
    public async Task BundleSource_OpenAsync_SplitDelta_ImportsInPlaceOntoTheBase()
    {
        // Given the 1.1 delta written in parts, and release 1.0 imported
        var (_, input) = await Mirror.Delta.DeltaBases.LoadAsync([releases.FullV1], DeltaReleases.Platform);
        var written = await releases.WriteAsync(releases.RootsV2, "1.1", releases.Scratch($"split-delta-{Guid.NewGuid():N}.tar"), input, Math.Max(new FileInfo(releases.DeltaV2).Length / 3, 16 * 1024));
        Assert.True(written.PartPaths.Count >= 2);
        await using var harness = new ImportHarness();
        await harness.ImportAsync(new Mirror.Import.ImportRequest { BundlePath = releases.FullV1, Key = releases.Key, Target = harness.Target, PassDelay = TimeSpan.Zero });

        // When the parts are imported (by the first part's name), then every image of 1.1 is tagged
        var result = await harness.ImportAsync(new Mirror.Import.ImportRequest { BundlePath = written.PartPaths[0], Key = releases.Key, Target = harness.Target, PassDelay = TimeSpan.Zero });
        Assert.Equal(releases.RootsV2.Count, result.Images.Count);
        Assert.All(result.Images, i => Assert.NotEqual(Mirror.Copy.TagOutcome.Planned, i.Tag));
        Assert.Equal(Mirror.Copy.TagOutcome.Moved, Assert.Single(result.Images, i => i.Source == releases.Changed).Tag);
        Assert.Equal(Mirror.Copy.TagOutcome.Created, Assert.Single(result.Images, i => i.Source == releases.Added).Tag);

        // And the head can be inspected from the parts
        var head = await BundleInspector.InspectAsync(written.PartPaths[0], releases.Key);
        Assert.NotNull(head.Manifest.Parts);
    }

    [Fact]
    public async Task BundleReader_ReadAsync_FirstPartAloneUnderAnotherName_RefusedAsOnePartOfASet()
    {
        var written = await SplitAsync($"alone-{Guid.NewGuid():N}.tar");
        var alone = releases.Scratch($"alone-{Guid.NewGuid():N}.tar");
        File.Copy(written.PartPaths[0], alone);
        var error = await Assert.ThrowsAsync<InputException>(() => BundleReader.ReadAsync(alone, new BundleReadOptions { Key = releases.Key }));
        Assert.Contains("part 1 of a bundle split into", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BundleReader_ReadAsync_ALaterPartGiven_RefusedNamingTheFirstPart()
    {
        var written = await SplitAsync($"later-{Guid.NewGuid():N}.tar");
        var error = await Assert.ThrowsAsync<InputException>(() => BundleReader.ReadAsync(written.PartPaths[1], new BundleReadOptions { Key = releases.Key }));
        Assert.Contains($"give the first part, {written.PartPaths[0]}", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("4G", 4L << 30)]
    [InlineData("4095M", 4095L << 20)]
    [InlineData("64MiB", 64L << 20)]
    [InlineData("1.5G", 3L << 29)]
    [InlineData("67108864", 64L << 20)]
    public void SplitSize_Parse_Sizes(string text, long bytes) => Assert.Equal(bytes, SplitSize.Parse(text));

    [Theory]
    [InlineData("63M")]
    [InlineData("1000")]
    [InlineData("four gigs")]
    [InlineData("")]
    [InlineData("-4G")]
    public void SplitSize_Parse_BelowMinimumOrUnparsable_InputError(string text)
    {
        var error = Assert.Throws<InputException>(() => SplitSize.Parse(text));
        Assert.Equal(Setting.SplitSize, error.Setting);
    }
}

/// <summary><c>split</c> and <c>join</c> of bundles that already exist.</summary>
public sealed class BundleSplitterTests(DeltaReleases releases) : IClassFixture<DeltaReleases>
{
    [Fact]
    public async Task BundleSplitter_SplitThenJoin_SameTableAsAnExportInPartsAndTheOriginalBundleDigestBack()
    {
        var size = Math.Max(new FileInfo(releases.FullV2).Length / 4, 16 * 1024);

        // When the full 1.1 bundle is split
        var split = await BundleSplitter.RewriteAsync(releases.FullV2, releases.SigningKey, releases.Scratch($"resplit-{Guid.NewGuid():N}.tar"), size, overwrite: false);

        // Then the set verifies and its part table is the one an export in parts writes (the body is the same bytes)
        Assert.True((await BundleReader.ReadAsync(split.PartPaths[0], new BundleReadOptions { Key = releases.Key })).Complete);
        var exported = await releases.WriteAsync(releases.RootsV2, "1.1", releases.Scratch($"exported-{Guid.NewGuid():N}.tar"), null, size);
        Assert.Equal(exported.Manifest.Parts!.Files, split.Manifest.Parts!.Files);

        // And joining the parts gives back a single file with the original head, so the original bundle digest
        var joined = await BundleSplitter.RewriteAsync(split.PartPaths[0], releases.SigningKey, releases.Scratch($"joined-{Guid.NewGuid():N}.tar"), null, overwrite: false);
        var read = await BundleReader.ReadAsync(joined.OutputPath, new BundleReadOptions { Key = releases.Key });
        var original = await BundleReader.ReadAsync(releases.FullV2, new BundleReadOptions { Key = releases.Key });
        Assert.Equal(original.Head.BundleDigest, read.Head.BundleDigest);
        Assert.Equal(new FileInfo(releases.FullV2).Length, new FileInfo(joined.OutputPath).Length);
    }

    [Fact]
    public async Task BundleSplitter_JoinOfASingleFileOrSplitOverItself_RefusedAsInput()
    {
        await Assert.ThrowsAsync<InputException>(() => BundleSplitter.RewriteAsync(releases.FullV2, releases.SigningKey, releases.Scratch("j.tar"), null, overwrite: false));
        var split = await BundleSplitter.RewriteAsync(releases.FullV2, releases.SigningKey, releases.Scratch($"self-{Guid.NewGuid():N}.tar"), 64 * 1024, overwrite: false);
        await Assert.ThrowsAsync<InputException>(() => BundleSplitter.RewriteAsync(split.PartPaths[0], releases.SigningKey, split.PartPaths[0], null, overwrite: true));
    }

    [Fact]
    public async Task BundleSplitter_BundleSignedByAnotherKey_RefusedAsIntegrity()
    {
        using var other = Support.SampleBundle.NewKey();
        await Assert.ThrowsAsync<IntegrityException>(() => BundleSplitter.RewriteAsync(releases.FullV2, other, releases.Scratch($"other-{Guid.NewGuid():N}.tar"), 64 * 1024, overwrite: false));
    }
}
