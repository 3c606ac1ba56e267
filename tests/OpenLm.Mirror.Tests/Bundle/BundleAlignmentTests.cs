using System.Formats.Tar;
using System.Security.Cryptography;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.Bundle;

/// <summary>
/// Export writes each byte once: config and layer data start on 4 KiB boundaries (a pax comment pads the header),
/// the head ends on one, blobs go from the cache's files into the bundle in the kernel, and the bytes stay the ones
/// every reader (ours, System.Formats.Tar, GNU tar) reads.
/// </summary>
public sealed class BundleAlignmentTests : IDisposable
{
    private const int LayerSize = (int)BundleWriter.AlignmentThreshold + 777;
    private static readonly BundleWriteOptions Pinned = new() { SourceDateEpoch = DateTimeOffset.FromUnixTimeSeconds(1_784_216_400) };
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void TarHeaders_AlignedRegularFile_DataStartsOnTheBoundaryFromEveryBlockOffset()
    {
        foreach (var size in new long[] { 0, 1, 511, 512, 1 << 20, TarHeaders.MaxUstarSize + 1 })
        {
            for (long offset = 0; offset < 2 * TarHeaders.DataAlignment; offset += TarHeaders.BlockSize)
            {
                var header = TarHeaders.AlignedRegularFile("blobs/sha256/ab", size, 1_700_000_000, offset);
                Assert.Equal(0, (offset + header.Length) % TarHeaders.DataAlignment);
                Assert.Equal(header.Length, TarHeaders.AlignedHeaderLength(offset, size));
                Assert.Equal(header.Length + size + TarHeaders.Padding(size), TarHeaders.AlignedEntryLength(offset, size));

                // Our strict reader and System.Formats.Tar both see one regular file of that name and size.
                var (name, read) = ReadOneHeader(header, size, offset);
                Assert.Equal("blobs/sha256/ab", name);
                Assert.Equal(size, read);
            }
        }
    }

    [Fact]
    public void TarHeaders_AlignedRegularFile_WithResidueEndsAOneBlockEntryOnTheBoundary()
    {
        for (long offset = 0; offset < TarHeaders.DataAlignment; offset += TarHeaders.BlockSize)
        {
            var header = TarHeaders.AlignedRegularFile("openlm-bundle.sig", 97, 0, offset, TarHeaders.DataAlignment - TarHeaders.BlockSize);
            Assert.Equal(0, (offset + header.Length + TarHeaders.BlockSize) % TarHeaders.DataAlignment);
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => TarHeaders.AlignedHeaderLength(0, 1, 100));
        Assert.Throws<ArgumentException>(() => TarHeaders.AlignedHeaderLength(100, 1));
    }

    [Fact]
    public async Task BundleWriter_Write_LargeBlobDataAndTheBodyStartOn4KiBBoundaries()
    {
        using var key = TestKeys.NewSigningKey();
        var layout = await TestLayout.CreateAsync(_dir.File("layout"), LayerSize);
        var result = await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, _dir.File("b.tar"), Pinned);
        var bytes = await File.ReadAllBytesAsync(_dir.File("b.tar"));
        Assert.Equal(result.TarBytes, bytes.Length);

        var offsets = DataOffsets(bytes);
        Assert.Equal(0, FindHeaderOffset(bytes, BundleFormat.IndexEntry) % TarHeaders.DataAlignment);
        var large = layout.AllBlobs.Where(b => b.Size >= BundleWriter.AlignmentThreshold).DistinctBy(b => b.Digest).ToList();
        Assert.NotEmpty(large);
        Assert.All(large, b => Assert.Equal(0, offsets[BundleTar.HeaderName(b)] % TarHeaders.DataAlignment));

