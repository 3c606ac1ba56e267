using System.Globalization;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Bundle;

/// <summary>The part size of a split bundle as people write it: <c>4G</c>, <c>700M</c>, <c>4095MiB</c>, or plain bytes.</summary>
public static class SplitSize
{
    /// <summary>The smallest part size accepted from a user: below it a release becomes hundreds of files.</summary>
    public const long Minimum = 64L * 1024 * 1024;

    /// <summary>
    /// Parses a size with an optional binary suffix (K, M, G, T, optionally followed by <c>iB</c> or <c>B</c>; 1K = 1024).
    /// Anything unparsable, or below <see cref="Minimum"/>, is an input error naming the text.
    /// </summary>
    public static long Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.Trim();
        var unit = 1L;
        var number = trimmed;
        foreach (var (suffix, factor) in new[] { ("T", 1L << 40), ("G", 1L << 30), ("M", 1L << 20), ("K", 1L << 10) })
        {
            foreach (var form in new[] { suffix + "iB", suffix + "B", suffix })
            {
                if (trimmed.EndsWith(form, StringComparison.OrdinalIgnoreCase))
                {
                    unit = factor;
                    number = trimmed[..^form.Length];
                    goto parsed;
                }
            }
        }

    parsed:
        if (!decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) || value <= 0 || value * unit > long.MaxValue)
        {
            throw new InputException($"part size '{text}' is not a size; write it like 4G, 700M or a number of bytes") { Setting = Setting.SplitSize };
        }

        var bytes = (long)Math.Floor(value * unit);
        if (bytes < Minimum)
        {
            throw new InputException($"part size '{text}' ({bytes} bytes) is below the minimum of 64 MiB") { Setting = Setting.SplitSize };
        }

        return bytes;
    }
}
