using YamlDotNet.Core;

namespace OpenLm.Mirror.Yaml;

/// <summary>
/// A node of a YAML document read by <see cref="YamlTree"/>: one model for every YAML file the library reads,
/// whether it only looks at values (chart values, platform manifests) or edits the text in place (a customer's
/// values file). Each node knows the file and line it came from, for messages, and its character range in the
/// parsed text, so that an edit can be spliced into the original text without touching anything else.
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

    /// <summary>Index of the node's first character (its anchor or tag when it has one); 0 for a node built in code.</summary>
    public int Start { get; init; }

    /// <summary>Index just after the node's last character; 0 for a node built in code.</summary>
    public int End { get; init; }

    /// <summary>The anchor (<c>&amp;name</c>) defined on this node, if any.</summary>
    public string? Anchor { get; init; }

    public abstract string KindName { get; }
}

internal sealed class YScalar : YNode
{
    private static readonly HashSet<string> NullWords = new(StringComparer.Ordinal) { "", "~", "null", "Null", "NULL" };
    private static readonly HashSet<string> TrueWords = new(StringComparer.Ordinal) { "true", "True", "TRUE", "yes", "Yes", "YES", "y", "Y", "on", "On", "ON" };
    private static readonly HashSet<string> FalseWords = new(StringComparer.Ordinal) { "false", "False", "FALSE", "no", "No", "NO", "n", "N", "off", "Off", "OFF" };

    public YScalar(string file, int line, string value, ScalarStyle style, string? tag)
        : base(file, line)
    {
        Value = value;
        Style = style;
        Tag = tag;
    }

    public string Value { get; }

    /// <summary>How the scalar was written: plain, quoted or block (<c>|</c>, <c>&gt;</c>).</summary>
    public ScalarStyle Style { get; }

    /// <summary>The explicit tag (<c>!!str</c> as <c>tag:yaml.org,2002:str</c>), or null when there is none.</summary>
    public string? Tag { get; }

    /// <summary>True when the scalar was written without quotes or block style (so <c>null</c>, <c>true</c> are not strings).</summary>
    public bool IsPlain => Style == ScalarStyle.Plain;

    public override string KindName => IsNull ? "null" : "scalar";

    /// <summary>True when a YAML reader (Helm's included) takes the scalar as null: a plain null word or an explicit <c>!!null</c>.</summary>
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

/// <summary>
/// An alias (<c>*name</c>) kept as written. Only documents read with <see cref="YamlReadOptions.KeepAliases"/> hold
/// these (an editor must not write through an alias); otherwise an alias is replaced by the node it names.
/// </summary>
internal sealed class YAlias(string file, int line, string name, YNode? target) : YNode(file, line)
{
    public string Name { get; } = name;

    /// <summary>The anchored node, or null when no earlier node defines the anchor.</summary>
    public YNode? Target { get; } = target;

    public override string KindName => "alias";
}

internal sealed class YSequence(string file, int line) : YNode(file, line)
{
    /// <summary>Written as <c>[ ... ]</c> rather than as <c>-</c> lines.</summary>
    public bool IsFlow { get; init; }

    public List<YNode> Items { get; } = [];

    public override string KindName => "sequence";
}

/// <summary>A mapping entry. <see cref="KeyText"/> is the key's text when the key is a scalar, else null.</summary>
internal sealed record YEntry(YNode Key, YNode Value)
{
    public string? KeyText => Key is YScalar scalar ? scalar.Value : null;
}

internal sealed class YMapping(string file, int line) : YNode(file, line)
{
    private readonly List<YEntry> _entries = [];
    private readonly Dictionary<string, int> _lastIndex = new(StringComparer.Ordinal);

    /// <summary>Written as <c>{ ... }</c> rather than as indented lines.</summary>
    public bool IsFlow { get; init; }

    /// <summary>Every entry in document order, duplicates included.</summary>
    public IReadOnlyList<YEntry> Entries => _entries;

    public override string KindName => "mapping";

    /// <summary>Entries with a scalar key, the last one winning for duplicate keys (what Helm does), in order of that last occurrence.</summary>
    public IEnumerable<YEntry> Effective =>
        _entries.Where((e, i) => e.KeyText is not null && _lastIndex[e.KeyText] == i);

    public int Count => _lastIndex.Count;

    public void Add(YEntry entry)
    {
        _entries.Add(entry);
        if (entry.KeyText is not null)
        {
            _lastIndex[entry.KeyText] = _entries.Count - 1;
        }
    }

    public bool ContainsKey(string key) => _lastIndex.ContainsKey(key);

    public YNode? Get(string key) => _lastIndex.TryGetValue(key, out var i) ? _entries[i].Value : null;

    public YScalar? GetScalar(string key) => Get(key) as YScalar;

    public string? GetText(string key) => GetScalar(key)?.Text;
}
