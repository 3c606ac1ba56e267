using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Signing;
using Xunit;

namespace OpenLm.Mirror.Tests.Bundle;

public sealed class SeekableZstdTests : IDisposable
{
    private const int FrameSize = SeekableZstdWriter.DefaultFrameSize;

    private readonly TempDir _dir = new();
    private readonly SigningKey _key = TestKeys.NewSigningKey();
    private readonly VerificationKey _pub;

    public SeekableZstdTests() => _pub = _key.GetVerificationKey();

    public void Dispose()
    {
        _pub.Dispose();
        _key.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task BundleWriter_Zstd_FrameStartsAtEveryEntryAndEvery8MiBOfALargeEntry()
    {
        // Given a bundle whose layers are larger than one frame
        var bundle = await ZstdBundle(layerSize: FrameSize + 1000);

        // When its seek table is read
        using var file = SeekableZstdFile.TryOpen(bundle.Path);

        // Then the frames start exactly at each entry header, every 8 MiB inside an entry, and at the end-of-archive marker
        Assert.NotNull(file);
        var tar = await DrainAsync(file.OpenRead());
        Assert.Equal(bundle.Result.TarBytes, tar.Length);
        var expected = new List<long>();
        foreach (var (start, length) in EntryExtents(tar))
        {
            for (var at = start; at < start + length; at += FrameSize)
            {
                expected.Add(at);
            }
        }

        Assert.Equal(expected, file.Frames.Select(f => f.DecompressedOffset));
        Assert.Contains(file.Frames, f => f.DecompressedSize == FrameSize);
        Assert.All(file.Frames, f => Assert.InRange(f.DecompressedSize, 1, FrameSize));
        Assert.Equal(TarHeaders.EndOfArchive.Length, file.Frames[^1].DecompressedSize);
        Assert.Equal(new FileInfo(bundle.Path).Length, file.CompressedLength);
        Assert.Equal(file.CompressedLength, bundle.Result.FileBytes);
    }

    [Fact]
    public async Task BundleWriter_Zstd_EveryFrameHasContentSizeChecksumAndWindowOfAtMost8MiB()
    {
        var bundle = await ZstdBundle(layerSize: FrameSize + 1000);
        using var file = SeekableZstdFile.TryOpen(bundle.Path)!;

        foreach (var frame in file.Frames)
        {
            var header = ParseFrameHeader(bundle.Bytes.AsSpan((int)frame.CompressedOffset));
            Assert.Equal(frame.DecompressedSize, header.ContentSize);
            Assert.True(header.Checksum, $"frame at {frame.CompressedOffset} has no content checksum");
            Assert.InRange(header.Window, 1, 1L << SeekableZstdWriter.WindowLog);
        }

        // A full 8 MiB frame states its window explicitly (single-segment) and it is the frame's size.
        var full = file.Frames.First(f => f.DecompressedSize == FrameSize);
        Assert.Equal(FrameSize, ParseFrameHeader(bundle.Bytes.AsSpan((int)full.CompressedOffset)).Window);

        // The zstd CLI agrees: no frame needs a window over 32 MiB (what containerd and k3s accept).
        if (ZstdCli() is { } zstd)
        {
            var (code, stdout, stderr) = Tool.Run(zstd, "-lv", bundle.Path);
            Assert.True(code == 0, stderr);
            Assert.Contains($"# Zstandard Frames: {file.Frames.Count}", stdout, StringComparison.Ordinal);
            Assert.Contains("# Skippable Frames: 1", stdout, StringComparison.Ordinal);
            var window = Regex.Match(stdout, @"Window Size: .*\((\d+) B\)");
            Assert.True(window.Success, stdout);
            Assert.InRange(long.Parse(window.Groups[1].Value, CultureInfo.InvariantCulture), 1, 32L << 20);
        }
    }

    [Fact]
    public async Task BundleWriter_Zstd_StockZstdDecompressesToThePlainTar()
    {
        // Given the same layout written plain and zstd-compressed
        var layout = await TestLayout.CreateAsync(_dir.File("layout"), layerSize: FrameSize + 1000);
        var options = new BundleWriteOptions { SourceDateEpoch = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) };
        await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), _key, _dir.File("b.tar"), options);
        await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), _key, _dir.File("b.tar.zst"), options with { Compression = BundleCompression.Zstd });
        var plain = await File.ReadAllBytesAsync(_dir.File("b.tar"));

        // When the seekable file is decompressed by ZstdSharp's stream decoder and by the range reader
        using var zstdSharp = new ZstdSharp.DecompressionStream(File.OpenRead(_dir.File("b.tar.zst")), leaveOpen: false);
        var bySharp = await ReadAllAsync(zstdSharp);
        using var file = SeekableZstdFile.TryOpen(_dir.File("b.tar.zst"))!;
        var byRange = await DrainAsync(file.OpenRead());

        // Then both give the plain tar (the randomised signature aside, so it is pinned first)
        var sigOffset = BundleRoundTripTests.FindEntryDataOffset(plain, BundleFormat.SignatureEntry);
        Array.Copy(bySharp, sigOffset - 512, plain, sigOffset - 512, 1024);
        Assert.Equal(plain, bySharp);
        Assert.Equal(plain, byRange);

        // And stock zstd -d gives exactly the same bytes (the seek table's skippable frame is ignored)
        if (ZstdCli() is { } zstd)
        {
            var (code, _, stderr) = Tool.Run(zstd, "-d", "-q", "-f", _dir.File("b.tar.zst"), "-o", _dir.File("by-cli.tar"));
            Assert.True(code == 0, stderr);
            Assert.Equal(plain, await File.ReadAllBytesAsync(_dir.File("by-cli.tar")));
        }
    }

    [Fact]
    public async Task BundleWriter_Zstd_TwoWritesDifferOnlyInTheSignatureFrame()
    {
        var layout = await TestLayout.CreateAsync(_dir.File("layout"));
        var options = new BundleWriteOptions { Compression = BundleCompression.Zstd, SourceDateEpoch = DateTimeOffset.FromUnixTimeSeconds(86400) };
        await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), _key, _dir.File("a.tar.zst"), options);
        await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), _key, _dir.File("b.tar.zst"), options);

        using var a = SeekableZstdFile.TryOpen(_dir.File("a.tar.zst"))!;
        using var b = SeekableZstdFile.TryOpen(_dir.File("b.tar.zst"))!;
        var bytesA = await File.ReadAllBytesAsync(_dir.File("a.tar.zst"));
        var bytesB = await File.ReadAllBytesAsync(_dir.File("b.tar.zst"));

        // Entry 3 (the ECDSA signature, randomised) is frame 2; every other frame is byte-identical.
        Assert.Equal(a.Frames.Count, b.Frames.Count);
        for (var i = 0; i < a.Frames.Count; i++)
        {
            if (i != 2)
            {
                Assert.Equal(Slice(bytesA, a.Frames[i]), Slice(bytesB, b.Frames[i]));
            }
        }
    }

    [Fact]
    public void SeekableZstdWriter_SameInputGivesSameBytes()
    {
        var data = Compressible(300_000, seed: 5);
        Assert.Equal(WriteSeekable(data, 4096, [1000, 50_000]), WriteSeekable(data, 4096, [1000, 50_000]));
    }

    [Fact]
    public async Task SeekableZstdFile_OpenRange_EveryRangeRoundTrips()
    {
        // Given content cut into small frames at irregular points
        var data = Compressible(400_000, seed: 7);
        var path = _dir.File("ranges.zst");
        await File.WriteAllBytesAsync(path, WriteSeekable(data, frameSize: 10_000, cuts: [1, 512, 513, 9_999, 123_456, 300_000]));
        using var file = SeekableZstdFile.TryOpen(path)!;
        Assert.Equal(data.Length, file.DecompressedLength);

        // When ranges start and end on, next to and between frame boundaries, and at random
        var random = new Random(11);
        var ranges = new List<(long Offset, long Length)> { (0, data.Length), (0, 0), (data.Length, 0), (data.Length - 1, 1) };
        foreach (var frame in file.Frames.Skip(1).Take(12))
        {
            ranges.Add((frame.DecompressedOffset, 1));
            ranges.Add((frame.DecompressedOffset - 1, 2));
            ranges.Add((frame.DecompressedOffset - 1, frame.DecompressedSize + 2));
        }

        for (var i = 0; i < 300; i++)
        {
            var offset = random.NextInt64(data.Length);
            ranges.Add((offset, random.NextInt64(Math.Min(data.Length - offset, 50_000) + 1)));
        }

        // Then each range gives exactly those bytes, read in any buffer size, sync or async
        var n = 0;
        foreach (var (offset, length) in ranges)
        {
            var expected = data.AsSpan((int)offset, (int)length).ToArray();
            using var stream = file.OpenRange(offset, length);
            Assert.Equal(length, stream.Length);
            var actual = n++ % 2 == 0 ? await ReadAllAsync(stream, bufferSize: 1 + (n % 7000)) : ReadAll(stream, bufferSize: 1 + (n % 3000));
            Assert.Equal(expected, actual);
            Assert.Equal(length, stream.Position);
            Assert.Equal(0, stream.Read(new byte[10]));
        }
    }

    [Fact]
    public async Task SeekableZstdFile_OpenRange_ConcurrentStreamsOverOneFileEachGetTheirBytes()
    {
        var data = Compressible(600_000, seed: 3);
        var path = _dir.File("concurrent.zst");
        await File.WriteAllBytesAsync(path, WriteSeekable(data, frameSize: 16_384, cuts: []));
        using var file = SeekableZstdFile.TryOpen(path)!;

        // Sixteen readers at once, all reading in small pieces so their reads interleave.
        var tasks = Enumerable.Range(0, 16).Select(i => Task.Run(async () =>
        {
            var random = new Random(i);
            for (var round = 0; round < 20; round++)
            {
                var offset = random.Next(data.Length);
                var length = random.Next(Math.Min(data.Length - offset, 100_000) + 1);
                using var stream = file.OpenRange(offset, length);
                var actual = await ReadAllAsync(stream, bufferSize: 777);
                Assert.Equal(data.AsSpan(offset, length).ToArray(), actual);
            }
        }));
        await Task.WhenAll(tasks);
    }

    [Fact]
    public async Task SeekableZstdFile_TryOpen_OverCallersHandleLeavesItOpen()
    {
        var data = Compressible(50_000, seed: 9);
        var path = _dir.File("handle.zst");
        await File.WriteAllBytesAsync(path, WriteSeekable(data, frameSize: 8192, cuts: []));
        using var handle = File.OpenHandle(path);
        using (var file = SeekableZstdFile.TryOpen(handle, "the test file")!)
        {
            Assert.Equal(data, await DrainAsync(file.OpenRead()));
        }

        Assert.False(handle.IsClosed);
    }

    [Fact]
    public async Task BundleReader_Read_SeekableBundleByPathAndThroughTheRangeStream()
    {
        // The reader as released (BundleStreams + ZstdSharp's decoder) reads the seekable file as it always read zstd.
        var bundle = await ZstdBundle(layerSize: 20_000);
        var visitor = new RecordingVisitor();
        var result = await BundleReader.ReadAsync(bundle.Path, new BundleReadOptions { Key = _pub, Visitor = visitor });
        Assert.True(result.Complete);
        Assert.True(result.Head.Compressed);
        Assert.Equal(bundle.Layout.AllBlobs.DistinctBy(b => b.Digest).Count(), visitor.Blobs.Count);

        // A sequential reader may also take the whole decompressed tar from the range reader.
        using var file = SeekableZstdFile.TryOpen(bundle.Path)!;
        using var tar = file.OpenRead();
        var fromRange = await BundleReader.ReadAsync(tar, new BundleReadOptions { Key = _pub });
        Assert.True(fromRange.Complete);
        Assert.Equal(result.Head.ManifestBytes.ToArray(), fromRange.Head.ManifestBytes.ToArray());
    }

    [Fact]
    public async Task SingleStreamZstdBundle_StillReads_AndHasNoSeekTable()
    {
        // Given a bundle compressed the way 0.1 wrote it: the whole tar as one zstd frame
        var plain = await WrittenBundle.CreateAsync(_dir, _key, new BundleWriteOptions());
        var old = _dir.File("old.tar.zst");
        await using (var output = File.Create(old))
        {
            using var zstd = new ZstdSharp.CompressionStream(output, 3, leaveOpen: true);
            zstd.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
            zstd.SetPledgedSrcSize((ulong)plain.Bytes.Length);
            await zstd.WriteAsync(plain.Bytes);
        }

        // Then the sequential reader reads it, and the random-access reader says it has no seek table
        var result = await BundleReader.ReadAsync(old, new BundleReadOptions { Key = _pub });
        Assert.True(result.Complete);
        Assert.True(result.Head.Compressed);
        Assert.Null(SeekableZstdFile.TryOpen(old));
        Assert.Null(SeekableZstdFile.TryOpen(plain.Path));
    }

    [Fact]
    public async Task SeekableZstdFile_TryOpen_TooShortOrEmptyContent()
    {
        await File.WriteAllBytesAsync(_dir.File("tiny"), [1, 2, 3]);
        Assert.Null(SeekableZstdFile.TryOpen(_dir.File("tiny")));

        await File.WriteAllBytesAsync(_dir.File("empty.zst"), WriteSeekable([], 1024, []));
        using var empty = SeekableZstdFile.TryOpen(_dir.File("empty.zst"))!;
        Assert.Equal(0, empty.DecompressedLength);
        Assert.Empty(empty.Frames);
        Assert.Empty(await DrainAsync(empty.OpenRead()));
        Assert.Throws<ArgumentOutOfRangeException>(() => empty.OpenRange(0, 1));
    }

    [Fact]
    public async Task SeekableZstdFile_TryOpen_RefusesInconsistentSeekTables()
    {
        var good = WriteSeekable(Compressible(100_000, seed: 1), frameSize: 20_000, cuts: []);
        var footer = good.Length - 9;
        var firstEntry = good.Length - 9 - (5 * 8);

        // A frame that would take one more byte: the frames no longer tile the file.
        await Refused<IntegrityException>(Patched(good, b => Add(b, firstEntry, 1)), "seek table is corrupt", "would end after");
        await Refused<IntegrityException>(Patched(good, b => Add(b, firstEntry, -1)), "seek table is corrupt", "bytes precede the seek table");

        // A frame count that does not match the table frame's size.
        await Refused<IntegrityException>(Patched(good, b => Add(b, footer, 1)), "seek table is corrupt", "lists 6 frames");
        await Refused<IntegrityException>(Patched(good, b => Add(b, footer, -1)), "seek table is corrupt", "lists 4 frames");

        // A frame count larger than any file could hold, or than a reader accepts.
        await Refused<IntegrityException>(Patched(good, b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(footer), 4_000_000)), "need", "bytes of table");
        await Refused<IntegrityException>(Patched(good, b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(footer), uint.MaxValue)), "more than");

        // A zero-sized frame, and a frame larger than the format allows.
        await Refused<IntegrityException>(Patched(good, b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(firstEntry), 0)), "compressed size of 0");
        await Refused<IntegrityException>(Patched(good, b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(firstEntry + 4), (1u << 30) + 1)), "decompressed bytes, more than");

        // Bytes cut from the middle: the table no longer matches the file.
        await Refused<IntegrityException>([.. good[..1000], .. good[1100..]], "seek table is corrupt");

        // Reserved descriptor bits belong to a newer variant of the format.
        await Refused<InputException>(Patched(good, b => b[footer + 4] = 0x04), "reserved descriptor bits");
    }

    [Fact]
    public async Task SeekableZstdFile_OpenRange_RefusesFramesThatDisagreeWithTheTable()
    {
        var data = Compressible(100_000, seed: 2);
        var good = WriteSeekable(data, frameSize: 20_000, cuts: []);
        var firstEntry = good.Length - 9 - (5 * 8);

        // Frame 0 one byte shorter in the table, frame 1 one longer: the sum still fits the file, the frames do not.
        var shifted = Patched(good, b =>
        {
            Add(b, firstEntry, -1);
            Add(b, firstEntry + 8, 1);
        });
        await RangeRefused(shifted, 0, 20_001, "zstd frame 0 (at byte 0) is truncated or corrupt");

        // The table says frame 0 holds one byte more, or one byte less, than it decompresses to.
        await RangeRefused(Patched(good, b => Add(b, firstEntry + 4, 1)), 0, 20_001, "zstd frame 0 ends after 20000 decompressed bytes");
        await RangeRefused(Patched(good, b => Add(b, firstEntry + 4, -1)), 0, 20_000, "zstd frame 0 decompresses to more than the 19999 bytes");

        // A flipped byte inside frame 2 fails its checksum or its decoding.
        var frame2 = BinaryPrimitives.ReadUInt32LittleEndian(good.AsSpan(firstEntry)) + BinaryPrimitives.ReadUInt32LittleEndian(good.AsSpan(firstEntry + 8));
        await RangeRefused(Patched(good, b => b[frame2 + 30] ^= 0x55), 45_000, 16_000, "zstd frame 2");

        // Ranges before the damage still read.
        var path = _dir.File("damaged-late.zst");
        await File.WriteAllBytesAsync(path, Patched(good, b => b[frame2 + 30] ^= 0x55));
        using var file = SeekableZstdFile.TryOpen(path)!;
        Assert.Equal(data.AsSpan(0, 40_000).ToArray(), await DrainAsync(file.OpenRange(0, 40_000)));
    }

    [Fact]
    public async Task SeekableZstdBundle_TruncatedSeekTable_HasNoTableAndFailsSequentially()
    {
        var bundle = await ZstdBundle(layerSize: 20_000);
        var cut = _dir.File("cut.tar.zst");
        await File.WriteAllBytesAsync(cut, bundle.Bytes[..^5]);

        Assert.Null(SeekableZstdFile.TryOpen(cut));
        var ex = await Assert.ThrowsAsync<IntegrityException>(() => BundleReader.ReadAsync(cut, new BundleReadOptions { Key = _pub }));
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SeekableZstdWriter_WriteAfterFinish_Throws()
    {
        using var output = new MemoryStream();
        using var writer = new SeekableZstdWriter(output, 3, 1024);
        writer.Write("hello"u8);
        await writer.FinishAsync(CancellationToken.None);
        Assert.Throws<InvalidOperationException>(() => writer.Write("again"u8));
        Assert.Equal(output.Length, writer.CompressedBytes);
        Assert.Equal(5u, Assert.Single(writer.Frames).Decompressed);
    }

    private static void Add(byte[] bytes, int at, int delta) =>
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), (uint)((int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at)) + delta));

    private static byte[] Patched(byte[] good, Action<byte[]> patch)
    {
        var copy = (byte[])good.Clone();
        patch(copy);
        return copy;
    }

    private static byte[] Slice(byte[] bytes, SeekableZstdFrame frame) =>
        bytes.AsSpan((int)frame.CompressedOffset, (int)frame.CompressedSize).ToArray();

    /// <summary>Writes <paramref name="data"/> seekable, ending a frame early at each of <paramref name="cuts"/>.</summary>
    private static byte[] WriteSeekable(byte[] data, int frameSize, int[] cuts)
    {
        using var output = new MemoryStream();
        using (var writer = new SeekableZstdWriter(output, 3, frameSize))
        {
            var at = 0;
            foreach (var cut in cuts.Append(data.Length))
            {
                writer.Write(data.AsSpan(at, cut - at));
                writer.EndFrameAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
                at = cut;
            }

            writer.FinishAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }

        return output.ToArray();
    }

    /// <summary>Text-like bytes (so frames compress) with a random tail in each line (so they do not compress to nothing).</summary>
    private static byte[] Compressible(int length, int seed)
    {
        var random = new Random(seed);
        var text = new StringBuilder();
        while (text.Length < length)
        {
            text.Append(CultureInfo.InvariantCulture, $"layer {random.Next(100)} file /usr/lib/x{random.Next(1_000_000):x}.so\n");
        }

        return Encoding.ASCII.GetBytes(text.ToString(0, length));
    }

    /// <summary>Reads <paramref name="stream"/> to its end and disposes it.</summary>
    private static async Task<byte[]> DrainAsync(Stream stream)
    {
        using (stream)
        {
            return await ReadAllAsync(stream);
        }
    }

    private static async Task<byte[]> ReadAllAsync(Stream stream, int bufferSize = 81920)
    {
        var output = new MemoryStream();
        var buffer = new byte[bufferSize];
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            output.Write(buffer, 0, n);
        }

        return output.ToArray();
    }

    private static byte[] ReadAll(Stream stream, int bufferSize)
    {
        var output = new MemoryStream();
        var buffer = new byte[bufferSize];
        int n;
        while ((n = stream.Read(buffer)) > 0)
        {
            output.Write(buffer, 0, n);
        }

        return output.ToArray();
    }

    /// <summary>Start and length (header, data, padding) of each tar entry, then of the end-of-archive marker.</summary>
    private static List<(long Start, long Length)> EntryExtents(byte[] tar)
    {
        var extents = new List<(long, long)>();
        long at = 0;
        while (tar.AsSpan((int)at, 512).ContainsAnyExcept((byte)0))
        {
            // A pax 'x' header (the alignment padding) belongs to the entry it precedes: one frame starts at it.
            var start = at;
            while (true)
            {
                var size = Convert.ToInt64(Encoding.ASCII.GetString(tar, (int)at + 124, 11), 8);
                var pax = tar[(int)at + 156] == (byte)'x';
                at += 512 + size + ((512 - (size % 512)) % 512);
                if (!pax)
                {
                    break;
                }
            }

            extents.Add((start, at - start));
        }

        extents.Add((at, tar.Length - at));
        return extents;
    }

    /// <summary>The fields of a zstd frame header (RFC 8878 §3.1.1.1) this test checks.</summary>
    private static (long ContentSize, bool Checksum, long Window) ParseFrameHeader(ReadOnlySpan<byte> frame)
    {
        Assert.Equal(BundleFormat.ZstdMagic.ToArray(), frame[..4].ToArray());
        var descriptor = frame[4];
        var fcsFlag = descriptor >> 6;
        var singleSegment = (descriptor & 0x20) != 0;
        var checksum = (descriptor & 0x04) != 0;
        var dictIdBytes = (descriptor & 3) switch { 0 => 0, 1 => 1, 2 => 2, _ => 4 };
        var at = 5;
        long window = 0;
        if (!singleSegment)
        {
            var exponent = frame[at] >> 3;
            var mantissa = frame[at] & 7;
            var windowBase = 1L << (10 + exponent);
            window = windowBase + (windowBase / 8 * mantissa);
            at++;
        }

        at += dictIdBytes;
        var fcsBytes = fcsFlag switch { 0 => singleSegment ? 1 : 0, 1 => 2, 2 => 4, _ => 8 };
        Assert.True(fcsBytes > 0, "the frame header has no content size");
        var contentSize = fcsBytes switch
        {
            1 => frame[at],
            2 => BinaryPrimitives.ReadUInt16LittleEndian(frame[at..]) + 256L,
            4 => BinaryPrimitives.ReadUInt32LittleEndian(frame[at..]),
            _ => (long)BinaryPrimitives.ReadUInt64LittleEndian(frame[at..]),
        };
        return (contentSize, checksum, singleSegment ? contentSize : window);
    }

    private static string? ZstdCli() =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "zstd"))
            .FirstOrDefault(File.Exists);

    private Task<WrittenBundle> ZstdBundle(int layerSize) =>
        WrittenBundle.CreateAsync(
            _dir,
            _key,
            new BundleWriteOptions { Compression = BundleCompression.Zstd, SourceDateEpoch = DateTimeOffset.FromUnixTimeSeconds(0) },
            layerSize,
            name: "bundle.tar.zst");

    private async Task Refused<T>(byte[] bytes, params string[] fragments)
        where T : MirrorException
    {
        var path = _dir.File($"refused-{Guid.NewGuid():N}.zst");
        await File.WriteAllBytesAsync(path, bytes);
        var ex = Assert.Throws<T>(() => SeekableZstdFile.TryOpen(path));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        foreach (var fragment in fragments)
        {
            Assert.Contains(fragment, ex.Message, StringComparison.Ordinal);
        }
    }

    private async Task RangeRefused(byte[] bytes, long offset, long length, string fragment)
    {
        var path = _dir.File($"range-{Guid.NewGuid():N}.zst");
        await File.WriteAllBytesAsync(path, bytes);
        using var file = SeekableZstdFile.TryOpen(path)!;
        var ex = await Assert.ThrowsAsync<IntegrityException>(() => DrainAsync(file.OpenRange(offset, length)));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains(fragment, ex.Message, StringComparison.Ordinal);
        using var again = file.OpenRange(offset, length);
        Assert.Throws<IntegrityException>(() => ReadAll(again, 4096));
    }
}
