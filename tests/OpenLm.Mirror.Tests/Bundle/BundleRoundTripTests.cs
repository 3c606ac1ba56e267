using System.Formats.Tar;
using System.Text;
using System.Text.Json;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.Bundle;

public sealed class BundleRoundTripTests
{
    [Fact]
    public async Task BundleReader_Read_VerifiesBundleFromWriter()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        using var pub = key.GetVerificationKey();
        var bundle = await WrittenBundle.CreateAsync(dir, key);
        var visitor = new RecordingVisitor();

        var result = await bundle.ReadAsync(pub, visitor);

        Assert.True(result.Complete);
        Assert.Equal(SignatureStatus.Verified, result.Head.Signature);
        Assert.Equal(key.KeyId, result.Head.VerifiedKeyId);
        Assert.False(result.Head.Compressed);
        var unique = bundle.Layout.AllBlobs.DistinctBy(b => b.Digest).ToList();
        Assert.Equal(unique.Count, result.BlobCount);
        Assert.Equal(bundle.Layout.UniqueBytes, result.BlobBytes);
        Assert.Equal(unique.Count, result.Head.Manifest.Blobs!.Count);
        Assert.Equal(bundle.Layout.UniqueBytes, result.Head.Manifest.Blobs.TotalBytes);

        // Every blob reached the visitor with its exact bytes.
        foreach (var blob in unique)
        {
            Assert.Equal(await File.ReadAllBytesAsync(bundle.Layout.Store.BlobPath(blob.Digest)), visitor.Blobs[blob.Digest]);
        }

        Assert.Equal("head", visitor.Calls[0]);
        Assert.Equal("completed", visitor.Calls[^1]);
        Assert.Same(result, visitor.Completed);

        // Manifests (index first, parents first) come before configs and layers.
        var manifestCalls = visitor.Calls.Select((c, i) => (c, i)).Where(x => x.c.StartsWith("manifest ", StringComparison.Ordinal)).ToList();
        var firstBlobCall = visitor.Calls.FindIndex(c => c.StartsWith("blob ", StringComparison.Ordinal));
        Assert.Equal(4, manifestCalls.Count); // server index, its two manifests, web manifest
        Assert.True(manifestCalls.Max(x => x.i) < firstBlobCall);

