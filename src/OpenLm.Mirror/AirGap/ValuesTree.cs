using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.AirGap;

/// <summary>A value to set at one values path. <see cref="Origin"/> names the input that asked for it (for messages).</summary>
internal abstract record ValueLeaf(string Origin)
{
    /// <summary>The value as a one-line YAML flow node.</summary>
    public abstract string ToYaml();

    /// <summary>True when <paramref name="other"/> sets the same value.</summary>
    public abstract bool SameValue(ValueLeaf other);
}

/// <summary>A string scalar.</summary>
internal sealed record StringLeaf(string Value, string Origin) : ValueLeaf(Origin)
{
    public override string ToYaml() => YamlText.DoubleQuoted(Value);

    public override bool SameValue(ValueLeaf other) => other is StringLeaf s && s.Value == Value;
}

/// <summary>A pull-secret list with one secret: <c>[{name: X}]</c> (Kubernetes style) or <c>[X]</c> (Bitnami global style).</summary>
internal sealed record SecretListLeaf(string Name, bool AsObjects, string Origin) : ValueLeaf(Origin)
{
    public override string ToYaml() =>
        AsObjects ? $"[{{name: {YamlText.DoubleQuoted(Name)}}}]" : $"[{YamlText.DoubleQuoted(Name)}]";

    public override bool SameValue(ValueLeaf other) => other is SecretListLeaf s && s.Name == Name && s.AsObjects == AsObjects;
}

/// <summary>The nested mapping of values to set, built from dotted paths.</summary>
internal sealed class ValuesTree
{
    private readonly Dictionary<string, object> _children = new(StringComparer.Ordinal);

    public bool IsEmpty => _children.Count == 0;

    /// <summary>
    /// Entries in a stable order that does not depend on the input order: <c>global</c> first, then the image keys
    /// in their natural order (<c>registry</c>, <c>repository</c>, <c>tag</c>, <c>digest</c>), then the rest by ordinal key.
    /// </summary>
    public IEnumerable<KeyValuePair<string, object>> Entries =>
        _children.OrderBy(e => Rank(e.Key)).ThenBy(e => e.Key, StringComparer.Ordinal);

    private static int Rank(string key) => key switch
    {
        "global" => 0,
        "registry" => 1,
        "repository" => 2,
        "tag" => 3,
        "digest" => 4,
        _ => 5,
    };

    public void Set(IReadOnlyList<string> path, ValueLeaf leaf)
    {
        var node = this;
        for (var i = 0; i < path.Count; i++)
        {
            var key = path[i];
            var last = i == path.Count - 1;
            var shown = string.Join('.', path.Take(i + 1));
            if (!node._children.TryGetValue(key, out var existing))
            {
                if (last)
                {
                    node._children[key] = leaf;
                    return;
                }

                var child = new ValuesTree();
                node._children[key] = child;
                node = child;
                continue;
            }

            switch (existing)
            {
                case ValuesTree subtree when !last:
                    node = subtree;
                    continue;
                case ValueLeaf other when last:
                    if (!other.SameValue(leaf))
                    {
                        throw new InputException(
                            $"values path '{shown}' would be set twice with different values: {other.ToYaml()} (from {other.Origin}) and {leaf.ToYaml()} (from {leaf.Origin})");
                    }

                    return;
                case ValueLeaf other:
                    throw new InputException(
                        $"values path '{string.Join('.', path)}' (from {leaf.Origin}) lies under '{shown}', which is set to a value (from {other.Origin})");
                default:
                    throw new InputException(
                        $"values path '{shown}' (from {leaf.Origin}) is a parent of other values paths and cannot also hold a value");
            }
        }
    }

    /// <summary>Block-style lines for this tree at <paramref name="indent"/> spaces (no line terminators).</summary>
    public List<string> Render(int indent) => RenderEntries(Entries, indent);

    /// <summary>Block-style lines for some entries of a tree at <paramref name="indent"/> spaces.</summary>
    public static List<string> RenderEntries(IEnumerable<KeyValuePair<string, object>> entries, int indent)
    {
        var lines = new List<string>();
        Render(entries, indent, lines);
        return lines;
    }

    private static void Render(IEnumerable<KeyValuePair<string, object>> entries, int indent, List<string> lines)
    {
        var pad = new string(' ', indent);
        foreach (var (key, child) in entries)
        {
            if (child is ValueLeaf leaf)
            {
                lines.Add($"{pad}{YamlText.Key(key)}: {leaf.ToYaml()}");
            }
            else
            {
                lines.Add($"{pad}{YamlText.Key(key)}:");
                Render(((ValuesTree)child).Entries, indent + 2, lines);
            }
        }
    }
}
