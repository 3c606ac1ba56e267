using System.Globalization;
using System.Text;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// Writes the POSIX tar headers of a bundle byte for byte. Every entry is a plain ustar header (which a pax
/// reader reads as is); an entry of 8 GiB or more gets one preceding pax <c>x</c> header carrying only
/// <c>size</c>. An aligned entry (<see cref="AlignedRegularFile"/>) gets one preceding pax <c>x</c> header whose
/// <c>comment</c> record is sized so the entry's data starts on a <see cref="DataAlignment"/> boundary (plus
/// <c>size</c> when needed). Nothing in a header depends on the machine, the user or the clock.
/// </summary>
internal static class TarHeaders
{
    public const int BlockSize = 512;

    /// <summary>Largest size the 11-digit octal ustar field holds (8 GiB - 1).</summary>
    public const long MaxUstarSize = (1L << 33) - 1; // octal 77777777777

    private const int NameLength = 100;

    /// <summary>Two zero blocks end the archive.</summary>
    public static readonly byte[] EndOfArchive = new byte[2 * BlockSize];

    public static long Padding(long size) => (BlockSize - (size % BlockSize)) % BlockSize;

    /// <summary>Bytes a regular-file entry occupies: header(s), data, padding.</summary>
    public static long EntryLength(string name, long size) => HeaderLength(size) + size + Padding(size);

    public static int HeaderLength(long size) => size > MaxUstarSize ? 3 * BlockSize : BlockSize;

    /// <summary>
    /// Where an aligned entry's data starts: a multiple of this, the block size of the file systems a bundle is written
    /// on, so its blobs can be cloned (reflink) or copied in-kernel from the cache's files.
    /// </summary>
    public const int DataAlignment = 4096;

    /// <summary>The comment value's fixed start; the rest of the record is filler that only sets its length.</summary>
    public const string AlignmentComment = "openlm-mirror: pads the next entry's data to a 4096-byte boundary";

    /// <summary>
    /// Length of the header block(s) of an aligned entry whose first header starts at <paramref name="offset"/>: its
    /// data then starts at an offset that is <paramref name="residue"/> past a <see cref="DataAlignment"/> boundary
    /// (0: on the boundary).
    /// </summary>
    public static int AlignedHeaderLength(long offset, long size, int residue = 0)
    {
        if (residue is < 0 or >= DataAlignment || residue % BlockSize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(residue), $"{residue} is not a block offset inside {DataAlignment} bytes");
        }

        if (offset % BlockSize != 0)
        {
            throw new ArgumentException($"a tar header starts on a {BlockSize}-byte block, not at {offset}", nameof(offset));
        }

        // Without padding: a plain header (or the 3-block pax size form) already ending on a boundary needs nothing.
        if ((offset + HeaderLength(size)) % DataAlignment == residue)
        {
            return HeaderLength(size);
        }

        // x header + pax records (whole blocks) + ustar header; the records need one block at least (two with a size).
        var minimumRecords = size > MaxUstarSize ? 2 : 1;
        var length = (2 + minimumRecords) * BlockSize;
        while ((offset + length) % DataAlignment != residue)
        {
            length += BlockSize;
        }

