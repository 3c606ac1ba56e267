using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace OpenLm.Mirror.PlatformSpec;

/// <summary>
/// A small YAML document tree built from YamlDotNet's parser events. Unlike the RepresentationModel it
/// keeps duplicate mapping keys (so callers can report every one of them instead of failing on the first),
/// records which file every node came from, shares aliased nodes instead of copying them, and bounds
/// nesting depth and node count.
/// </summary>
internal abstract class YNode
{
    protected YNode(string file, int line)
    {
        File = file;
        Line = line;
    }

    /// <summary>Display name of the file the node was read from.</summary>
    public string File { get; }

    /// <summary>1-based line of the node's first character.</summary>
    public int Line { get; }

    public abstract string KindName { get; }
}

internal sealed class YScalar : YNode
{
    private static readonly HashSet<string> NullWords = new(StringComparer.Ordinal) { "", "~", "null", "Null", "NULL" };
    private static readonly HashSet<string> TrueWords = new(StringComparer.Ordinal) { "true", "True", "TRUE", "yes", "Yes", "YES", "y", "Y", "on", "On", "ON" };
    private static readonly HashSet<string> FalseWords = new(StringComparer.Ordinal) { "false", "False", "FALSE", "no", "No", "NO", "n", "N", "off", "Off", "OFF" };

    public YScalar(string file, int line, string value, bool plain, string? tag)
        : base(file, line)
    {
        Value = value;
        IsPlain = plain;
        Tag = tag;
    }

    public string Value { get; }

    /// <summary>True when the scalar was written without quotes or block style (so <c>null</c>, <c>true</c> are not strings).</summary>
    public bool IsPlain { get; }

    public string? Tag { get; }

    public override string KindName => IsNull ? "null" : "scalar";

    public bool IsNull => Tag is "tag:yaml.org,2002:null" || (IsPlain && Tag is null && NullWords.Contains(Value));

    /// <summary>The boolean value under YAML 1.1 rules (what Helm's YAML library uses), or null when not a boolean.</summary>
    public bool? AsBoolean()
    {
        if (!IsPlain && Tag is not "tag:yaml.org,2002:bool")
        {
            return null;
        }

        if (TrueWords.Contains(Value))
        {
            return true;
        }

        return FalseWords.Contains(Value) ? false : null;
    }

    /// <summary>Text of a non-null scalar; null for a YAML null.</summary>
    public string? Text => IsNull ? null : Value;
}

internal sealed class YSequence(string file, int line) : YNode(file, line)
{
    public List<YNode> Items { get; } = [];

    public override string KindName => "sequence";
}

internal sealed record YEntry(YNode Key, string? KeyText, YNode Value);

internal sealed class YMapping(string file, int line) : YNode(file, line)
{
    private readonly Dictionary<string, int> _lastIndex = new(StringComparer.Ordinal);

    /// <summary>Every entry in document order, duplicates included.</summary>
    public List<YEntry> Entries { get; } = [];

    public override string KindName => "mapping";

    /// <summary>Entries with a scalar key, the last one winning for duplicate keys (what Helm does), in order of that last occurrence.</summary>
    public IEnumerable<YEntry> Effective =>
        Entries.Where((e, i) => e.KeyText is not null && _lastIndex[e.KeyText] == i);

    public int Count => _lastIndex.Count;

    public void Add(YEntry entry)
    {
        Entries.Add(entry);
        if (entry.KeyText is not null)
        {
            _lastIndex[entry.KeyText] = Entries.Count - 1;
        }
    }

    public bool ContainsKey(string key) => _lastIndex.ContainsKey(key);

    public YNode? Get(string key) => _lastIndex.TryGetValue(key, out var i) ? Entries[i].Value : null;

    public YScalar? GetScalar(string key) => Get(key) as YScalar;

    public string? GetText(string key) => GetScalar(key)?.Text;
}

/// <summary>A YAML syntax or structure problem, with the file and line it was found at.</summary>
internal sealed class YamlTreeException(string file, int line, string message) : Exception($"{file}:{line}: {message}")
{
    public string File { get; } = file;

    public int Line { get; } = line;

    public string Reason { get; } = message;
}

internal static class YamlTree
{
    public const int MaxDepth = 200;
    public const int DefaultMaxNodes = 2_000_000;

