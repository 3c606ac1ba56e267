using System.Diagnostics;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Tests.Core;
using OpenLm.Mirror.Tests.Load;
using SampleBundle = OpenLm.Mirror.Tests.Load.SampleBundle;
using OpenLm.Mirror.Tests.Support;
using Xunit;

namespace OpenLm.Mirror.Tests.Bundle;

public sealed class BundleSourceTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task BundleSource_OpenAsync_SignedBundle_EveryBlobFetchesByteIdenticalAndVerified()
    {
        // Given a signed bundle of the sample platform
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 31);
        using var key = bundle.VerificationKey();
        var layout = OciLayoutStore.Open(System.IO.Path.Combine(_temp.Sub("b"), "layout"), create: false);

        // When it is opened as a source and every blob is fetched
        await using var source = await BundleSource.OpenAsync(bundle.Path, new BundleOpenOptions { Key = key });
        var blobs = source.Blobs.ToList();
        Assert.NotEmpty(blobs);
        foreach (var entry in blobs)
        {
            Assert.False(source.IsVerified(entry.Descriptor.Digest));
            await using var stream = await source.FetchAsync(entry.Descriptor);
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);

            // Then each is the layout's blob, and is known verified afterwards
            Assert.Equal(await File.ReadAllBytesAsync(layout.BlobPath(entry.Descriptor.Digest)), copy.ToArray());
            Assert.True(source.IsVerified(entry.Descriptor.Digest));
        }

        Assert.Equal(bundle.Platform.Images.Count, source.Head.Images.Count);
        Assert.All(source.Head.Images, root => Assert.True(source.Documents.ContainsKey(root.Digest)));
        Assert.Equal(source.Head.Images[0].Digest, (await source.ResolveAsync(source.Head.Images[0].RefName!)).Digest);
    }

    [Fact]
    public async Task BundleSource_FetchAsync_CorruptLayer_OpensButTheFetchFailsNamingTheDigest()
    {
        // Given a bundle with one byte flipped inside its last blob
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 32);
        using var key = bundle.VerificationKey();
        BundleEntry victim;
        await using (var pristine = await BundleSource.OpenAsync(bundle.Path, new BundleOpenOptions { Key = key }))
        {
            victim = pristine.Blobs.Last();
        }

        await using (var file = new FileStream(bundle.Path, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = victim.Offset + (victim.Descriptor.Size / 2);
            var b = file.ReadByte();
            file.Position -= 1;
            file.WriteByte((byte)(b ^ 0x41));
        }

        // When it is opened (structure only) and that blob is fetched
        await using var source = await BundleSource.OpenAsync(bundle.Path, new BundleOpenOptions { Key = key });
        var stream = await source.FetchAsync(victim.Descriptor);
        var ex = await Assert.ThrowsAsync<IntegrityException>(async () =>
        {
            await using (stream)
            {
                await stream.CopyToAsync(Stream.Null);
            }
        });

        // Then the failure names the digest, the blob is not counted as verified, and a full verification fails too
        Assert.Contains(victim.Descriptor.Digest.ToString(), ex.Message, StringComparison.Ordinal);
        Assert.False(source.IsVerified(victim.Descriptor.Digest));
        await Assert.ThrowsAsync<IntegrityException>(() => source.VerifyRemainingAsync());
    }

    [Fact]
    public async Task BundleSource_OpenVerifiedRange_OnlyAfterVerificationAndExactSlice()
    {
        // Given an opened bundle
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 33);
        using var key = bundle.VerificationKey();
        await using var source = await BundleSource.OpenAsync(bundle.Path, new BundleOpenOptions { Key = key });
        var entry = source.Blobs.OrderByDescending(b => b.Descriptor.Size).First();

        // When a range is asked before verification, Then it is refused
        Assert.Throws<InvalidOperationException>(() => source.OpenVerifiedRange(entry.Descriptor.Digest, 0, 1));

        // When the bundle is verified, Then ranges are exact slices, and out-of-bounds ranges are refused
        await source.VerifyRemainingAsync();
        await using var whole = await source.FetchAsync(entry.Descriptor);
        using var all = new MemoryStream();
        await whole.CopyToAsync(all);
        var (offset, length) = (entry.Descriptor.Size / 3, entry.Descriptor.Size / 3);
        await using var slice = source.OpenVerifiedRange(entry.Descriptor.Digest, offset, length);
        using var part = new MemoryStream();
        await slice.CopyToAsync(part);
        Assert.Equal(all.ToArray().AsSpan((int)offset, (int)length).ToArray(), part.ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => source.OpenVerifiedRange(entry.Descriptor.Digest, entry.Descriptor.Size, 1));
    }

    [Fact]
    public async Task BundleSource_OpenAsync_WrongKey_IntegrityExceptionBeforeAnythingIsIndexed()
    {
        // Given a bundle and somebody else's key
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 34);
        var other = await SampleBundle.CreateAsync(_temp.Sub("o"), seed: 35);
        using var wrong = other.VerificationKey();

        // When it is opened, Then the signature refuses it
        var ex = await Assert.ThrowsAsync<IntegrityException>(() => BundleSource.OpenAsync(bundle.Path, new BundleOpenOptions { Key = wrong }));
        Assert.Contains("signature", ex.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task BundleSource_OpenAsync_Fifo_RefusedSayingAFileIsNeeded()
    {
        // Given a bundle streamed into a named pipe
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 36);
        using var key = bundle.VerificationKey();
        var fifo = _temp.Sub("bundle.fifo");
        using (var mkfifo = Process.Start("mkfifo", fifo))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        var writer = Task.Run(async () =>
        {
            try
            {
                await using var pipe = new FileStream(fifo, FileMode.Open, FileAccess.Write);
                await using var file = File.OpenRead(bundle.Path);
                await file.CopyToAsync(pipe);
            }
            catch (IOException)
            {
                // The reader went away, as it should.
            }
        });

        // When it is opened, Then it is refused with a message that says a file is needed
        var ex = await Assert.ThrowsAsync<InputException>(() => BundleSource.OpenAsync(fifo, new BundleOpenOptions { Key = key }));
        Assert.Contains("file on disk", ex.Message, StringComparison.Ordinal);
        await writer.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task BundleSource_ResolveAsync_UnknownName_NotFound()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 37);
        using var key = bundle.VerificationKey();
        await using var source = await BundleSource.OpenAsync(bundle.Path, new BundleOpenOptions { Key = key });

        await Assert.ThrowsAsync<NotFoundException>(() => source.ResolveAsync("public.ecr.aws/r3q3q2f4/none:1"));
        await Assert.ThrowsAsync<NotFoundException>(() => source.FetchAsync(new Descriptor { MediaType = "application/octet-stream", Digest = Digest.Sha256([1, 2, 3]), Size = 3 }));
    }

    [Fact]
    public async Task BundleSource_OpenAsync_SeekableZstd_ReadsFramesInPlaceWithoutATemporaryCopy()
    {
        // Given a zstd bundle as export writes it (seekable) and an empty temporary directory
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 38, compression: BundleCompression.Zstd);
        using var key = bundle.VerificationKey();
        var temp = _temp.Sub("tmp");
        Directory.CreateDirectory(temp);
        var layout = OciLayoutStore.Open(System.IO.Path.Combine(_temp.Sub("b"), "layout"), create: false);

        // When it is opened and every blob fetched
        await using var source = await BundleSource.OpenAsync(bundle.Path, new BundleOpenOptions { Key = key, TempDirectory = temp });
        foreach (var entry in source.Blobs)
        {
            await using var stream = await source.FetchAsync(entry.Descriptor);
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            Assert.Equal(await File.ReadAllBytesAsync(layout.BlobPath(entry.Descriptor.Digest)), copy.ToArray());
        }

        // Then it was read in place: compressed, and nothing was decompressed to disk
        Assert.True(source.Head.Compressed);
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp));
        await source.VerifyRemainingAsync();
    }

    [Fact]
    public async Task BundleSource_OpenAsync_SingleStreamZstd_DecompressedOnceAndRemovedOnDispose()
    {
        // Given a bundle compressed the way 0.1 did (one zstd stream, no seek table)
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 39);
        using var key = bundle.VerificationKey();
        var legacy = await LegacyZstd.CompressAsync(bundle.Path, _temp.Sub("legacy.tar.zst"));
        var temp = _temp.Sub("tmp");
        Directory.CreateDirectory(temp);

        // When it is opened, Then one decompressed copy exists while it is open and serves verified fetches
        var source = await BundleSource.OpenAsync(legacy, new BundleOpenOptions { Key = key, TempDirectory = temp });
        await using (source)
        {
            Assert.Single(Directory.EnumerateFileSystemEntries(temp));
            Assert.True(source.Head.Compressed);
            await source.VerifyRemainingAsync();
        }

        // And it is gone once the source is disposed
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp));
    }
}
