using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.Tests.TestKit;

public sealed class RandomContentStreamTests
{
    [Fact]
    public void RandomContentStream_Read_IsIndependentOfChunkingAndSeeks()
    {
        const int length = 100_003;
        var whole = new byte[length];
        using (var stream = new RandomContentStream(42, length))
        {
            Assert.Equal(length, stream.Read(whole));
            Assert.Equal(0, stream.Read(new byte[10]));
        }

        var chunked = new MemoryStream();
        using (var stream = new RandomContentStream(42, length))
        {
            var buffer = new byte[13];
            int n;
            while ((n = stream.Read(buffer, 0, buffer.Length)) > 0) chunked.Write(buffer, 0, n);
        }
        Assert.Equal(whole, chunked.ToArray());

        using (var stream = new RandomContentStream(42, length))
        {
            stream.Position = 12_345;
            var part = new byte[777];
            Assert.Equal(part.Length, stream.Read(part));
            Assert.Equal(whole.AsSpan(12_345, 777).ToArray(), part);
        }
    }

    [Fact]
    public void RandomContentStream_Content_IsIncompressibleAndKeyed()
    {
        var a = new byte[1 << 16];
        var b = new byte[1 << 16];
        new RandomContentStream(1, a.Length).ReadExactly(a);
        new RandomContentStream(2, b.Length).ReadExactly(b);
        Assert.NotEqual(a, b);

        using var compressed = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(compressed, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true))
        {
            gzip.Write(a);
        }
        Assert.True(compressed.Length > a.Length * 99 / 100, $"compressed to {compressed.Length}");
    }
}