    /// <summary>
    /// Parses the first document of <paramref name="text"/>. Returns null for an empty stream or a document
    /// that is only a null. Throws <see cref="YamlTreeException"/> for syntax errors, unknown aliases or
    /// absurd nesting; <paramref name="allowMultipleDocuments"/> false also rejects a second document.
    /// </summary>
    public static YNode? Parse(string text, string file, bool allowMultipleDocuments = false, int maxNodes = DefaultMaxNodes)
    {
        var builder = new Builder(file, maxNodes);
        try
        {
            return builder.Run(new Parser(new StringReader(text)), allowMultipleDocuments);
        }
        catch (YamlException ex)
        {
            var line = ToLine(ex.Start.Line);
            var message = ex.InnerException is YamlException inner && !string.IsNullOrEmpty(inner.Message) ? inner.Message : ex.Message;
            throw new YamlTreeException(file, line, $"YAML syntax error: {StripMark(message)}");
        }
    }

    internal static int ToLine(long line) => line is <= 0 ? 1 : line > int.MaxValue ? int.MaxValue : (int)line;

    private static string StripMark(string message)
    {
        // YamlDotNet messages start with "(Line: 3, Col: 1, Idx: 10) - (Line: …): "; the caller already shows the line.
        var marker = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line:", StringComparison.Ordinal) && marker > 0 ? message[(marker + 3)..] : message;
    }

    private sealed class Builder(string file, int maxNodes)
    {
        private readonly Dictionary<string, YNode> _anchors = new(StringComparer.Ordinal);
        private int _nodes;

        public YNode? Run(IParser parser, bool allowMultipleDocuments)
        {
            parser.Consume<StreamStart>();
            if (parser.TryConsume<StreamEnd>(out _))
            {
                return null;
            }

            parser.Consume<DocumentStart>();
            var root = ParseNode(parser, 0);
            parser.Consume<DocumentEnd>();
            if (!allowMultipleDocuments && parser.Accept<DocumentStart>(out var second))
            {
                throw new YamlTreeException(file, ToLine(second.Start.Line), "the file holds more than one YAML document; expected exactly one");
            }

            return root is YScalar { IsNull: true } ? null : root;
        }

        private YNode ParseNode(IParser parser, int depth)
        {
            if (depth > MaxDepth)
            {
                throw new YamlTreeException(file, ToLine(parser.Current?.Start.Line ?? 1), $"nesting deeper than {MaxDepth} levels");
            }

            if (++_nodes > maxNodes)
            {
                throw new YamlTreeException(file, ToLine(parser.Current?.Start.Line ?? 1), $"more than {maxNodes} YAML nodes");
            }

            if (parser.TryConsume<AnchorAlias>(out var alias))
            {
                if (!_anchors.TryGetValue(alias.Value.Value, out var target))
                {
                    throw new YamlTreeException(file, ToLine(alias.Start.Line), $"alias '*{alias.Value.Value}' refers to an unknown anchor");
                }

                return target;
            }

            if (parser.TryConsume<Scalar>(out var scalar))
            {
                var node = new YScalar(file, ToLine(scalar.Start.Line), scalar.Value, scalar.Style == ScalarStyle.Plain, TagOf(scalar.Tag));
                Remember(scalar.Anchor, node);
                return node;
            }

            if (parser.TryConsume<SequenceStart>(out var sequenceStart))
            {
                var sequence = new YSequence(file, ToLine(sequenceStart.Start.Line));
                while (!parser.TryConsume<SequenceEnd>(out _))
                {
                    sequence.Items.Add(ParseNode(parser, depth + 1));
                }

                // Registered after the node is complete: an alias inside its own anchor is "unknown", so no cycles.
                Remember(sequenceStart.Anchor, sequence);
                return sequence;
            }

            if (parser.TryConsume<MappingStart>(out var mappingStart))
            {
                var mapping = new YMapping(file, ToLine(mappingStart.Start.Line));
                while (!parser.TryConsume<MappingEnd>(out _))
                {
                    var key = ParseNode(parser, depth + 1);
                    var value = ParseNode(parser, depth + 1);
                    mapping.Add(new YEntry(key, key is YScalar s ? s.Value : null, value));
                }

                Remember(mappingStart.Anchor, mapping);
                return mapping;
            }

            var unexpected = parser.Current;
            throw new YamlTreeException(file, ToLine(unexpected?.Start.Line ?? 1), $"unexpected YAML event {unexpected?.GetType().Name}");
        }

        private void Remember(AnchorName anchor, YNode node)
        {
            if (!anchor.IsEmpty)
            {
                _anchors[anchor.Value] = node;
            }
        }

        private static string? TagOf(TagName tag) => tag.IsEmpty || tag.IsNonSpecific ? null : tag.Value;
    }
}
