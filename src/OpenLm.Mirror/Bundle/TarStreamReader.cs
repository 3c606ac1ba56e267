using System.Buffers;
using System.Globalization;
using System.Text;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Bundle;

/// <summary>One tar header as read, after applying a preceding pax <c>x</c> header.</summary>
internal sealed record TarEntryHeader(string Name, long Size, byte TypeFlag, string LinkName, long Offset)
{
    public bool IsRegularFile => TypeFlag is (byte)'0' or 0;

    public bool IsDirectory => TypeFlag == (byte)'5';

    public string TypeName => TypeFlag switch
    {
        (byte)'0' or 0 => "regular file",
        (byte)'1' => "hard link",
        (byte)'2' => "symbolic link",
        (byte)'3' => "character device",
        (byte)'4' => "block device",
        (byte)'5' => "directory",
        (byte)'6' => "FIFO",
        (byte)'7' => "contiguous file",
        (byte)'g' => "pax global header",
        (byte)'x' => "pax extended header",
        (byte)'L' => "GNU long name",
        (byte)'K' => "GNU long link name",
        (byte)'S' => "GNU sparse file",
        (byte)'V' => "volume label",
        (byte)'M' => "GNU multi-volume continuation",
        _ => $"unknown type '{(char)TypeFlag}' (0x{TypeFlag:x2})",
    };
}

/// <summary>
/// A strict, forward-only reader of untrusted POSIX tar (ustar, pax, GNU headers). It never allocates
/// according to a size read from the archive except for pax headers, which are capped. Entry data is read
/// through <see cref="OpenData"/>; whatever is left unread is skipped by the next <see cref="NextAsync"/>.
/// Truncation and corrupt headers are <see cref="IntegrityException"/>; input that is not tar at all is
/// <see cref="InputException"/>.
/// </summary>
internal sealed class TarStreamReader
{
    /// <summary>Largest pax extended header accepted.</summary>
    public const int MaxPaxHeaderBytes = 64 * 1024;

    /// <summary>Most bytes of zero padding accepted after the end-of-archive marker.</summary>
    public const int MaxTrailingBytes = 1024 * 1024;

    private const int Block = TarHeaders.BlockSize;
    private readonly Stream _stream;
    private readonly string _source;
    private readonly byte[] _header = new byte[Block];
    private long _position;
    private long _remaining;
    private long _padding;
    private string? _current;
    private int _headersRead;
    private int _generation;
    private long _lastReported;

    public TarStreamReader(Stream stream, string source)
    {
        _stream = stream;
        _source = source;
    }

    /// <summary>Bytes consumed from the tar stream so far.</summary>
    public long Position => _position;

    /// <summary>Receives <see cref="Position"/> at least every <see cref="ProgressInterval"/> bytes and at each header.</summary>
    public IProgress<long>? Progress { get; init; }

    public const long ProgressInterval = 1 << 20;

