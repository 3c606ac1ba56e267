using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

public sealed class VerifyingStreamTests
{
    private static readonly byte[] Content = TestContent.Random(10_000, 42);
    private static readonly Descriptor Expected = TestContent.DescriptorOf(MediaTypes.OciLayerGzip, Content);

    private static byte[] ReadAllSync(Stream stream, int chunk)
    {
        using var output = new MemoryStream();
        var buffer = new byte[chunk];
        int n;
        while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            output.Write(buffer, 0, n);
        }

        return output.ToArray();
    }

    private static async Task<byte[]> ReadAllAsync(Stream stream, int chunk)
    {
        using var output = new MemoryStream();
        var buffer = new byte[chunk];
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            output.Write(buffer, 0, n);
        }

        return output.ToArray();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(10_000)]
    [InlineData(65_536)]
    public void VerifyingStream_ReadSync_GoodContent_PassesAndVerifies(int chunk)
    {
        // Given the exact content behind a verifying stream
        using var stream = new VerifyingStream(new MemoryStream(Content), Expected, "test");

        // When it is read to the end synchronously in chunks
        var read = ReadAllSync(stream, chunk);

        // Then the bytes pass unchanged and the stream reports verified
        Assert.Equal(Content, read);
        Assert.True(stream.Verified);
        Assert.Equal(Content.Length, stream.BytesRead);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(65_536)]
    public async Task VerifyingStream_ReadAsync_GoodContent_PassesAndVerifies(int chunk)
    {
        // Given the exact content behind a verifying stream, delivered in small pieces
        await using var stream = new VerifyingStream(new TrickleStream(Content, 777), Expected, "test");

        // When it is read to the end asynchronously
        var read = await ReadAllAsync(stream, chunk);

        // Then the bytes pass unchanged and the stream reports verified
        Assert.Equal(Content, read);
        Assert.True(stream.Verified);
    }

    [Fact]
    public async Task VerifyingStream_CopyToAsync_GoodContent_Verifies()
    {
        // Given the exact content
        await using var stream = new VerifyingStream(new MemoryStream(Content), Expected, "test");
        using var sink = new MemoryStream();

        // When it is copied
        await stream.CopyToAsync(sink);

        // Then it is verified
        Assert.True(stream.Verified);
        Assert.Equal(Content, sink.ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task VerifyingStream_Read_FlippedByte_ThrowsIntegrityExceptionNamingBothDigests(bool async)
    {
        // Given content with one byte flipped
        var tampered = (byte[])Content.Clone();
        tampered[5000] ^= 0x01;
        var stream = new VerifyingStream(new MemoryStream(tampered), Expected, "reg/repo@blob");

        // When it is read to the end
        var ex = async
            ? await Assert.ThrowsAsync<IntegrityException>(() => ReadAllAsync(stream, 4096))
            : Assert.Throws<IntegrityException>(() => ReadAllSync(stream, 4096));

        // Then the mismatch names the source and both digests
        Assert.Contains("reg/repo@blob", ex.Message, StringComparison.Ordinal);
        Assert.Contains(Expected.Digest.ToString(), ex.Message, StringComparison.Ordinal);
        Assert.Contains(TestContent.Sha256(tampered), ex.Message, StringComparison.Ordinal);
        Assert.False(stream.Verified);
        Assert.Equal(FailureKind.Integrity, ex.Kind);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task VerifyingStream_Read_ShortContent_ThrowsIntegrityExceptionNamingSizes(bool async)
    {
        // Given content that ends 10 bytes early
        var stream = new VerifyingStream(new MemoryStream(Content[..^10]), Expected, "src");

        // When it is read to the end
        var ex = async
            ? await Assert.ThrowsAsync<IntegrityException>(() => ReadAllAsync(stream, 4096))
            : Assert.Throws<IntegrityException>(() => ReadAllSync(stream, 4096));

        // Then the message names both sizes
        Assert.Contains($"ended after {Content.Length - 10} bytes", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"expected {Content.Length}", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false, 4096)]
    [InlineData(true, 4096)]
    [InlineData(false, 10_000)]
    [InlineData(true, 10_000)]
    [InlineData(true, 100_000)]
    public async Task VerifyingStream_Read_LongerThanDeclared_ThrowsIntegrityException(bool async, int chunk)
    {
        // Given the right content followed by one extra byte
        var longer = Content.Concat(new byte[] { 0 }).ToArray();
        var stream = new VerifyingStream(new MemoryStream(longer), Expected, "src");

        // When it is read to the end
        var ex = async
            ? await Assert.ThrowsAsync<IntegrityException>(() => ReadAllAsync(stream, chunk))
            : Assert.Throws<IntegrityException>(() => ReadAllSync(stream, chunk));

        // Then it is refused as longer than declared
        Assert.Contains($"longer than its declared size {Content.Length}", ex.Message, StringComparison.Ordinal);
        Assert.False(stream.Verified);
    }

    [Fact]
    public async Task VerifyingStream_Read_NeverReturnsMoreThanDeclared()
    {
        // Given a source with far more data than declared
        var stream = new VerifyingStream(new MemoryStream(new byte[1 << 20]), TestContent.DescriptorOf("a/b", new byte[10]), "src");

        // When a big buffer is read once
        var n = await stream.ReadAsync(new byte[1 << 20]);

        // Then at most the declared size comes back
        Assert.Equal(10, n);
    }

    [Fact]
    public async Task VerifyingStream_ZeroLengthRead_MidStream_DoesNotFinishOrThrow()
    {
        // Given a stream part-way through good content
        await using var stream = new VerifyingStream(new MemoryStream(Content), Expected, "src");
        var head = new byte[100];
        await stream.ReadExactlyAsync(head);

        // When a zero-length read happens (sync and async)
        var syncZero = stream.Read([]);
        var asyncZero = await stream.ReadAsync(Memory<byte>.Empty);

        // Then it returns 0 without verdict, and the rest still verifies
        Assert.Equal(0, syncZero);
        Assert.Equal(0, asyncZero);
        Assert.False(stream.Verified);
        var rest = await ReadAllAsync(stream, 4096);
        Assert.Equal(Content.Length - 100, rest.Length);
        Assert.True(stream.Verified);
    }

    [Fact]
    public async Task VerifyingStream_EmptyContent_Verifies()
    {
        // Given an empty blob (size 0)
        var empty = TestContent.DescriptorOf("a/b", []);
        await using var stream = new VerifyingStream(new MemoryStream([]), empty, "src");

        // When it is read
        var n = await stream.ReadAsync(new byte[16]);

        // Then it is verified
        Assert.Equal(0, n);
        Assert.True(stream.Verified);
    }

    [Fact]
    public async Task VerifyingStream_Sha512Descriptor_VerifiesWithSha512()
    {
        // Given a descriptor with a sha512 digest
        var hex = Convert.ToHexStringLower(System.Security.Cryptography.SHA512.HashData(Content));
        var descriptor = new Descriptor { MediaType = "a/b", Digest = Digest.Parse("sha512:" + hex), Size = Content.Length };
        await using var stream = new VerifyingStream(new MemoryStream(Content), descriptor, "src");

        // When it is read
        await ReadAllAsync(stream, 4096);

        // Then it verifies
        Assert.True(stream.Verified);
    }

    [Fact]
    public async Task VerifyingStream_Dispose_LeaveOpen_KeepsInnerOpen()
    {
        // Given a verifying stream that leaves its source open
        var inner = new MemoryStream(Content);
        var stream = new VerifyingStream(inner, Expected, "src", leaveOpen: true);

        // When it is disposed
        await stream.DisposeAsync();

        // Then the source is still usable
        Assert.True(inner.CanRead);
        Assert.Throws<NotSupportedException>(() => stream.Position = 1);
        Assert.False(stream.CanSeek);
        Assert.Equal(Content.Length, stream.Length);
    }

    [Fact]
    public async Task CountingStream_Read_ReportsEveryByte()
    {
        // Given a counting stream over content
        long reported = 0;
        await using var stream = new CountingStream(new MemoryStream(Content), n => reported += n);

        // When it is read (sync and async)
        var first = stream.Read(new byte[100], 0, 100);
        var rest = await ReadAllAsync(stream, 1000);

        // Then every byte was reported once
        Assert.Equal(100, first);
        Assert.Equal(Content.Length, first + rest.Length);
        Assert.Equal(Content.Length, reported);
        Assert.Equal(Content.Length, stream.Count);
        Assert.Equal(Content.Length, stream.Position);
    }

    [Fact]
    public async Task ManifestReader_ReadBytesAsync_SourceLongerThanDescriptor_ThrowsIntegrityException()
    {
        // Given a fetchable whose stream has more bytes than the descriptor says and does not verify itself
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciManifest, Content[..100]);
        var source = new RawFetchable(Content);

        // When the manifest is read
        var ex = await Assert.ThrowsAsync<IntegrityException>(() => ManifestReader.ReadBytesAsync(source, descriptor, "src", CancellationToken.None));

        // Then it is refused as too long
        Assert.Contains("longer than 100 bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ManifestReader_ReadBytesAsync_DeclaredOver4MiB_RefusedBeforeFetching()
    {
        // Given a descriptor that declares a manifest over 4 MiB
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciManifest, []) with { Size = ManifestDocument.MaxManifestBytes + 1L };
        var source = new RawFetchable([]);

        // When the manifest is read
        var ex = await Assert.ThrowsAsync<InputException>(() => ManifestReader.ReadBytesAsync(source, descriptor, "src", CancellationToken.None));

        // Then it is refused without a fetch
        Assert.Contains("larger than the 4194304 byte limit", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, source.Fetches);
    }

    /// <summary>Returns at most <c>max</c> bytes per read, to exercise many small reads.</summary>
    private sealed class TrickleStream(byte[] data, int max) : MemoryStream(data)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, max));

        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(buffer.Length, max)]);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, max)], cancellationToken);
    }

    private sealed class RawFetchable(byte[] data) : IFetchable
    {
        public int Fetches { get; private set; }

        public Task<Stream> FetchAsync(Descriptor descriptor, CancellationToken cancellationToken = default)
        {
            Fetches++;
            return Task.FromResult<Stream>(new MemoryStream(data));
        }
    }
}
