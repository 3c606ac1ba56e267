using System.Formats.Tar;
using System.Text;
using System.Text.Json.Nodes;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;
using Xunit;

namespace OpenLm.Mirror.Tests.Bundle;

public sealed class BundleReaderRejectionTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly SigningKey _key = TestKeys.NewSigningKey();
    private readonly VerificationKey _pub;

    public BundleReaderRejectionTests() => _pub = _key.GetVerificationKey();

    public void Dispose()
    {
        _pub.Dispose();
        _key.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task BundleReader_Read_RejectsTamperedBlob()
    {
        var bundle = await Valid();
        var layer = bundle.Layout.OwnLayers[0];
        var offset = BundleRoundTripTests.FindEntryDataOffset(bundle.Bytes, BundleTar.HeaderName(layer));
        var bytes = (byte[])bundle.Bytes.Clone();
        bytes[offset + 100] ^= 0x01;

        var visitor = new RecordingVisitor();
        var ex = await Rejects<IntegrityException>(bytes, visitor, BundleTar.HeaderName(layer), "digest mismatch", layer.Digest.ToString());
        Assert.DoesNotContain("completed", visitor.Calls);
        Assert.NotNull(ex);
    }

    [Fact]
    public async Task BundleReader_Read_RejectsTamperedBlobWhenVisitorReadsNothing()
    {
        var bundle = await Valid();
        var layer = bundle.Layout.SharedLayer;
        var offset = BundleRoundTripTests.FindEntryDataOffset(bundle.Bytes, BundleTar.HeaderName(layer));
        var bytes = (byte[])bundle.Bytes.Clone();
        bytes[offset + 5] ^= 0x80;
        await Rejects<IntegrityException>(bytes, new RecordingVisitor { ReadLimit = 0 }, "digest mismatch", layer.Digest.ToString());
    }

    [Fact]
    public async Task BundleReader_Read_RejectsTamperedManifestBlob()
    {
        var bundle = await Valid();
        var name = BundleTar.HeaderName(bundle.Layout.WebManifest);
        var offset = BundleRoundTripTests.FindEntryDataOffset(bundle.Bytes, name);
        var bytes = (byte[])bundle.Bytes.Clone();
        bytes[offset + 2] = (byte)' ';
        await Rejects<IntegrityException>(bytes, null, name, "digest mismatch");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsTamperedBundleManifest()
    {
        var bundle = await Valid();
        var entries = Entries(bundle);
        var m = entries[1];
        entries[1] = m with { Data = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(m.Data).Replace("olm-web", "olm-bad", StringComparison.Ordinal)) };
        await Rejects<IntegrityException>(BundleTar.Write(entries), null, BundleFormat.SignatureEntry, "does not verify");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsSignatureFromAnotherKey()
    {
        var bundle = await Valid();
        using var attacker = TestKeys.NewSigningKey();
        var entries = BundleTar.Resign(Entries(bundle), attacker);
        var ex = await Rejects<IntegrityException>(BundleTar.Write(entries), null, "does not verify", attacker.KeyId, _key.KeyId, "another key");
        Assert.NotNull(ex);
    }

    [Fact]
    public async Task BundleReader_Read_RejectsMissingSignature()
    {
        var bundle = await Valid();
        var entries = Entries(bundle).Where(e => e.Name != BundleFormat.SignatureEntry);
        await Rejects<IntegrityException>(BundleTar.Write(entries), null, "not signed", BundleFormat.SignatureEntry);
    }

    [Fact]
    public async Task BundleReader_Read_RejectsMalformedSignature()
    {
        var bundle = await Valid();
        var entries = Entries(bundle);
        entries[2] = entries[2] with { Data = "not base64 at all!\n"u8.ToArray() };
        await Rejects<IntegrityException>(BundleTar.Write(entries), null, BundleFormat.SignatureEntry, "base64");
    }

    [Fact]
    public async Task BundleReader_Read_RequiresKeyWhenSignatureRequired()
    {
        var bundle = await Valid();
        var ex = await Assert.ThrowsAsync<InputException>(() => BundleReader.ReadAsync(new MemoryStream(bundle.Bytes), new BundleReadOptions()));
        Assert.Contains("public key is required", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BundleReader_Read_RejectsTruncatedTar()
    {
        var bundle = await Valid();
        foreach (var cut in new[] { bundle.Bytes.Length / 2, bundle.Bytes.Length - 1024, 700 })
        {
            var ex = await Rejects<IntegrityException>(bundle.Bytes[..cut], null, "truncated");
            Assert.Contains("offset", ex.Message, StringComparison.Ordinal);
        }

        // Cut exactly at an entry boundary (no end-of-archive marker).
        await Rejects<IntegrityException>(bundle.Bytes[..^1024], null, "truncated", "end-of-archive");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsTruncatedZstd()
    {
        var bundle = await Valid(new BundleWriteOptions { Compression = BundleCompression.Zstd });
        await Rejects<IntegrityException>(bundle.Bytes[..(bundle.Bytes.Length * 2 / 3)], null, "truncated");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsCorruptZstd()
    {
        var bundle = await Valid(new BundleWriteOptions { Compression = BundleCompression.Zstd });
        var bytes = (byte[])bundle.Bytes.Clone();
        for (var i = bytes.Length / 2; i < bytes.Length / 2 + 64; i++)
        {
            bytes[i] ^= 0x5A;
        }

        await Assert.ThrowsAsync<IntegrityException>(() => BundleReader.ReadAsync(new MemoryStream(bytes), new BundleReadOptions { Key = _pub }));
    }

    [Fact]
    public async Task BundleReader_Read_RejectsFileThatIsNotTar()
    {
        await Rejects<InputException>(Encoding.UTF8.GetBytes(new string('x', 4000)), null, "not a tar archive");
        await Rejects<InputException>("hello"u8.ToArray(), null, "not a tar archive");
        await Rejects<InputException>([], null, "empty");
        await Rejects<InputException>([0x1F, 0x8B, 8, 0, 0, 0, 0, 0], null, "gzip");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsPlainOciArchive()
    {
        var bundle = await Valid();
        var entries = Entries(bundle).Where(e => e.Name is not (BundleFormat.ManifestEntry or BundleFormat.SignatureEntry));
        await Rejects<InputException>(BundleTar.Write(entries), null, "not an OpenLM bundle", "plain OCI archive");

        var wrongFirst = Entries(bundle).Skip(1);
        await Rejects<InputException>(BundleTar.Write(wrongFirst), null, "not an OpenLM bundle", "first entry is 'openlm-bundle.json'", "'oci-layout'");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsIndexReferencingMissingBlob()
    {
        var bundle = await Valid();
        var missing = bundle.Layout.OwnLayers[1];
        var entries = Entries(bundle).Where(e => e.Name != BundleTar.HeaderName(missing)).ToList();

        // Re-sign so only completeness (not the blob count) can catch it... then also with the original signature.
        await Rejects<IntegrityException>(BundleTar.Write(BundleTar.Resign(entries, _key)), null, "incomplete", missing.Digest.ToString(), "referenced by manifest");
        await Rejects<IntegrityException>(BundleTar.Write(entries), null, "incomplete", missing.Digest.ToString());
    }

    [Fact]
    public async Task BundleReader_Read_RejectsBlobCountMismatch()
    {
        var bundle = await Valid();
        var entries = BundleTar.Resign(Entries(bundle), _key, json => json["blobs"]!["count"] = 99);
        await Rejects<IntegrityException>(BundleTar.Write(entries), null, "holds", "says 99");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsManifestLargerThan4MiB()
    {
        // A signed bundle whose index.json points at a 5 MiB "manifest".
        var bundle = await Valid();
        var big = new byte[5 * 1024 * 1024];
        big[0] = (byte)'{';
        var desc = Descriptor.For(MediaTypes.OciManifest, big).WithRefName("example.com/big:1");
        var entries = ForgeIndex(bundle, [desc], [new RawEntry(BundleTar.HeaderName(desc), big)], "example.com/big:1", desc);
        await Rejects<InputException>(BundleTar.Write(entries), null, BundleTar.HeaderName(desc), "larger than the 4194304 byte limit");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsAbsurdEntrySizeBeforeReadingContent()
    {
        var bundle = await Valid();
        var layer = bundle.Layout.SharedLayer;
        var name = BundleTar.HeaderName(layer);
        var huge = 7L * 1024 * 1024 * 1024;
        var bytes = (byte[])bundle.Bytes.Clone();
        BundleTar.SetSize(bytes, name, huge);
        var visitor = new RecordingVisitor();
        await Rejects<IntegrityException>(bytes, visitor, name, huge.ToString(System.Globalization.CultureInfo.InvariantCulture), $"says {layer.Size} bytes");
        Assert.DoesNotContain("blob " + layer.Digest, visitor.Calls);

        // A smaller size than the descriptor is refused the same way.
        bytes = (byte[])bundle.Bytes.Clone();
        BundleTar.SetSize(bytes, name, 3);
        await Rejects<IntegrityException>(bytes, null, name, "is 3 bytes");

        // Head entries have caps of their own.
        bytes = (byte[])bundle.Bytes.Clone();
        BundleTar.SetSize(bytes, BundleFormat.ManifestEntry, huge);
        await Rejects<InputException>(bytes, null, BundleFormat.ManifestEntry, "larger than the");

        bytes = (byte[])bundle.Bytes.Clone();
        BundleTar.SetSize(bytes, BundleFormat.IndexEntry, huge);
        await Rejects<IntegrityException>(bytes, null, BundleFormat.IndexEntry, "but openlm-bundle.json says");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsHugePaxHeader()
    {
        var bundle = await Valid();
        var entries = Entries(bundle);
        var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, leaveOpen: true))
        {
            foreach (var e in entries.Take(4))
            {
                writer.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, e.Name) { DataStream = new MemoryStream(e.Data) });
            }

            var attrs = new Dictionary<string, string> { ["comment"] = new string('a', 200_000) };
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, entries[4].Name, attrs) { DataStream = new MemoryStream(entries[4].Data) });
        }

        await Rejects<IntegrityException>(tar.ToArray(), null, "pax extended header", "limit");
    }

    [Theory]
    [InlineData("../evil", "path traversal")]
    [InlineData("blobs/../../evil", "path traversal")]
    [InlineData("/etc/passwd", "absolute path")]
    [InlineData("README.txt", "unexpected entry 'README.txt'")]
    [InlineData("blobs/sha256/ABCDEF", "unexpected entry")]
    [InlineData("blobs/sha512/0000000000000000000000000000000000000000000000000000000000000000", "unexpected entry")]
    public async Task BundleReader_Read_RejectsBadEntryNames(string name, string expected)
    {
        var bundle = await Valid();
        var entries = Entries(bundle);
        entries.Insert(5, new RawEntry(name, "x"u8.ToArray()));
        await Rejects<IntegrityException>(BundleTar.Write(entries), null, name, expected);
    }

    [Theory]
    [InlineData(TarEntryType.SymbolicLink, "symbolic link")]
    [InlineData(TarEntryType.HardLink, "hard link")]
    [InlineData(TarEntryType.CharacterDevice, "character device")]
    [InlineData(TarEntryType.BlockDevice, "block device")]
    [InlineData(TarEntryType.Fifo, "FIFO")]
    public async Task BundleReader_Read_RejectsNonRegularEntries(TarEntryType type, string expected)
    {
        var bundle = await Valid();
        var entries = Entries(bundle);
        var target = entries[6].Name;
        entries[6] = new RawEntry(target, [], type, type is TarEntryType.SymbolicLink or TarEntryType.HardLink ? "/etc/shadow" : null);
        await Rejects<IntegrityException>(BundleTar.Write(entries), null, target, expected, "only regular files");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsSymlinkInHead()
    {
        var bundle = await Valid();
        var entries = Entries(bundle);
        entries[3] = new RawEntry(BundleFormat.IndexEntry, [], TarEntryType.SymbolicLink, "/etc/passwd");
        await Rejects<IntegrityException>(BundleTar.Write(entries), null, BundleFormat.IndexEntry, "symbolic link", "/etc/passwd");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsUnexpectedDirectory()
    {
        var bundle = await Valid();
        var entries = Entries(bundle);
        entries.Insert(4, new RawEntry("etc/", [], TarEntryType.Directory));
        await Rejects<IntegrityException>(BundleTar.Write(entries), null, "directory entry 'etc/'");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsDuplicateEntries()
    {
        var bundle = await Valid();
        var entries = Entries(bundle);
        entries.Add(entries[^1]);
        await Rejects<IntegrityException>(BundleTar.Write(entries), null, "duplicate entry", entries[^1].Name);

        entries = Entries(bundle);
        entries.Insert(5, entries[3]);
        await Rejects<IntegrityException>(BundleTar.Write(entries), null, "duplicate entry 'index.json'");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsLayerBeforeItsManifest()
    {
        var bundle = await Valid();
        var entries = Entries(bundle);
        var layer = entries.Single(e => e.Name == BundleTar.HeaderName(bundle.Layout.SharedLayer));
        entries.Remove(layer);
        entries.Insert(4, layer);
        await Rejects<IntegrityException>(BundleTar.Write(entries), null, "unexpected entry", layer.Name, "precedes it");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsUnreferencedBlob()
    {
        var bundle = await Valid();
        var extra = "surprise"u8.ToArray();
        var entries = Entries(bundle);
        entries.Add(new RawEntry(BundleFormat.BlobPrefix + Digest.Sha256(extra).Hex, extra));
        await Rejects<IntegrityException>(BundleTar.Write(BundleTar.Resign(entries, _key)), null, "unexpected entry", Digest.Sha256(extra).Hex);
    }

    [Fact]
    public async Task BundleReader_Read_RejectsTamperedIndex()
    {
        var bundle = await Valid();
        var entries = Entries(bundle);
        var text = Encoding.UTF8.GetString(entries[3].Data).Replace("olm-web:2.0.1", "olm-web:6.6.6", StringComparison.Ordinal);
        entries[3] = entries[3] with { Data = Encoding.UTF8.GetBytes(text) };
        await Rejects<IntegrityException>(BundleTar.Write(entries), null, "'index.json' hashes to", "but openlm-bundle.json says");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsTrailingGarbage()
    {
        var bundle = await Valid();
        var bytes = bundle.Bytes.Concat(new byte[1024]).Concat("junk"u8.ToArray()).ToArray();
        await Rejects<IntegrityException>(bytes, null, "after the tar end-of-archive marker");

        // Zero padding (as GNU tar's 10 KiB records leave) is fine.
        var padded = bundle.Bytes.Concat(new byte[9216]).ToArray();
        var result = await BundleReader.ReadAsync(new MemoryStream(padded), new BundleReadOptions { Key = _pub });
        Assert.True(result.Complete);
    }

    [Fact]
    public async Task BundleReader_Read_RejectsNewerFormatVersion()
    {
        var bundle = await Valid();
        var entries = BundleTar.Resign(Entries(bundle), _key, json => json["formatVersion"] = 2);
        await Rejects<InputException>(BundleTar.Write(entries), null, "format version 2", "newer");

        // Even unsigned or with a broken signature the message is about the version.
        using var other = TestKeys.NewSigningKey();
        entries = BundleTar.Resign(Entries(bundle), other, json => json["formatVersion"] = 3);
        await Rejects<InputException>(BundleTar.Write(entries), null, "format version 3");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsDeltaBundleForNow()
    {
        var bundle = await Valid();
        var entries = BundleTar.Resign(Entries(bundle), _key, json => json["base"] = new JsonObject { ["bundleDigest"] = "sha256:" + new string('0', 64) });
        await Rejects<InputException>(BundleTar.Write(entries), null, "delta bundle");
    }

    [Fact]
    public async Task BundleReader_Read_RejectsManifestAndIndexDisagreeing()
    {
        var bundle = await Valid();
        var entries = BundleTar.Resign(Entries(bundle), _key, json => json["images"]![1]!["reference"] = "example.com/other:1");
        await Rejects<InputException>(BundleTar.Write(entries), null, "example.com/other:1", "not in index.json");
    }

    private async Task<WrittenBundle> Valid(BundleWriteOptions? options = null) =>
        await WrittenBundle.CreateAsync(_dir, _key, options, name: $"b-{Guid.NewGuid():N}.tar");

    private static List<RawEntry> Entries(WrittenBundle bundle) => BundleTar.ReadEntries(bundle.Bytes);

    /// <summary>Replaces index.json with one listing <paramref name="roots"/>, swaps the blobs, re-signs.</summary>
    private List<RawEntry> ForgeIndex(WrittenBundle bundle, Descriptor[] roots, RawEntry[] blobs, string reference, Descriptor root)
    {
        var index = BundleWriter.BuildIndex(roots);
        var entries = Entries(bundle).Take(4).ToList();
        entries[3] = entries[3] with { Data = index };
        entries.AddRange(blobs);
        return BundleTar.Resign(entries, _key, json =>
        {
            json["images"] = new JsonArray(new JsonObject
            {
                ["reference"] = reference,
                ["digest"] = root.Digest.ToString(),
                ["mediaType"] = root.MediaType,
                ["platforms"] = new JsonArray(),
                ["size"] = root.Size,
                ["values"] = new JsonArray(),
            });
        });
    }

    private async Task<Exception> Rejects<T>(byte[] bundle, IBundleVisitor? visitor, params string[] fragments)
        where T : MirrorException
    {
        var ex = await Assert.ThrowsAsync<T>(() => BundleReader.ReadAsync(new MemoryStream(bundle), new BundleReadOptions { Key = _pub, Visitor = visitor }));
        foreach (var fragment in fragments)
        {
            Assert.Contains(fragment, ex.Message, StringComparison.Ordinal);
        }

        return ex;
    }
}
