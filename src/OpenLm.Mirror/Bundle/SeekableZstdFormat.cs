using System.Buffers.Binary;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// Constants and the seek table encoding of the zstd seekable format (facebook/zstd
/// <c>contrib/seekable_format/zstd_seekable_compression_format.md</c>, version 0.1.0): independent zstd frames
/// followed by one skippable frame that lists each frame's compressed and decompressed size.
/// </summary>
internal static class SeekableZstdFormat
{
    /// <summary>Magic of the skippable frame that carries the seek table.</summary>
    public const uint SkippableMagic = 0x184D2A5E;

    /// <summary>The last four bytes of a seekable file.</summary>
    public const uint SeekableMagic = 0x8F92EAB1;

    /// <summary>Skippable magic and frame size.</summary>
    public const int SkippableHeaderSize = 8;

    /// <summary>Number of frames (u32), descriptor (u8), seekable magic (u32).</summary>
    public const int FooterSize = 9;

    /// <summary>Compressed size and decompressed size (u32 each).</summary>
    public const int EntrySize = 8;

    /// <summary>An entry with the optional XXH64-low32 checksum.</summary>
    public const int ChecksumEntrySize = 12;

    /// <summary>Descriptor bit 7: entries carry a checksum.</summary>
    public const byte ChecksumFlag = 0x80;

    /// <summary>Descriptor bits 6-2: reserved for breaking changes, must be zero.</summary>
    public const byte ReservedBits = 0x7C;

    /// <summary>
    /// Largest decompressed size of one frame a reader accepts, as in the reference implementation
    /// (<c>ZSTD_SEEKABLE_MAX_FRAME_DECOMPRESSED_SIZE</c>).
    /// </summary>
    public const uint MaxFrameDecompressedSize = 1u << 30;

    /// <summary>
    /// Most frames a reader accepts. A bundle has one frame per tar entry plus one per 8 MiB of large entries,
    /// so this allows millions of blobs or 32 TiB; it bounds the memory a hostile seek table can claim.
    /// </summary>
    public const int MaxFrames = 1 << 22;

    /// <summary>Bytes of the whole seek table frame for <paramref name="frames"/> entries of <paramref name="entrySize"/>.</summary>
    public static long TableFrameLength(long frames, int entrySize) => SkippableHeaderSize + (frames * entrySize) + FooterSize;

    /// <summary>The seek table frame, without checksums (every data frame carries its own zstd content checksum).</summary>
    public static byte[] EncodeTable(IReadOnlyList<(uint Compressed, uint Decompressed)> frames)
    {
        var table = new byte[TableFrameLength(frames.Count, EntrySize)];
        var span = table.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, SkippableMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], (uint)(table.Length - SkippableHeaderSize));
        var at = SkippableHeaderSize;
        foreach (var (compressed, decompressed) in frames)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(span[at..], compressed);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 4)..], decompressed);
            at += EntrySize;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(span[at..], (uint)frames.Count);
        span[at + 4] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 5)..], SeekableMagic);
        return table;
    }
}