        // Children before parents for pushing.
        var order = result.ManifestsChildrenFirst.Select(d => d.Digest).ToList();
        Assert.Equal(4, order.Count);
        Assert.True(order.IndexOf(bundle.Layout.ServerIndex.Digest) > order.IndexOf(visitor.Calls
            .Where(c => c.StartsWith("manifest ", StringComparison.Ordinal))
            .Select(c => Digest.Parse(c["manifest ".Length..]))
            .First(d => d != bundle.Layout.ServerIndex.Digest && d != bundle.Layout.WebManifest.Digest)));
    }

    [Fact]
    public async Task BundleWriter_Write_FillsManifest()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var bundle = await WrittenBundle.CreateAsync(dir, key);
        var m = bundle.Result.Manifest;

        Assert.Equal(1, m.FormatVersion);
        Assert.Equal("olm", m.Platform.Name);
        Assert.Equal(key.KeyId, m.Signer!.KeyId);
        Assert.Null(m.Base);
        Assert.Null(m.Parts);
        Assert.Equal([TestLayout.ServerRef, TestLayout.WebRef], m.Images.Select(i => i.Reference));

        var server = m.Images[0];
        Assert.Equal(bundle.Layout.ServerIndex.Digest.ToString(), server.Digest);
        Assert.Equal(MediaTypes.OciIndex, server.MediaType);
        Assert.Equal(["linux/amd64", "linux/arm64/v8"], server.Platforms);
        Assert.Equal(["server.image", "worker.image"], server.Values);

        var web = m.Images[1];
        Assert.Equal(["linux/amd64"], web.Platforms);
        Assert.Equal(MediaTypes.OciManifest, web.MediaType);

        // Image size: unique bytes the image needs, manifests included; the shared layer counts once per image.
        // The two images share only the base layer, so their sizes add up to the unique bytes plus that layer.
        Assert.True(server.Size > web.Size);
        Assert.True(server.Size < bundle.Layout.UniqueBytes);
        Assert.Equal(bundle.Layout.UniqueBytes + bundle.Layout.SharedLayer.Size, server.Size + web.Size);

        // The stored bytes are what the result says.
        var entries = BundleTar.ReadEntries(bundle.Bytes);
        var stored = entries.Single(e => e.Name == BundleFormat.ManifestEntry).Data;
        Assert.Equal(BundleFormat.SerializeManifest(m), stored);
        Assert.Equal(bundle.Result.BundleDigest, Digest.Sha256(stored));
        var text = Encoding.UTF8.GetString(stored);
        Assert.EndsWith("}\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\r", text, StringComparison.Ordinal);
        Assert.Contains("\"base\": null", text, StringComparison.Ordinal);
        Assert.Contains("\"parts\": null", text, StringComparison.Ordinal);
        Assert.True(text.IndexOf("\"formatVersion\"", StringComparison.Ordinal) < text.IndexOf("\"platform\"", StringComparison.Ordinal));
        Assert.True(text.IndexOf("\"signer\"", StringComparison.Ordinal) < text.IndexOf("\"base\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task BundleWriter_Write_EntryOrderAndHeadersAreDeterministicTar()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var bundle = await WrittenBundle.CreateAsync(dir, key, new BundleWriteOptions { SourceDateEpoch = DateTimeOffset.FromUnixTimeSeconds(1_784_216_400) });

        using var reader = new TarReader(new MemoryStream(bundle.Bytes));
        var names = new List<string>();
        while (reader.GetNextEntry() is { } e)
        {
            names.Add(e.Name);
            Assert.Equal(TarEntryType.RegularFile, e.EntryType);

            // Ustar, or pax whose only records are the alignment comment (and a size for 8 GiB and more).
            if (e.Format == TarEntryFormat.Pax)
            {
                var records = ((PaxTarEntry)e).ExtendedAttributes;
                Assert.StartsWith(TarHeaders.AlignmentComment, records["comment"], StringComparison.Ordinal);
                Assert.All(records.Keys, k => Assert.Contains(k, new[] { "comment", "size", "path", "mtime" }));
            }
            else
            {
                Assert.Equal(TarEntryFormat.Ustar, e.Format);
            }

            Assert.Equal(0, e.Uid);
            Assert.Equal(0, e.Gid);
            Assert.Equal(string.Empty, ((PosixTarEntry)e).UserName);
            Assert.Equal(string.Empty, ((PosixTarEntry)e).GroupName);
            Assert.Equal((UnixFileMode)0b110_100_100, e.Mode);
            Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_784_216_400), e.ModificationTime);
        }

        Assert.Equal([BundleFormat.OciLayoutEntry, BundleFormat.ManifestEntry, BundleFormat.SignatureEntry, BundleFormat.IndexEntry], names.Take(4));
        var blobs = names.Skip(4).Select(n => Digest.Parse("sha256:" + n[BundleFormat.BlobPrefix.Length..])).ToList();
        Assert.Equal(blobs.Count, blobs.Distinct().Count());

        // Group order: manifests (server index before its children), configs sorted, layers sorted.
        var layers = bundle.Layout.OwnLayers.Append(bundle.Layout.SharedLayer).Select(l => l.Digest).ToHashSet();
        var layerPositions = blobs.Select((d, i) => (d, i)).Where(x => layers.Contains(x.d)).Select(x => x.i).ToList();
        Assert.Equal(Enumerable.Range(blobs.Count - layers.Count, layers.Count), layerPositions);
        var layerNames = blobs.Skip(blobs.Count - layers.Count).Select(d => d.ToString()).ToList();
        Assert.Equal(layerNames.Order(StringComparer.Ordinal), layerNames);
        Assert.True(blobs.IndexOf(bundle.Layout.ServerIndex.Digest) < 2);

        // created follows SOURCE_DATE_EPOCH.
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_784_216_400), bundle.Result.Manifest.Created);
        Assert.Contains("\"created\": \"2026-07-16T15:40:00Z\"", Encoding.UTF8.GetString(BundleTar.ReadEntries(bundle.Bytes)[1].Data), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BundleWriter_Write_TwiceGivesIdenticalBytes()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var layout = await TestLayout.CreateAsync(dir.File("layout"));
        var options = new BundleWriteOptions { SourceDateEpoch = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) };

        await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, dir.File("a.tar"), options);
        await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, dir.File("b.tar"), options);
        await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, dir.File("a.tar.zst"), options with { Compression = BundleCompression.Zstd });
        await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, dir.File("b.tar.zst"), options with { Compression = BundleCompression.Zstd });

        var a = await File.ReadAllBytesAsync(dir.File("a.tar"));
        var b = await File.ReadAllBytesAsync(dir.File("b.tar"));

        // ECDSA signatures are randomised, so everything but the signature entry must match byte for byte.
        var ea = BundleTar.ReadEntries(a);
        var eb = BundleTar.ReadEntries(b);
        Assert.Equal(ea.Select(e => e.Name), eb.Select(e => e.Name));
        foreach (var (x, y) in ea.Zip(eb).Where(p => p.First.Name != BundleFormat.SignatureEntry))
        {
            Assert.Equal(x.Data, y.Data);
        }

        Assert.Equal(a.Length, b.Length);
        var sigOffset = FindEntryDataOffset(a, BundleFormat.SignatureEntry);
        var differing = Enumerable.Range(0, a.Length).Where(i => a[i] != b[i]).ToList();
        Assert.All(differing, i => Assert.InRange(i, sigOffset - 512, sigOffset + 512));

        // With the same signature bytes the files are identical: pin the signature and compare.
        var patched = (byte[])b.Clone();
        Array.Copy(a, sigOffset - 512, patched, sigOffset - 512, 1024);
        Assert.Equal(a, patched);

        // The zstd bundles decompress to the same kind of tar.
        using var za = new ZstdSharp.DecompressionStream(new MemoryStream(await File.ReadAllBytesAsync(dir.File("a.tar.zst"))));
        var unpacked = new MemoryStream();
        await za.CopyToAsync(unpacked);
        Assert.Equal(a.Length, unpacked.Length);
    }

    [Fact]
    public async Task BundleWriter_Write_DeterministicWithSameKeySignature()
    {
        // ECDSA here is randomised; determinism is about everything the writer controls. Verify the
        // manifest bytes (what is signed) are identical between runs and independent of wall-clock time.
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var layout = await TestLayout.CreateAsync(dir.File("layout"));
        var manifest = TestLayout.BaseManifest() with { Created = null };
        var options = new BundleWriteOptions { SourceDateEpoch = DateTimeOffset.FromUnixTimeSeconds(86400) };
        var r1 = await BundleWriter.WriteAsync(layout.Store, manifest, key, dir.File("1.tar"), options);
        await Task.Delay(1100);
        var r2 = await BundleWriter.WriteAsync(layout.Store, manifest, key, dir.File("2.tar"), options);
        Assert.Equal(r1.BundleDigest, r2.BundleDigest);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(86400), r1.Manifest.Created);
    }

    [Fact]
    public async Task BundleWriter_Write_WithoutSourceDateEpochUsesZeroMtime()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var bundle = await WrittenBundle.CreateAsync(dir, key);
        using var reader = new TarReader(new MemoryStream(bundle.Bytes));
        while (reader.GetNextEntry() is { } e)
        {
            Assert.Equal(DateTimeOffset.UnixEpoch, e.ModificationTime);
        }

        // created came from the manifest given to the writer.
        Assert.Equal(new DateTimeOffset(2026, 7, 16, 15, 40, 0, TimeSpan.Zero), bundle.Result.Manifest.Created);
    }

    [Fact]
    public void BundleFormat_ParseSourceDateEpoch_AcceptsSecondsAndRejectsJunk()
    {
        Assert.Null(BundleFormat.ParseSourceDateEpoch(null));
        Assert.Null(BundleFormat.ParseSourceDateEpoch(""));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), BundleFormat.ParseSourceDateEpoch("1700000000"));
        var ex = Assert.Throws<Errors.InputException>(() => BundleFormat.ParseSourceDateEpoch("-5"));
        Assert.Contains("SOURCE_DATE_EPOCH", ex.Message, StringComparison.Ordinal);
        Assert.Throws<Errors.InputException>(() => BundleFormat.ParseSourceDateEpoch("yesterday"));
    }

    [Fact]
    public async Task BundleWriter_Write_ZstdRoundTrip()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        using var pub = key.GetVerificationKey();
        var options = new BundleWriteOptions { Compression = BundleCompression.Zstd, SourceDateEpoch = DateTimeOffset.FromUnixTimeSeconds(0) };
        var bundle = await WrittenBundle.CreateAsync(dir, key, options, name: "bundle.tar.zst");

        Assert.Equal(BundleFormat.ZstdMagic.ToArray(), bundle.Bytes.Take(4));
        Assert.Equal(bundle.Bytes.Length, bundle.Result.FileBytes);

        var visitor = new RecordingVisitor();
        var result = await BundleReader.ReadAsync(bundle.Path, new BundleReadOptions { Key = pub, Visitor = visitor });
        Assert.True(result.Complete);
        Assert.True(result.Head.Compressed);
        Assert.Equal(bundle.Layout.AllBlobs.DistinctBy(b => b.Digest).Count(), visitor.Blobs.Count);

        // The inner tar is exactly what an uncompressed write produces (apart from the randomised signature).
        using var zstd = new ZstdSharp.DecompressionStream(new MemoryStream(bundle.Bytes));
        var tar = new MemoryStream();
        await zstd.CopyToAsync(tar);
        Assert.Equal(bundle.Result.TarBytes, tar.Length);
        var inner = BundleTar.ReadEntries(tar.ToArray());
        Assert.Equal(result.Head.ManifestBytes.ToArray(), inner[1].Data);

        // The system zstd + tar (if present) agree; GNU tar at least lists the plain tar.
        var plain = dir.File("plain.tar");
        await File.WriteAllBytesAsync(plain, tar.ToArray());
        var (code, stdout, stderr) = Tool.Run("tar", "-tf", plain);
        Assert.True(code == 0, stderr);
        Assert.Equal(inner.Select(e => e.Name), stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task BundleWriter_Write_SizeWithinOnePercentOfUniqueBlobBytes()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var bundle = await WrittenBundle.CreateAsync(dir, key, layerSize: 512 * 1024);
        var unique = bundle.Layout.UniqueBytes;
        Assert.True(bundle.Bytes.Length <= unique + (unique / 100), $"bundle {bundle.Bytes.Length} bytes, unique blobs {unique}");
        Assert.Equal(bundle.Bytes.Length, bundle.Result.TarBytes);
    }

    [Fact]
    public async Task BundleReader_Read_VisitorReadingPartOfBlobStillVerifies()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        using var pub = key.GetVerificationKey();
        var bundle = await WrittenBundle.CreateAsync(dir, key);
        var visitor = new RecordingVisitor { ReadLimit = 10 };
        var result = await bundle.ReadAsync(pub, visitor);
        Assert.True(result.Complete);
        Assert.All(visitor.Blobs.Where(b => !result.ManifestsChildrenFirst.Any(m => m.Digest == b.Key)), b => Assert.True(b.Value.Length <= 10));
    }

    [Fact]
    public async Task BundleReader_Read_UnsignedAllowedWhenNotRequired()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var bundle = await WrittenBundle.CreateAsync(dir, key);
        var entries = BundleTar.ReadEntries(bundle.Bytes).Where(e => e.Name != BundleFormat.SignatureEntry).ToList();
        var unsigned = BundleTar.Write(entries);

        var result = await BundleReader.ReadAsync(new MemoryStream(unsigned), new BundleReadOptions { RequireSignature = false });
        Assert.True(result.Complete);
        Assert.Equal(SignatureStatus.Absent, result.Head.Signature);
        Assert.False(result.Head.SignatureChecked);

        var signedButUnchecked = await BundleReader.ReadAsync(new MemoryStream(bundle.Bytes), new BundleReadOptions { RequireSignature = false });
        Assert.Equal(SignatureStatus.NotChecked, signedButUnchecked.Head.Signature);
    }

    [Fact]
    public async Task BundleReader_Read_AcceptsPaxRewriteAndHarmlessDirectories()
    {
        // The same content re-packed by another pax writer (System.Formats.Tar adds an x header per entry),
        // with blobs/ and blobs/sha256/ directory entries, is still a valid bundle.
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        using var pub = key.GetVerificationKey();
        var bundle = await WrittenBundle.CreateAsync(dir, key);
        var entries = BundleTar.ReadEntries(bundle.Bytes);
        entries.Insert(4, new RawEntry("blobs/", [], TarEntryType.Directory));
        entries.Insert(5, new RawEntry("blobs/sha256/", [], TarEntryType.Directory));
        foreach (var format in new[] { TarEntryFormat.Pax, TarEntryFormat.Gnu, TarEntryFormat.Ustar })
        {
            var result = await BundleReader.ReadAsync(new MemoryStream(BundleTar.Write(entries, format)), new BundleReadOptions { Key = pub });
            Assert.True(result.Complete);
        }
    }

    [Fact]
    public async Task BundleReader_Read_ToleratesUnknownManifestFields()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        using var pub = key.GetVerificationKey();
        var bundle = await WrittenBundle.CreateAsync(dir, key);
        var entries = BundleTar.Resign(BundleTar.ReadEntries(bundle.Bytes), key, json =>
        {
            json["futureField"] = new System.Text.Json.Nodes.JsonObject { ["x"] = 1 };
            json["images"]![0]!.AsObject()["futureImageField"] = "y";
        });
        var result = await BundleReader.ReadAsync(new MemoryStream(BundleTar.Write(entries)), new BundleReadOptions { Key = pub });
        Assert.True(result.Complete);
        Assert.Equal(TestLayout.ServerRef, result.Head.Manifest.Images[0].Reference);
    }

    [Fact]
    public async Task BundleInspector_Inspect_WorksWithoutKeyAndChecksWithKey()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        using var pub = key.GetVerificationKey();
        using var other = TestKeys.NewSigningKey();
        using var otherPub = other.GetVerificationKey();
        var bundle = await WrittenBundle.CreateAsync(dir, key);

        var unchecked_ = await BundleInspector.InspectAsync(bundle.Path);
        Assert.Equal(SignatureStatus.NotChecked, unchecked_.Signature);
        Assert.False(unchecked_.SignatureChecked);
        Assert.Equal(bundle.Result.Manifest, unchecked_.Manifest with { Images = bundle.Result.Manifest.Images, Charts = bundle.Result.Manifest.Charts });
        Assert.Equal([TestLayout.ServerRef, TestLayout.WebRef], unchecked_.Images.Select(i => i.RefName));
        Assert.Equal(bundle.Result.BundleDigest, unchecked_.BundleDigest);

        var checked_ = await BundleInspector.InspectAsync(bundle.Path, pub);
        Assert.True(checked_.SignatureChecked);

        var ex = await Assert.ThrowsAsync<Errors.IntegrityException>(() => BundleInspector.InspectAsync(bundle.Path, otherPub));
        Assert.Contains("does not verify", ex.Message, StringComparison.Ordinal);

        // Inspect reads only the head: a bundle cut right after index.json still inspects.
        var head = BundleTar.Write(BundleTar.ReadEntries(bundle.Bytes).Take(4));
        var fromHead = await BundleInspector.InspectAsync(new MemoryStream(head), pub);
        Assert.True(fromHead.SignatureChecked);
    }

    [Fact]
    public async Task BundleReader_Read_SkopeoReadsImagesFromBundle()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var bundle = await WrittenBundle.CreateAsync(dir, key);

        var (code, stdout, stderr) = Tool.Run("skopeo", "inspect", "--raw", $"oci-archive:{bundle.Path}:{TestLayout.ServerRef}");
        Assert.True(code == 0, stderr);
        Assert.Equal(bundle.Layout.ServerIndex.Digest, Digest.Sha256(Encoding.UTF8.GetBytes(stdout)));

        (code, stdout, stderr) = Tool.Run("skopeo", "inspect", $"oci-archive:{bundle.Path}:{TestLayout.WebRef}");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal(bundle.Layout.WebManifest.Digest.ToString(), doc.RootElement.GetProperty("Digest").GetString());
        Assert.Equal("amd64", doc.RootElement.GetProperty("Architecture").GetString());
        Assert.Equal(2, doc.RootElement.GetProperty("Layers").GetArrayLength());
    }

    [Fact]
    public async Task HelmChartPacker_Pack_StoresChartAndBundleListsIt()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        using var pub = key.GetVerificationKey();
        var layout = await TestLayout.CreateAsync(dir.File("layout"));
        var tgz = dir.File("olm-1.2.3+build.1.tgz");
        await WriteChartAsync(tgz, "olm", "1.2.3+build.1");

        var chart = await HelmChartPacker.PackAsync(layout.Store, tgz, TestLayout.Registry);
        Assert.Equal($"{TestLayout.Registry}/charts/olm:1.2.3_build.1", chart.Reference);
        Assert.Equal("olm", chart.Name);
        Assert.Equal("1.2.3+build.1", chart.Version);

        var manifestBytes = await File.ReadAllBytesAsync(layout.Store.BlobPath(chart.Manifest.Digest));
        var doc = ManifestDocument.Parse(manifestBytes, MediaTypes.OciManifest, "chart");
        Assert.Equal(MediaTypes.HelmConfig, doc.Config!.MediaType);
        Assert.Equal(MediaTypes.HelmChart, Assert.Single(doc.Layers).MediaType);
        Assert.Equal(await File.ReadAllBytesAsync(tgz), await File.ReadAllBytesAsync(layout.Store.BlobPath(doc.Layers[0].Digest)));
        using (var config = JsonDocument.Parse(await File.ReadAllBytesAsync(layout.Store.BlobPath(doc.Config.Digest))))
        {
            Assert.Equal(["name", "version", "description", "apiVersion", "appVersion"], config.RootElement.EnumerateObject().Select(p => p.Name));
            Assert.Equal("v2", config.RootElement.GetProperty("apiVersion").GetString());
        }

        var path = dir.File("bundle.tar");
        var written = await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, path);
        var listed = Assert.Single(written.Manifest.Charts);
        Assert.Equal(new BundleChart { Name = "olm", Version = "1.2.3+build.1", Reference = chart.Reference, Digest = chart.Manifest.Digest.ToString() }, listed);
        Assert.DoesNotContain(written.Manifest.Images, i => i.Reference == chart.Reference);

        var result = await BundleReader.ReadAsync(path, new BundleReadOptions { Key = pub });
        Assert.True(result.Complete);
        Assert.Contains(result.Head.Images, i => i.RefName == chart.Reference);
    }

    internal static async Task WriteChartAsync(string path, string name, string version)
    {
        await using var file = File.Create(path);
        await using var gzip = new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionLevel.Optimal);
        await using var tar = new TarWriter(gzip, TarEntryFormat.Pax);
        var yaml = $"apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"1.0\"\ndescription: OLM server\ntype: application\n";
        foreach (var (entryName, content) in new[] { ($"{name}/Chart.yaml", yaml), ($"{name}/values.yaml", "image: x\n") })
        {
            var entry = new PaxTarEntry(TarEntryType.RegularFile, entryName) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) };
            await tar.WriteEntryAsync(entry);
        }
    }

    internal static int FindEntryDataOffset(byte[] tar, string name)
    {
        var nameBytes = Encoding.ASCII.GetBytes(name + "\0");
        for (var offset = 0; offset + 512 <= tar.Length; offset += 512)
        {
            if (tar.AsSpan(offset, nameBytes.Length).SequenceEqual(nameBytes))
            {
                return offset + 512;
            }
        }

        throw new InvalidOperationException(name);
    }
}
