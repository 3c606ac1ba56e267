using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace OpenLm.Mirror.AirGap;

/// <summary>Formats YAML scalars and keys so that every YAML 1.1 and 1.2 reader (Helm, k3s) reads them back as the same string.</summary>
internal static partial class YamlText
{
    private static readonly HashSet<string> ReservedWords = new(StringComparer.OrdinalIgnoreCase)
    {
        "y", "n", "yes", "no", "true", "false", "on", "off", "null", "~",
    };

    /// <summary>A double-quoted scalar with every character that needs it escaped.</summary>
    public static string DoubleQuoted(string value)
    {
        var sb = new StringBuilder(value.Length + 2);
        sb.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (char.IsControl(c) || c is '\u0085' or '\u2028' or '\u2029' or '\uFEFF')
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        return sb.Append('"').ToString();
    }

    /// <summary>A single-quoted scalar, or null when the value cannot be single-quoted on one line.</summary>
    public static string? SingleQuoted(string value) =>
        value.Any(c => char.IsControl(c) || c is '\u0085' or '\u2028' or '\u2029' or '\uFEFF')
            ? null
            : "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    /// <summary>
    /// True when <paramref name="value"/> can be written plain and is still read as this string: it starts with a letter
    /// or digit, uses only <c>[A-Za-z0-9._/:@-]</c> and cannot be read as a number, boolean, null or timestamp.
    /// Conservative on purpose: anything doubtful is quoted.
    /// </summary>
    public static bool IsSafePlain(string value)
    {
        if (!PlainChars().IsMatch(value) || ReservedWords.Contains(value))
        {
            return false;
        }

        // Anything that starts with a digit and contains only number-ish characters might be an int, float,
        // octal, hex, sexagesimal or timestamp in some YAML version: quote it ("7", "1.10", "0x1f", "1e5", "12:30").
        return !(char.IsAsciiDigit(value[0]) && NumberLike().IsMatch(value)) && !HexOctBin().IsMatch(value);
    }

    /// <summary>The value plain when that is safe, otherwise double-quoted.</summary>
    public static string Scalar(string value) => IsSafePlain(value) ? value : DoubleQuoted(value);

    /// <summary>A mapping key: plain when it is a simple identifier, otherwise double-quoted.</summary>
    public static string Key(string key) =>
        SimpleKey().IsMatch(key) && !ReservedWords.Contains(key) ? key : DoubleQuoted(key);

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex PlainChars();

    [GeneratedRegex(@"^[0-9a-fA-FxXoObBeEtTzZ._:+-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex NumberLike();

    [GeneratedRegex(@"^[-+]?0[xXoObB][0-9a-fA-F_]+$", RegexOptions.CultureInvariant)]
    private static partial Regex HexOctBin();

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex SimpleKey();
}
