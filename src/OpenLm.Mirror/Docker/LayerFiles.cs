using System.Security.Cryptography;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using ZstdSharp;

namespace OpenLm.Mirror.EngineLoad;

/// <summary>Layer media types and the one conversion <c>docker load</c> needs: zstd layers become plain tar.</summary>
internal static class LayerFiles
{
    private static ReadOnlySpan<byte> ZstdMagic => [0x28, 0xB5, 0x2F, 0xFD];

    /// <summary>
    /// True for OCI and Docker filesystem layers (tar, tar+gzip, tar+zstd, foreign and non-distributable ones);
    /// false for encrypted layers and anything that is not a layer tar (artifact payloads, signatures).
    /// </summary>
    public static bool IsFilesystemLayer(string mediaType) =>
        (mediaType.StartsWith("application/vnd.oci.image.layer.", StringComparison.Ordinal)
         || mediaType.StartsWith("application/vnd.docker.image.rootfs.", StringComparison.Ordinal))
        && !mediaType.Contains("encrypted", StringComparison.Ordinal)
        && (mediaType.EndsWith(".tar", StringComparison.Ordinal)
            || mediaType.EndsWith("+gzip", StringComparison.Ordinal)
            || mediaType.EndsWith(".gzip", StringComparison.Ordinal)
            || mediaType.EndsWith("+zstd", StringComparison.Ordinal));

    /// <summary>True when the file starts with the zstd frame magic (whatever its media type says).</summary>
    public static bool IsZstd(string path)
    {
        Span<byte> head = stackalloc byte[4];
        using var file = File.OpenRead(path);
        return file.ReadAtLeast(head, 4, throwOnEndOfStream: false) == 4 && head.SequenceEqual(ZstdMagic);
    }

    /// <summary>
    /// Decompresses a (verified) zstd layer into <paramref name="output"/>, checking the tar's SHA-256 against
    /// <paramref name="diffId"/> from the image config as it goes. Docker 20.10 cannot read zstd layers.
    /// Returns the tar's length.
    /// </summary>
    public static async Task<long> DecompressZstdAsync(string input, string output, Digest layer, string diffId, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long length = 0;
        var source = new FileStream(input, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await using (source.ConfigureAwait(false))
        {
            var zstd = new DecompressionStream(source, leaveOpen: true);
            await using (zstd.ConfigureAwait(false))
            {
                var target = new FileStream(output, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                await using (target.ConfigureAwait(false))
                {
                    var buffer = new byte[1 << 20];
                    try
                    {
                        int read;
                        while ((read = await zstd.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                        {
                            hash.AppendData(buffer, 0, read);
                            await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                            length += read;
                        }
                    }
                    catch (ZstdException ex)
                    {
                        throw new InputException($"layer {layer} is not valid zstd: {ex.Message}", ex);
                    }
                }
            }
        }

        var actual = "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
        if (!string.Equals(actual, diffId, StringComparison.Ordinal))
        {
            throw new IntegrityException($"layer {layer} decompresses to {actual}, but the image config says its diff_id is {diffId}");
        }

        return length;
    }
}
