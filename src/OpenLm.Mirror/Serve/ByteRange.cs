using System.Globalization;

namespace OpenLm.Mirror.Serve;

/// <summary>What a <c>Range</c> request header asks of a blob of known size (RFC 9110 §14).</summary>
public enum RangeKind
{
    /// <summary>No range, or one this server ignores (several ranges, another unit, bad syntax): the whole blob, 200.</summary>
    Whole,

    /// <summary>One satisfiable range: 206 with <c>Content-Range</c>.</summary>
    Partial,

    /// <summary>A well-formed range that selects nothing of the blob: 416 with <c>Content-Range: bytes */size</c>.</summary>
    Unsatisfiable,
}

/// <summary>A parsed <c>Range</c> header: <c>bytes=first-last</c>, <c>bytes=first-</c> or the suffix <c>bytes=-length</c>.</summary>
public readonly record struct ByteRange(RangeKind Kind, long Offset, long Length)
{
    /// <summary>
    /// Parses <paramref name="header"/> for a blob of <paramref name="size"/> bytes. A last position past the end is
    /// clipped to it; a first position at or past the end, or an empty suffix, is unsatisfiable. Several ranges are
    /// answered with the whole blob (RFC 9110 lets a server ignore Range; pull clients ask for one).
    /// </summary>
    public static ByteRange Parse(string? header, long size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        var whole = new ByteRange(RangeKind.Whole, 0, size);
        if (string.IsNullOrWhiteSpace(header))
        {
            return whole;
        }

        var text = header.Trim();
        const string unit = "bytes=";
        if (!text.StartsWith(unit, StringComparison.OrdinalIgnoreCase) || text.Contains(','))
        {
            return whole;
        }

        var spec = text[unit.Length..].Trim();
        var dash = spec.IndexOf('-');
        if (dash < 0)
        {
            return whole;
        }

        var firstText = spec[..dash].Trim();
        var lastText = spec[(dash + 1)..].Trim();
        if (firstText.Length == 0)
        {
            // Suffix range: the last N bytes.
            if (!TryPosition(lastText, out var suffix))
            {
                return whole;
            }

            if (suffix == 0 || size == 0)
            {
                return new ByteRange(RangeKind.Unsatisfiable, 0, 0);
            }

            var length = Math.Min(suffix, size);
            return new ByteRange(RangeKind.Partial, size - length, length);
        }

        if (!TryPosition(firstText, out var first))
        {
            return whole;
        }

        long last;
        if (lastText.Length == 0)
        {
            last = size - 1;
        }
        else if (!TryPosition(lastText, out last) || last < first)
        {
            return whole;
        }

        if (first >= size)
        {
            return new ByteRange(RangeKind.Unsatisfiable, 0, 0);
        }

        last = Math.Min(last, size - 1);
        return new ByteRange(RangeKind.Partial, first, last - first + 1);
    }

    /// <summary>The <c>Content-Range</c> value: <c>bytes first-last/size</c>, or <c>bytes */size</c> when unsatisfiable.</summary>
    public string ContentRange(long size) => Kind == RangeKind.Unsatisfiable
        ? string.Create(CultureInfo.InvariantCulture, $"bytes */{size}")
        : string.Create(CultureInfo.InvariantCulture, $"bytes {Offset}-{Offset + Length - 1}/{size}");

    private static bool TryPosition(string text, out long value) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
