using System.Text;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.PlatformSpec;

/// <summary>One step of a values path: a mapping key or a sequence index.</summary>
public readonly record struct ValuesPathSegment(string? Key, int Index)
{
    public bool IsIndex => Key is null;

    public static ValuesPathSegment ForKey(string key) => new(key, -1);

    public static ValuesPathSegment ForIndex(int index) => new(null, index);

    public override string ToString() => Key is null ? $"[{Index}]" : ValuesPath.EscapeKey(Key);
}

/// <summary>
/// Helm values paths in <c>--set</c> syntax, as seen from the umbrella chart:
/// keys joined by <c>.</c>, a literal <c>.</c> inside a key escaped as <c>\.</c>, sequence items as <c>[i]</c>
/// (<c>server.initContainers[0].image</c>). A path that ends in <c>.*</c> names a split-key image mapping
/// (<c>kafka.image.*</c> stands for <c>kafka.image.registry</c>, <c>.repository</c>, <c>.tag</c>, <c>.digest</c>).
/// </summary>
public static class ValuesPath
{
    /// <summary>Suffix of a path that names a split-key image mapping.</summary>
    public const string SplitSuffix = ".*";

    public static string EscapeKey(string key) => key.Replace("\\", "\\\\", StringComparison.Ordinal).Replace(".", "\\.", StringComparison.Ordinal);

    public static string AppendKey(string path, string key) => path.Length == 0 ? EscapeKey(key) : $"{path}.{EscapeKey(key)}";

    public static string AppendIndex(string path, int index) => $"{path}[{index}]";

    /// <summary>True when the path names a split-key image mapping (ends in <c>.*</c>).</summary>
    public static bool IsSplit(string path) => path.EndsWith(SplitSuffix, StringComparison.Ordinal);

    /// <summary>Splits a path into keys and indexes; a trailing <c>.*</c> is dropped (see <see cref="IsSplit"/>).</summary>
    public static IReadOnlyList<ValuesPathSegment> Parse(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var text = IsSplit(path) ? path[..^SplitSuffix.Length] : path;
        if (text.Length == 0)
        {
            throw new InputException($"values path '{path}' is empty");
        }

        var segments = new List<ValuesPathSegment>();
        var key = new StringBuilder();
        var haveKey = false;
        var i = 0;

        void EndKey()
        {
            if (!haveKey)
            {
                throw new InputException($"values path '{path}' has an empty key at position {i}");
            }

            segments.Add(ValuesPathSegment.ForKey(key.ToString()));
            key.Clear();
            haveKey = false;
        }

        while (i < text.Length)
        {
            var c = text[i];
            if (c == '\\' && i + 1 < text.Length)
            {
                key.Append(text[i + 1]);
                haveKey = true;
                i += 2;
            }
            else if (c == '.')
            {
                if (haveKey)
                {
                    EndKey();
                }
                else if (segments.Count == 0 || !segments[^1].IsIndex)
                {
                    EndKey();
                }

                i++;
            }
            else if (c == '[')
            {
                if (haveKey)
                {
                    EndKey();
                }
                else if (segments.Count == 0)
                {
                    throw new InputException($"values path '{path}' starts with an index");
                }

                var close = text.IndexOf(']', i);
                if (close < 0 || !int.TryParse(text.AsSpan(i + 1, close - i - 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index))
                {
                    throw new InputException($"values path '{path}' has a malformed index at position {i}");
                }

                segments.Add(ValuesPathSegment.ForIndex(index));
                i = close + 1;
                if (i < text.Length && text[i] is not ('.' or '['))
                {
                    throw new InputException($"values path '{path}' needs '.' or '[' after ']' at position {i}");
                }
            }
            else
            {
                key.Append(c);
                haveKey = true;
                i++;
            }
        }

        if (haveKey)
        {
            EndKey();
        }
        else if (segments.Count == 0 || !segments[^1].IsIndex)
        {
            EndKey();
        }

        return segments;
    }

    /// <summary>Formats segments back into a path (the inverse of <see cref="Parse"/>).</summary>
    public static string Format(IEnumerable<ValuesPathSegment> segments)
    {
        var path = string.Empty;
        foreach (var segment in segments)
        {
            path = segment.IsIndex ? AppendIndex(path, segment.Index) : AppendKey(path, segment.Key!);
        }

        return path;
    }
}
