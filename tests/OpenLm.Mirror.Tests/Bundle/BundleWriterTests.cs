using System.Text;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.Bundle;

public sealed class BundleWriterTests
{
    [Fact]
    public async Task BundleWriter_Write_RejectsCorruptCacheBlobAndLeavesNothing()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var layout = await TestLayout.CreateAsync(dir.File("layout"));
        var layer = layout.OwnLayers[1];
        var path = layout.Store.BlobPath(layer.Digest);
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[^1] ^= 0xFF;
        await File.WriteAllBytesAsync(path, bytes);

        var output = dir.File("bundle.tar");
        var ex = await Assert.ThrowsAsync<IntegrityException>(() => BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, output));
        Assert.Contains(layer.Digest.ToString(), ex.Message, StringComparison.Ordinal);
        Assert.Contains("digest mismatch", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(dir.Path, "bundle.tar*"));
    }

    [Fact]
    public async Task BundleWriter_Write_RejectsTruncatedCacheBlob()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var layout = await TestLayout.CreateAsync(dir.File("layout"));
        var layer = layout.SharedLayer;
        var path = layout.Store.BlobPath(layer.Digest);
        await File.WriteAllBytesAsync(path, (await File.ReadAllBytesAsync(path))[..100]);

        var ex = await Assert.ThrowsAsync<IntegrityException>(() => BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, dir.File("b.tar")));
        Assert.Contains(layer.Digest.ToString(), ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BundleWriter_Write_RejectsMissingCacheBlob()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var layout = await TestLayout.CreateAsync(dir.File("layout"));
        File.Delete(layout.Store.BlobPath(layout.SharedLayer.Digest));

        var ex = await Assert.ThrowsAsync<InputException>(() => BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, dir.File("b.tar")));
        Assert.Contains(layout.SharedLayer.Digest.ToString(), ex.Message, StringComparison.Ordinal);
        Assert.Contains("missing", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BundleWriter_Write_RefusesToOverwriteUnlessAsked()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var layout = await TestLayout.CreateAsync(dir.File("layout"));
        var output = dir.File("bundle.tar");
        await File.WriteAllTextAsync(output, "precious");

        var ex = await Assert.ThrowsAsync<InputException>(() => BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, output));
        Assert.Contains("already exists", ex.Message, StringComparison.Ordinal);
        Assert.Equal("precious", await File.ReadAllTextAsync(output));

        await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, output, new BundleWriteOptions { Overwrite = true });
        Assert.NotEqual("precious", await File.ReadAllTextAsync(output));
        Assert.Single(Directory.GetFiles(dir.Path, "bundle.tar*"));
    }

    [Fact]
    public async Task BundleWriter_Write_RejectsUnknownImageReference()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var layout = await TestLayout.CreateAsync(dir.File("layout"));
        var manifest = TestLayout.BaseManifest() with { Images = [new BundleImage { Reference = "example.com/nope:1" }] };
        var ex = await Assert.ThrowsAsync<InputException>(() => BundleWriter.WriteAsync(layout.Store, manifest, key, dir.File("b.tar")));
        Assert.Contains("example.com/nope:1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BundleWriter_Write_AddsUndescribedLayoutImages()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var layout = await TestLayout.CreateAsync(dir.File("layout"));
        var manifest = TestLayout.BaseManifest() with { Images = [] };
        var result = await BundleWriter.WriteAsync(layout.Store, manifest, key, dir.File("b.tar"));
        Assert.Equal([TestLayout.ServerRef, TestLayout.WebRef], result.Manifest.Images.Select(i => i.Reference));
        Assert.All(result.Manifest.Images, i => Assert.Empty(i.Values));
    }

    [Fact]
    public async Task BundleWriter_Write_IndexHasOneEntryPerImageWithFullReference()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var bundle = await WrittenBundle.CreateAsync(dir, key);
        var index = BundleTar.ReadEntries(bundle.Bytes)[3].Data;
        var doc = ManifestDocument.Parse(index, MediaTypes.OciIndex, "index.json");
        Assert.Equal([TestLayout.ServerRef, TestLayout.WebRef], doc.Manifests.Select(m => m.RefName));
        Assert.Equal(bundle.Result.Manifest.Index!.Digest, Digest.Sha256(index).ToString());
        Assert.Equal(bundle.Result.Manifest.Index.Size, index.Length);
        Assert.EndsWith("}\n", Encoding.UTF8.GetString(index), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BundleWriter_Write_ReportsProgress()
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var layout = await TestLayout.CreateAsync(dir.File("layout"));
        var reports = new List<long>();
        var result = await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, dir.File("b.tar"), null, new SyncProgress(reports.Add));
        Assert.NotEmpty(reports);
        Assert.Equal(result.TarBytes, reports[^1]);
        Assert.Equal(reports.Order(), reports);
    }

    [Theory]
    [InlineData(BundleCompression.None)]
    [InlineData(BundleCompression.Zstd)]
    public async Task BundleWriter_Write_CancellationLeavesNoFiles(BundleCompression compression)
    {
        using var dir = new TempDir();
        using var key = TestKeys.NewSigningKey();
        var layout = await TestLayout.CreateAsync(dir.File("layout"), layerSize: 256 * 1024);
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(n =>
        {
            if (n > 300_000)
            {
                cts.Cancel();
            }
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, dir.File("b.tar"), new BundleWriteOptions { Compression = compression }, progress, cts.Token));
        Assert.Empty(Directory.GetFiles(dir.Path, "b.tar*"));
    }

    private sealed class SyncProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