        // Small blobs stay plain ustar entries: padding them would cost more than it saves.
        var small = layout.AllBlobs.Where(b => b.Size < BundleWriter.AlignmentThreshold && b.MediaType == MediaTypes.OciConfig).ToList();
        Assert.NotEmpty(small);
        Assert.All(small, b => Assert.Equal(offsets[BundleTar.HeaderName(b)] - TarHeaders.BlockSize, HeaderStart(bytes, BundleTar.HeaderName(b))));
    }

    [Fact]
    public async Task BundleWriter_Write_CopiedFromTheCacheAndStreamedGiveTheSameBytesAndBothVerify()
    {
        // Given a layout that pushed its blobs itself (copied without hashing again) and the same layout reopened
        // (every blob hashed from its file while copied)
        using var key = TestKeys.NewSigningKey();
        using var pub = key.GetVerificationKey();
        var layout = await TestLayout.CreateAsync(_dir.File("layout"), LayerSize);
        Assert.All(layout.AllBlobs, b => Assert.True(layout.Store.VerifiedByThisInstance(b)));
        var reopened = OciLayoutStore.Open(_dir.File("layout"), create: false);
        Assert.All(layout.AllBlobs, b => Assert.False(reopened.VerifiedByThisInstance(b)));

        // When both write the bundle, and the zstd writer (a stream, no file ranges) too
        await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, _dir.File("a.tar"), Pinned);
        await BundleWriter.WriteAsync(reopened, TestLayout.BaseManifest(), key, _dir.File("b.tar"), Pinned);
        await BundleWriter.WriteAsync(reopened, TestLayout.BaseManifest(), key, _dir.File("c.tar.zst"), Pinned with { Compression = BundleCompression.Zstd });

        // Then the tar bytes are identical (the randomised signature pinned) and each verifies completely
        var a = await File.ReadAllBytesAsync(_dir.File("a.tar"));
        var b = PinSignature(a, await File.ReadAllBytesAsync(_dir.File("b.tar")));
        Assert.Equal(a, b);
        using (var zstd = new ZstdSharp.DecompressionStream(File.OpenRead(_dir.File("c.tar.zst"))))
        {
            var unpacked = new MemoryStream();
            await zstd.CopyToAsync(unpacked);
            Assert.Equal(a, PinSignature(a, unpacked.ToArray()));
        }

        foreach (var name in new[] { "a.tar", "b.tar", "c.tar.zst" })
        {
            Assert.True((await BundleReader.ReadAsync(_dir.File(name), new BundleReadOptions { Key = pub })).Complete, name);
        }
    }

    [Fact]
    public async Task BundleWriter_Write_GnuTarListsAndExtractsTheAlignedBundle()
    {
        using var key = TestKeys.NewSigningKey();
        var layout = await TestLayout.CreateAsync(_dir.File("layout"), LayerSize);
        await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, _dir.File("b.tar"), Pinned);

        var (code, stdout, stderr) = Tool.Run("tar", "-tf", _dir.File("b.tar"));
        Assert.True(code == 0, stderr);
        var names = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal([BundleFormat.OciLayoutEntry, BundleFormat.ManifestEntry, BundleFormat.SignatureEntry, BundleFormat.IndexEntry], names.Take(4));
        Assert.DoesNotContain(names, n => n.Contains("PaxHeaders", StringComparison.Ordinal));

        Directory.CreateDirectory(_dir.File("x"));
        (code, _, stderr) = Tool.Run("tar", "-xf", _dir.File("b.tar"), "-C", _dir.File("x"));
        Assert.True(code == 0, stderr);
        foreach (var blob in layout.AllBlobs.DistinctBy(b => b.Digest))
        {
            var extracted = await File.ReadAllBytesAsync(Path.Combine(_dir.File("x"), BundleTar.HeaderName(blob)));
            Assert.Equal(blob.Digest, Digest.Sha256(extracted));
        }
    }

    [Fact]
    public async Task BundleWriter_Write_DamagedBlobFromAnEarlierRunIsCaughtWhileCopied()
    {
        // Given a cache blob rewritten in place after it was verified (same size, different bytes)
        using var key = TestKeys.NewSigningKey();
        var layout = await TestLayout.CreateAsync(_dir.File("layout"), LayerSize);
        var layer = layout.OwnLayers[0];
        var path = layout.Store.BlobPath(layer.Digest);
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[bytes.Length / 2] ^= 0x5A;
        await File.WriteAllBytesAsync(path, bytes);
        File.SetLastWriteTimeUtc(path, File.GetLastWriteTimeUtc(path).AddSeconds(5));

        // When the bundle is written (by the instance that verified it, and by a reopened one)
        foreach (var store in new[] { layout.Store, OciLayoutStore.Open(_dir.File("layout"), create: false) })
        {
            Assert.False(store.VerifiedByThisInstance(layer));
            var ex = await Assert.ThrowsAsync<IntegrityException>(() => BundleWriter.WriteAsync(store, TestLayout.BaseManifest(), key, _dir.File("b.tar"), Pinned));

            // Then the damaged blob is named and nothing is left behind
            Assert.Contains(layer.Digest.ToString(), ex.Message, StringComparison.Ordinal);
            Assert.Contains("digest mismatch", ex.Message, StringComparison.Ordinal);
            Assert.Empty(Directory.GetFiles(_dir.Path, "b.tar*"));
        }
    }

    [Fact]
    public async Task BundleWriter_WriteInParts_BodyIsTheSingleFilesBodyAndEveryPartHashMatchesItsFile()
    {
        using var key = TestKeys.NewSigningKey();
        using var pub = key.GetVerificationKey();
        var layout = await TestLayout.CreateAsync(_dir.File("layout"), LayerSize);
        var single = await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, _dir.File("one.tar"), Pinned);
        var parts = await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, _dir.File("p.tar"), Pinned with { SplitSize = 1 << 20 });

        var table = parts.Manifest.Parts!;
        Assert.Equal(0, table.BodyOffset % TarHeaders.DataAlignment);
        Assert.True(table.Files.Count > 2);
        var joined = new MemoryStream();
        foreach (var part in table.Files)
        {
            var file = await File.ReadAllBytesAsync(BundlePartSet.PartPath(_dir.File("p.tar"), part.Index));
            Assert.Equal(part.Size, file.Length);
            var from = part.Index == 1 ? (int)table.BodyOffset : 0;
            Assert.Equal(part.Sha256, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(file.AsSpan(from))));
            joined.Write(file);
        }

        // The body after the head is byte for byte the single file's (alignment does not depend on the head).
        var one = await File.ReadAllBytesAsync(single.OutputPath);
        var singleBody = one.AsSpan((int)FindHeaderOffset(one, BundleFormat.IndexEntry));
        Assert.True(singleBody.SequenceEqual(joined.ToArray().AsSpan((int)table.BodyOffset)));
        Assert.True((await BundleReader.ReadAsync(parts.PartPaths[0], new BundleReadOptions { Key = pub })).Complete);
    }

    [Fact]
    public void FileRangeCopy_Copy_KernelAndStreamFallbackGiveTheSameBytesAtUnalignedOffsets()
    {
        var content = RandomNumberGenerator.GetBytes((3 << 20) + 123);
        File.WriteAllBytes(_dir.File("src"), content);
        foreach (var force in new[] { false, true })
        {
            var target = _dir.File($"dst-{force}");
            File.WriteAllBytes(target, new byte[1000]);
            FileRangeCopy.ForceStreamFallback = force;
            try
            {
                using var source = File.OpenHandle(_dir.File("src"));
                using var destination = File.OpenHandle(target, FileMode.Open, FileAccess.ReadWrite);
                long reported = 0;
                var method = FileRangeCopy.Copy(source, 7, destination, 777, content.Length - 7, n => reported += n);
                if (force)
                {
                    Assert.Equal(FileCopyMethod.Stream, method);
                }

                Assert.Equal(content.Length - 7, reported);
            }
            finally
            {
                FileRangeCopy.ForceStreamFallback = false;
            }

            var written = File.ReadAllBytes(target);
            Assert.Equal(777 + content.Length - 7, written.Length);
            Assert.True(written.AsSpan(0, 777).SequenceEqual(new byte[777]));
            Assert.True(written.AsSpan(777).SequenceEqual(content.AsSpan(7)));
        }
    }

    [Fact]
    public void FileRangeCopy_Copy_AcrossFileSystemsFallsBackAndAShortSourceIsAnError()
    {
        // /dev/shm (tmpfs) to the temp directory: copy_file_range refuses (EXDEV) where the file systems differ.
        var shm = Directory.Exists("/dev/shm") ? Path.Combine("/dev/shm", $"openlm-copy-{Guid.NewGuid():N}") : _dir.File("shm-src");
        try
        {
            var content = RandomNumberGenerator.GetBytes(100_000);
            File.WriteAllBytes(shm, content);
            using (var source = File.OpenHandle(shm))
            using (var destination = File.OpenHandle(_dir.File("dst"), FileMode.Create, FileAccess.ReadWrite))
            {
                FileRangeCopy.Copy(source, 0, destination, 4096, content.Length);
                Assert.Throws<EndOfStreamException>(() => FileRangeCopy.Copy(source, 50_000, destination, 200_000, 60_000));
            }

            Assert.True(File.ReadAllBytes(_dir.File("dst")).AsSpan(4096, content.Length).SequenceEqual(content));
        }
        finally
        {
            File.Delete(shm);
        }
    }

    private static byte[] PinSignature(byte[] reference, byte[] other)
    {
        var at = (int)FindHeaderOffset(reference, BundleFormat.SignatureEntry);
        var end = (int)FindHeaderOffset(reference, BundleFormat.IndexEntry);
        Assert.Equal(at, FindHeaderOffset(other, BundleFormat.SignatureEntry));
        var patched = (byte[])other.Clone();
        Array.Copy(reference, at, patched, at, end - at);
        return patched;
    }

    /// <summary>Offset of the first header (pax or ustar) of the entry named <paramref name="name"/>.</summary>
    private static long FindHeaderOffset(byte[] tar, string name) => HeaderStart(tar, name);

    private static long HeaderStart(byte[] tar, string name)
    {
        long at = 0;
        long? paxStart = null;
        while (at + TarHeaders.BlockSize <= tar.Length && tar.AsSpan((int)at, TarHeaders.BlockSize).ContainsAnyExcept((byte)0))
        {
            var entryName = System.Text.Encoding.ASCII.GetString(tar, (int)at, 100).TrimEnd('\0');
            var size = Convert.ToInt64(System.Text.Encoding.ASCII.GetString(tar, (int)at + 124, 11), 8);
            var pax = tar[(int)at + 156] == (byte)'x';
            if (!pax && entryName == name)
            {
                return paxStart ?? at;
            }

            paxStart = pax ? at : null;
            at += TarHeaders.BlockSize + size + TarHeaders.Padding(size);
        }

        throw new InvalidOperationException($"no entry '{name}'");
    }

    /// <summary>Data offset of every entry, by name, as our strict reader reports it.</summary>
    private static Dictionary<string, long> DataOffsets(byte[] tar)
    {
        var reader = new TarStreamReader(new MemoryStream(tar), "test");
        var offsets = new Dictionary<string, long>(StringComparer.Ordinal);
        while (reader.NextAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult() is { } header)
        {
            offsets[header.Name] = reader.Position;
        }

        return offsets;
    }

    /// <summary>Reads one header placed at <paramref name="offset"/> of a tar with zero data, with both readers.</summary>
    private static (string Name, long Size) ReadOneHeader(byte[] header, long size, long offset)
    {
        // Sizes past what a test can hold are read by header only (System.Formats.Tar needs the data to follow).
        var ours = new TarStreamReader(new MemoryStream(header.Concat(new byte[2 * TarHeaders.BlockSize]).ToArray()), "test");
        var read = ours.NextAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult()!;
        Assert.Equal(header.Length, ours.Position);
        if (size <= 1 << 20)
        {
            var tar = new MemoryStream();
            tar.Write(header);
            tar.Write(new byte[size + TarHeaders.Padding(size)]);
            tar.Write(TarHeaders.EndOfArchive);
            tar.Position = 0;
            using var system = new TarReader(tar);
            var entry = system.GetNextEntry()!;
            Assert.Equal(TarEntryType.RegularFile, entry.EntryType);
            Assert.Equal(read.Name, entry.Name);
            Assert.Equal(size, entry.Length);
            Assert.Null(system.GetNextEntry());
        }

        Assert.Equal(0, offset % TarHeaders.BlockSize);
        return (read.Name, read.Size);
    }
}
