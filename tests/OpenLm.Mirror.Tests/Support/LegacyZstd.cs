namespace OpenLm.Mirror.Tests.Support;

/// <summary>Bundles compressed the way 0.1 wrote them: the whole tar as one zstd stream, without a seek table.</summary>
internal static class LegacyZstd
{
    /// <summary>Compresses the plain bundle at <paramref name="plainPath"/> into <paramref name="outputPath"/> and returns that path.</summary>
    public static async Task<string> CompressAsync(string plainPath, string outputPath)
    {
        var plain = await File.ReadAllBytesAsync(plainPath);
        await using var output = File.Create(outputPath);
        using var zstd = new ZstdSharp.CompressionStream(output, 3, leaveOpen: true);
        zstd.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
        zstd.SetPledgedSrcSize((ulong)plain.Length);
        await zstd.WriteAsync(plain);
        return outputPath;
    }
}