    /// <summary>The next entry header, or null at the end-of-archive marker (after checking what follows it).</summary>
    public async ValueTask<TarEntryHeader?> NextAsync(CancellationToken cancellationToken)
    {
        await SkipCurrentAsync(cancellationToken).ConfigureAwait(false);
        _current = null;
        _generation++;
        Report(force: true);

        string? paxPath = null;
        long? paxSize = null;
        var sawPax = false;
        while (true)
        {
            var offset = _position;
            if (!await ReadHeaderBlockAsync(cancellationToken).ConfigureAwait(false))
            {
                if (sawPax)
                {
                    throw new IntegrityException($"{_source}: corrupt tar: a pax extended header is followed by the end-of-archive marker at offset {offset}");
                }

                await CheckTrailerAsync(cancellationToken).ConfigureAwait(false);
                Report(force: true);
                return null;
            }

            var header = ParseHeader(offset);
            _headersRead++;
            if (header.TypeFlag == (byte)'x')
            {
                if (sawPax)
                {
                    throw new IntegrityException($"{_source}: corrupt tar: two pax extended headers in a row at offset {offset}");
                }

                sawPax = true;
                (paxPath, paxSize) = await ReadPaxHeaderAsync(header, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (paxPath is not null || paxSize is not null)
            {
                header = header with { Name = paxPath ?? header.Name, Size = paxSize ?? header.Size };
            }

            _current = header.Name;
            _remaining = header.Size;
            _padding = TarHeaders.Padding(header.Size);

            // Directory, link and device entries carry no data in tar, whatever their size field says.
            if (!header.IsRegularFile && header.TypeFlag is not ((byte)'7' or (byte)'g' or (byte)'L' or (byte)'K' or (byte)'S'))
            {
                _remaining = 0;
                _padding = 0;
            }

            return header;
        }
    }

    /// <summary>True when the current entry's data can be skipped without reading it.</summary>
    public bool CanSeek => _stream.CanSeek;

    /// <summary>Skips the rest of the current entry's data by seeking (the padding is handled by the next header read).</summary>
    public void SeekPastData()
    {
        if (!_stream.CanSeek)
        {
            throw new InvalidOperationException("the tar stream cannot seek");
        }

        if (_position + _remaining + _padding > _stream.Length)
        {
            throw Truncated($"in the data of entry '{_current}'");
        }

        _stream.Seek(_remaining, SeekOrigin.Current);
        _position += _remaining;
        _remaining = 0;
    }

    /// <summary>The data of the current entry; reading past its end returns 0; truncation throws.</summary>
    public Stream OpenData() => new EntryStream(this, _generation);

    private async ValueTask SkipCurrentAsync(CancellationToken cancellationToken)
    {
        var toSkip = _remaining + _padding;
        if (toSkip == 0)
        {
            return;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            while (_remaining > 0)
            {
                var n = await ReadDataAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, _remaining)), cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }
            }

            await SkipPaddingAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async ValueTask SkipPaddingAsync(CancellationToken cancellationToken)
    {
        if (_padding == 0)
        {
            return;
        }

        var pad = new byte[_padding];
        var n = await _stream.ReadAtLeastAsync(pad, pad.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        _position += n;
        if (n < pad.Length)
        {
            throw Truncated($"in the padding after entry '{_current}'");
        }

        _padding = 0;
    }

    /// <summary>Reads data of the current entry; 0 only at the entry's end.</summary>
    private async ValueTask<int> ReadDataAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (_remaining == 0 || buffer.Length == 0)
        {
            return 0;
        }

        var want = (int)Math.Min(buffer.Length, _remaining);
        var n = await _stream.ReadAsync(buffer[..want], cancellationToken).ConfigureAwait(false);
        if (n == 0)
        {
            throw Truncated($"inside entry '{_current}' ({_remaining} bytes of its data missing)");
        }

        _remaining -= n;
        _position += n;
        Report(force: false);
        return n;
    }

    private void Report(bool force)
    {
        if (Progress is not null && (force || _position - _lastReported >= ProgressInterval) && _position != _lastReported)
        {
            _lastReported = _position;
            Progress.Report(_position);
        }
    }

    private int ReadData(Span<byte> buffer)
    {
        if (_remaining == 0 || buffer.Length == 0)
        {
            return 0;
        }

        var want = (int)Math.Min(buffer.Length, _remaining);
        var n = _stream.Read(buffer[..want]);
        if (n == 0)
        {
            throw Truncated($"inside entry '{_current}' ({_remaining} bytes of its data missing)");
        }

        _remaining -= n;
        _position += n;
        Report(force: false);
        return n;
    }

    /// <summary>Reads one header block; false for an all-zero block (end of archive).</summary>
    private async ValueTask<bool> ReadHeaderBlockAsync(CancellationToken cancellationToken)
    {
        var n = await _stream.ReadAtLeastAsync(_header, Block, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        _position += n;
        if (n < Block)
        {
            if (_headersRead == 0)
            {
                throw new InputException(n == 0
                    ? $"{_source}: the file is empty; expected a bundle (tar archive)"
                    : $"{_source}: not a tar archive (only {n} bytes; a tar header is {Block})");
            }

            throw Truncated(_current is null
                ? "where the next tar header should be (no end-of-archive marker)"
                : $"after entry '{_current}' (no end-of-archive marker)");
        }

        return _header.AsSpan().ContainsAnyExcept((byte)0);
    }

    private TarEntryHeader ParseHeader(long offset)
    {
        var h = _header.AsSpan();
        var magic = h.Slice(257, 6);
        var isPosix = magic.SequenceEqual("ustar\0"u8);
        var isGnu = magic.SequenceEqual("ustar "u8);
        if (!isPosix && !isGnu)
        {
            throw NotTar(offset, "no ustar magic");
        }

        if (!TryParseOctal(h.Slice(148, 8), out var stored))
        {
            throw NotTar(offset, "unreadable header checksum");
        }

        long unsignedSum = 0;
        long signedSum = 0;
        for (var i = 0; i < Block; i++)
        {
            var b = i is >= 148 and < 156 ? (byte)' ' : h[i];
            unsignedSum += b;
            signedSum += (sbyte)b;
        }

        if (stored != unsignedSum && stored != signedSum)
        {
            throw NotTar(offset, "header checksum mismatch");
        }

        var name = CString(h[..100]);
        if (isPosix)
        {
            var prefix = CString(h.Slice(345, 155));
            if (prefix.Length > 0)
            {
                name = prefix + "/" + name;
            }
        }

        if (!TryParseNumber(h.Slice(124, 12), out var size) || size < 0)
        {
            throw new IntegrityException($"{_source}: corrupt tar header at offset {offset} (entry '{name}'): unreadable size field");
        }

        return new TarEntryHeader(name, size, h[156], CString(h.Slice(157, 100)), offset);
    }

    private async ValueTask<(string? Path, long? Size)> ReadPaxHeaderAsync(TarEntryHeader header, CancellationToken cancellationToken)
    {
        if (header.Size > MaxPaxHeaderBytes)
        {
            throw new IntegrityException(
                $"{_source}: pax extended header at offset {header.Offset} claims {header.Size} bytes, more than the {MaxPaxHeaderBytes} byte limit");
        }

        var data = new byte[header.Size];
        var n = await _stream.ReadAtLeastAsync(data, data.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        _position += n;
        if (n < data.Length)
        {
            throw Truncated($"inside the pax extended header at offset {header.Offset}");
        }

        _current = "pax extended header";
        _remaining = 0;
        _padding = TarHeaders.Padding(header.Size);
        await SkipPaddingAsync(cancellationToken).ConfigureAwait(false);

        string? path = null;
        long? size = null;
        var rest = data.AsSpan();
        while (rest.Length > 0)
        {
            var space = rest.IndexOf((byte)' ');
            if (space <= 0
                || !int.TryParse(Encoding.ASCII.GetString(rest[..space]), NumberStyles.None, CultureInfo.InvariantCulture, out var length)
                || length <= space + 1
                || length > rest.Length
                || rest[length - 1] != (byte)'\n')
            {
                throw new IntegrityException($"{_source}: malformed pax extended header at offset {header.Offset}");
            }

            var record = rest[(space + 1)..(length - 1)];
            rest = rest[length..];
            var eq = record.IndexOf((byte)'=');
            if (eq <= 0)
            {
                throw new IntegrityException($"{_source}: malformed pax record in the extended header at offset {header.Offset}");
            }

            var key = Encoding.UTF8.GetString(record[..eq]);
            var value = Encoding.UTF8.GetString(record[(eq + 1)..]);
            switch (key)
            {
                case "path":
                    path = value;
                    break;
                case "size":
                    if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
                    {
                        throw new IntegrityException($"{_source}: pax header at offset {header.Offset} has an invalid size '{value}'");
                    }

                    size = parsed;
                    break;
                default:
                    if (key.StartsWith("GNU.sparse.", StringComparison.Ordinal))
                    {
                        throw new IntegrityException($"{_source}: pax header at offset {header.Offset} describes a sparse file ({key}); bundles hold only plain files");
                    }

                    // mtime, atime, ctime, uid, gid, uname, gname, comment, linkpath, xattrs: irrelevant to a bundle.
                    break;
            }
        }

        return (path, size);
    }

    private async ValueTask CheckTrailerAsync(CancellationToken cancellationToken)
    {
        // The first zero block was read; tolerate the second and any zero padding up to a record size.
        var buffer = new byte[8192];
        long trailing = 0;
        while (true)
        {
            var n = await _stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                return;
            }

            _position += n;
            trailing += n;
            if (buffer.AsSpan(0, n).ContainsAnyExcept((byte)0))
            {
                if (_headersRead == 0)
                {
                    throw new InputException($"{_source}: not a tar archive (it starts with a zero block followed by data)");
                }

                throw new IntegrityException($"{_source}: unexpected data after the tar end-of-archive marker (near offset {_position - n})");
            }

            if (trailing > MaxTrailingBytes)
            {
                throw new IntegrityException($"{_source}: more than {MaxTrailingBytes} bytes of padding after the tar end-of-archive marker");
            }
        }
    }

    private Exception NotTar(long offset, string why) =>
        _headersRead == 0
            ? new InputException($"{_source}: not a tar archive ({why} in the first header)")
            : new IntegrityException($"{_source}: corrupt tar header at offset {offset}{(_current is null ? string.Empty : $" after entry '{_current}'")}: {why}");

    private IntegrityException Truncated(string where) =>
        new($"{_source}: the bundle is truncated: it ends {where} at offset {_position}");

    private static string CString(ReadOnlySpan<byte> field)
    {
        var nul = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? field[..nul] : field);
    }

    /// <summary>Octal (optionally space/NUL padded) or GNU base-256 (high bit of the first byte set).</summary>
    private static bool TryParseNumber(ReadOnlySpan<byte> field, out long value)
    {
        if ((field[0] & 0x80) != 0)
        {
            value = 0;
            if (field[0] == 0xFF)
            {
                return false; // negative
            }

            var first = field[0] & 0x7F;
            var rest = field[1..];
            if (first != 0 || rest[..^8].ContainsAnyExcept((byte)0))
            {
                return false; // beyond 64 bits
            }

            foreach (var b in rest[^8..])
            {
                value = (value << 8) | b;
            }

            return value >= 0;
        }

        return TryParseOctal(field, out value);
    }

    private static bool TryParseOctal(ReadOnlySpan<byte> field, out long value)
    {
        value = 0;
        var i = 0;
        while (i < field.Length && field[i] is (byte)' ' or 0)
        {
            i++;
        }

        var digits = 0;
        for (; i < field.Length && field[i] is >= (byte)'0' and <= (byte)'7'; i++)
        {
            if (++digits > 21)
            {
                return false;
            }

            value = (value << 3) | (long)(field[i] - '0');
        }

        for (; i < field.Length; i++)
        {
            if (field[i] is not ((byte)' ' or 0))
            {
                return false;
            }
        }

        return true;
    }

    private sealed class EntryStream(TarStreamReader owner, int generation) : Stream
    {
        private TarStreamReader Reader
        {
            get
            {
                if (owner._generation != generation)
                {
                    throw new InvalidOperationException("the tar reader has moved past this entry; its data stream can no longer be read");
                }

                return owner;
            }
        }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Reader.ReadData(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer) => Reader.ReadData(buffer);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Reader.ReadDataAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Reader.ReadDataAsync(buffer, cancellationToken);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