        return length;
    }

    /// <summary>Bytes an aligned entry occupies when its first header starts at <paramref name="offset"/>.</summary>
    public static long AlignedEntryLength(long offset, long size, int residue = 0) => AlignedHeaderLength(offset, size, residue) + size + Padding(size);

    /// <summary>
    /// The header block(s) of a regular file whose first header starts at <paramref name="offset"/>, such that its data
    /// starts on a <see cref="DataAlignment"/> boundary. A plain reader sees a pax header it may ignore (<c>comment</c>).
    /// </summary>
    public static byte[] AlignedRegularFile(string name, long size, long mtime, long offset, int residue = 0)
    {
        var length = AlignedHeaderLength(offset, size, residue);
        if (length == HeaderLength(size))
        {
            return RegularFile(name, size, mtime);
        }

        CheckName(name);
        var sizeRecord = size > MaxUstarSize ? PaxRecord("size", size.ToString(CultureInfo.InvariantCulture)) : [];
        var recordsLength = length - (2 * BlockSize);
        var comment = PaddedRecord("comment", AlignmentComment, recordsLength - sizeRecord.Length);
        var result = new byte[length];
        FillUstar(result.AsSpan(0, BlockSize), PaxName(name), recordsLength, mtime, (byte)'x');
        sizeRecord.CopyTo(result.AsSpan(BlockSize));
        comment.CopyTo(result.AsSpan(BlockSize + sizeRecord.Length));
        FillUstar(result.AsSpan(length - BlockSize, BlockSize), name, size > MaxUstarSize ? 0 : size, mtime, (byte)'0');
        return result;
    }

    /// <summary>A pax record of exactly <paramref name="length"/> bytes: <paramref name="value"/> followed by spaces.</summary>
    private static byte[] PaddedRecord(string key, string value, int length)
    {
        var digits = length.ToString(CultureInfo.InvariantCulture).Length;
        var fill = length - digits - key.Length - value.Length - 3; // "<len> key=value<fill>\n"
        if (fill < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"a {key} record cannot be as short as {length} bytes");
        }

        var record = Encoding.ASCII.GetBytes($"{length} {key}={value}{new string(' ', fill)}\n");
        if (record.Length != length)
        {
            throw new InvalidOperationException($"pax record is {record.Length} bytes, not {length}");
        }

        return record;
    }

    private static string PaxName(string name) => ("PaxHeaders.0/" + name)[..Math.Min(NameLength, 13 + name.Length)];

    private static void CheckName(string name)
    {
        if (Encoding.ASCII.GetByteCount(name) != name.Length || name.Length > NameLength || name.Length == 0)
        {
            throw new ArgumentException($"tar entry name '{name}' must be 1 to {NameLength} ASCII characters", nameof(name));
        }
    }

    /// <summary>The header block(s) of a regular file (mode 0644, uid/gid 0, empty user and group names).</summary>
    public static byte[] RegularFile(string name, long size, long mtime)
    {
        CheckName(name);
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        ArgumentOutOfRangeException.ThrowIfNegative(mtime);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(mtime, BundleFormat.MaxTarTime);

        if (size <= MaxUstarSize)
        {
            var block = new byte[BlockSize];
            FillUstar(block, name, size, mtime, (byte)'0');
            return block;
        }

        // pax extended header with the size record; the ustar size field then holds 0.
        var record = PaxRecord("size", size.ToString(CultureInfo.InvariantCulture));
        var result = new byte[3 * BlockSize];
        FillUstar(result.AsSpan(0, BlockSize), PaxName(name), record.Length, mtime, (byte)'x');
        record.CopyTo(result.AsSpan(BlockSize));
        FillUstar(result.AsSpan(2 * BlockSize, BlockSize), name, 0, mtime, (byte)'0');
        return result;
    }

    /// <summary>A pax record <c>"&lt;len&gt; key=value\n"</c> where len counts the whole record.</summary>
    public static byte[] PaxRecord(string key, string value)
    {
        var body = $" {key}={value}\n";
        var length = body.Length + 1;
        while (length.ToString(CultureInfo.InvariantCulture).Length + body.Length != length)
        {
            length = length.ToString(CultureInfo.InvariantCulture).Length + body.Length;
        }

        return Encoding.UTF8.GetBytes(length.ToString(CultureInfo.InvariantCulture) + body);
    }

    private static void FillUstar(Span<byte> block, string name, long size, long mtime, byte typeflag)
    {
        block.Clear();
        Encoding.ASCII.GetBytes(name, block[..NameLength]);
        WriteOctal(block.Slice(100, 8), 0b110_100_100); // 0644
        WriteOctal(block.Slice(108, 8), 0);
        WriteOctal(block.Slice(116, 8), 0);
        WriteOctal(block.Slice(124, 12), size);
        WriteOctal(block.Slice(136, 12), mtime);
        block[156] = typeflag;
        "ustar\0"u8.CopyTo(block.Slice(257, 6));
        "00"u8.CopyTo(block.Slice(263, 2));
        WriteOctal(block.Slice(329, 8), 0);
        WriteOctal(block.Slice(337, 8), 0);

        // Checksum: sum of all bytes with the checksum field counted as spaces; stored as 6 octal digits, NUL, space.
        block.Slice(148, 8).Fill((byte)' ');
        var sum = 0;
        foreach (var b in block)
        {
            sum += b;
        }

        WriteOctal(block.Slice(148, 7), sum);
        block[155] = (byte)' ';
    }

    /// <summary>Zero-padded octal in all but the last byte of the field, then NUL.</summary>
    private static void WriteOctal(Span<byte> field, long value)
    {
        var digits = field.Length - 1;
        for (var i = digits - 1; i >= 0; i--)
        {
            field[i] = (byte)('0' + (value & 7));
            value >>= 3;
        }

        if (value != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(value), "value does not fit the octal field");
        }

        field[digits] = 0;
    }
}
