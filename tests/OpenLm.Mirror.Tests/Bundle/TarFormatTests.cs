using System.Formats.Tar;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Errors;
using Xunit;

namespace OpenLm.Mirror.Tests.Bundle;

public sealed class TarFormatTests
{
    private const string Name = "blobs/sha256/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Fact]
    public void TarHeaders_RegularFile_SmallEntryIsOneUstarBlock()
    {
        var header = TarHeaders.RegularFile(Name, 12345, 1_700_000_000);
        Assert.Equal(512, header.Length);
        using var reader = new TarReader(new MemoryStream([.. header, .. new byte[12345 + TarHeaders.Padding(12345)], .. TarHeaders.EndOfArchive]));
        var entry = reader.GetNextEntry()!;
        Assert.Equal(TarEntryFormat.Ustar, entry.Format);
        Assert.Equal(Name, entry.Name);
        Assert.Equal(12345, entry.Length);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), entry.ModificationTime);
        Assert.Null(reader.GetNextEntry());
    }

    [Fact]
    public async Task TarHeaders_RegularFile_EntryOver8GiBGetsPaxSizeRecord()
    {
        var size = 9L * 1024 * 1024 * 1024 + 7;
        var header = TarHeaders.RegularFile(Name, size, 0);
        Assert.Equal(3 * 512, header.Length);
        Assert.Equal(header.Length + size + TarHeaders.Padding(size), TarHeaders.EntryLength(Name, size));

        // System.Formats.Tar reads the size from the pax record (data not needed to read the header).
        using (var reader = new TarReader(new NonSeekable(new MemoryStream(header))))
        {
            var entry = reader.GetNextEntry(copyData: false)!;
            Assert.Equal(Name, entry.Name);
            Assert.Equal(size, entry.Length);
        }

        // So does the bundle's own tar reader.
        var ours = new TarStreamReader(new MemoryStream(header), "test");
        var parsed = await ours.NextAsync(CancellationToken.None);
        Assert.Equal(Name, parsed!.Name);
        Assert.Equal(size, parsed.Size);

        // And GNU tar lists it (before complaining that the data is missing).
        using var dir = new TempDir();
        await File.WriteAllBytesAsync(dir.File("big.tar"), header);
        var (_, stdout, _) = Tool.Run("tar", "-tvf", dir.File("big.tar"));
        Assert.Contains(size.ToString(System.Globalization.CultureInfo.InvariantCulture), stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void TarHeaders_PaxRecord_LengthCountsItself()
    {
        Assert.Equal("16 size=1234567\n", System.Text.Encoding.ASCII.GetString(TarHeaders.PaxRecord("size", "1234567")));
        Assert.Equal("8 a=bcd\n", System.Text.Encoding.ASCII.GetString(TarHeaders.PaxRecord("a", "bcd")));
        var r = TarHeaders.PaxRecord("size", "12345");
        Assert.Equal(r.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), System.Text.Encoding.ASCII.GetString(r).Split(' ')[0]);
    }

    [Fact]
    public async Task TarStreamReader_Next_RejectsCorruptChecksumAfterFirstHeader()
    {
        var first = TarHeaders.RegularFile("oci-layout", 0, 0);
        var second = TarHeaders.RegularFile("openlm-bundle.json", 0, 0);
        second[0] ^= 0x20;
        var reader = new TarStreamReader(new MemoryStream([.. first, .. second, .. TarHeaders.EndOfArchive]), "test");
        await reader.NextAsync(CancellationToken.None);
        var ex = await Assert.ThrowsAsync<IntegrityException>(async () => await reader.NextAsync(CancellationToken.None));
        Assert.Contains("checksum", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BundleReader_Read_ReportsProgress()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        using var pub = key.GetVerificationKey();
        var bundle = await WrittenBundle.CreateAsync(dir, key, layerSize: 3 * 1024 * 1024);
        var reports = new List<long>();
        await BundleReader.ReadAsync(new MemoryStream(bundle.Bytes), new BundleReadOptions { Key = pub, Progress = new SyncProgress(reports.Add) });
        Assert.Equal(bundle.Bytes.Length, reports[^1]);
        Assert.Equal(reports.Order(), reports);
        Assert.True(reports.Count > 10, $"{reports.Count} reports");
    }

    private sealed class NonSeekable(Stream inner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private sealed class SyncProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
