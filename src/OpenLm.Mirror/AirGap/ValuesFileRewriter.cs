using System.Text;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Yaml;
using YamlDotNet.Core;

namespace OpenLm.Mirror.AirGap;

/// <summary>
/// Applies a <see cref="ValuesTree"/> to the text of an existing values file by splicing: only the scalars at the
/// target paths are replaced and only missing keys are inserted; every other character of the file stays as it was.
/// </summary>
internal sealed class ValuesFileRewriter
{
    private readonly string _text;
    private readonly string _sourceName;
    private readonly string _newline;
    private readonly List<Edit> _edits = [];
    private readonly List<string> _warnings = [];

    private ValuesFileRewriter(string text, string sourceName)
    {
        _text = text;
        _sourceName = sourceName;
        _newline = text.Contains("\r\n", StringComparison.Ordinal) ? "\r\n" : "\n";
    }

    public static (string Text, IReadOnlyList<string> Warnings) Apply(string text, ValuesTree tree, string sourceName)
    {
        // The parser skips a byte order mark without counting it in its marks: take it off and put it back.
        var bom = text.StartsWith('\uFEFF') ? "\uFEFF" : string.Empty;
        var body = text[bom.Length..];
        var rewriter = new ValuesFileRewriter(body, sourceName);
        var document = Parse(body, sourceName);
        rewriter.Run(document, tree);
        return (bom + rewriter.Splice(), rewriter._warnings);
    }

    /// <summary>
    /// Reads the file keeping aliases as written: an edit must never reach through an alias into a node that other
    /// parts of the file share. The messages are this file's own, they name the values file and its line and column.
    /// </summary>
    private static YamlDocument Parse(string text, string sourceName)
    {
        YamlDocument document;
        try
        {
            document = YamlTree.Read(text, sourceName, new YamlReadOptions { KeepAliases = true });
        }
        catch (YamlTreeException ex) when (ex.SyntaxError is { } e)
        {
            throw new InputException($"{sourceName}: not valid YAML at line {e.Start.Line}, column {e.Start.Column}: {e.Message}", e);
        }
        catch (YamlTreeException ex)
        {
            throw new InputException($"{sourceName}: line {ex.Line}: {ex.Reason}", ex);
        }

        if (document.SecondDocumentLine is { } second)
        {
            throw new InputException($"{sourceName}: line {second}: a second YAML document starts here; a values file holds exactly one document");
        }

        return document;
    }

    private void Run(YamlDocument document, ValuesTree tree)
    {
        var root = document.Root;
        if (tree.IsEmpty)
        {
            return;
        }

        switch (root)
        {
            case null:
                AppendAtEnd(tree.Render(0));
                break;
            case YScalar { Anchor: null } marker when IsEmptyValue(marker):
                // "---" with nothing after it: add the keys right after the marker's line (before any "..." end marker).
                InsertLinesAfter(document.DocumentStartEnd, tree.Render(0));
                break;
            case YScalar { Anchor: null } nullRoot when IsBareNull(nullRoot):
            case YMapping { IsFlow: true, Entries.Count: 0, Anchor: null }:
                // A block mapping must start on its own line (not after "--- ").
                var lineBreak = Column(root.Start) == 0 ? string.Empty : _newline;
                AddEdit(root.Start, root.End, lineBreak + string.Join(_newline, tree.Render(0)));
                break;
            case YMapping { IsFlow: false } mapping:
                Merge(mapping, tree, []);
                break;
            case YMapping:
                throw Fail(root, "(top level)", "the top level is a flow mapping ({ ... }); only block mappings can be edited");
            default:
                throw Fail(root, "(top level)", "the top level is not a mapping");
        }
    }

    private void Merge(YMapping mapping, ValuesTree desired, List<string> path)
    {
        CheckNotShared(mapping, path);
        var missing = new List<KeyValuePair<string, object>>();
        foreach (var (key, child) in desired.Entries)
        {
            var childPath = new List<string>(path) { key };
            var shown = string.Join('.', childPath);
            var matches = mapping.Entries.Where(e => EditableKey(e) == key).ToList();
            if (matches.Count > 1)
            {
                throw Fail(matches[1].Key, shown, "the key appears more than once");
            }

            if (matches.Count == 0)
            {
                missing.Add(new KeyValuePair<string, object>(key, child));
                continue;
            }

            var entry = matches[0];
            var value = entry.Value;
            CheckNotShared(value, childPath);
            switch (child)
            {
                case StringLeaf leaf:
                    if (value is not YScalar scalar)
                    {
                        throw Fail(value, shown, $"expected a string here but found a {Describe(value)}");
                    }

                    ReplaceScalar(scalar, leaf.Value, shown, inFlow: mapping.IsFlow);
                    break;
                case SecretListLeaf secrets:
                    ApplySecretList(value, secrets, shown);
                    break;
                case ValuesTree subtree:
                    switch (value)
                    {
                        case YMapping { IsFlow: false } block:
                            Merge(block, subtree, childPath);
                            break;
                        case YMapping { IsFlow: true, Entries.Count: 0 } empty:
                            AddEdit(ColonAfter(entry, shown) + 1, empty.End, _newline + string.Join(_newline, subtree.Render(Column(entry.Key.Start) + 2)));
                            break;
                        case YMapping { IsFlow: true } flow when SetsOnlyExistingScalars(flow, subtree):
                            // imagePullSecrets: {name: ""} as OpenLM's charts write it: the scalars change in place.
                            Merge(flow, subtree, childPath);
                            break;
                        case YMapping:
                            throw Fail(value, shown, "this is a flow mapping ({ ... }); rewrite it in block style to let image values be edited");
                        case YScalar empty when IsEmptyValue(empty):
                            AddEdit(empty.Start, empty.Start, _newline + string.Join(_newline, subtree.Render(Column(entry.Key.Start) + 2)));
                            break;
                        case YScalar nullValue when IsBareNull(nullValue):
                            AddEdit(ColonAfter(entry, shown) + 1, nullValue.End, _newline + string.Join(_newline, subtree.Render(Column(entry.Key.Start) + 2)));
                            break;
                        default:
                            throw Fail(value, shown, $"expected a mapping here but found a {Describe(value)}");
                    }

                    break;
            }
        }

        if (missing.Count == 0)
        {
            return;
        }

        var mergeKey = mapping.Entries.FirstOrDefault(e => EditableKey(e) == "<<");
        if (mergeKey is not null)
        {
            throw Fail(mergeKey.Key, path.Count == 0 ? "(top level)" : string.Join('.', path),
                $"the mapping uses a merge key (<<) and is missing {string.Join(", ", missing.Select(m => m.Key))}; " +
                "adding keys next to a merge key can hide merged values — write the keys out explicitly");
        }

        var lines = ValuesTree.RenderEntries(missing, Column(mapping.Entries[0].Key.Start));
        InsertLinesAfter(ContentEnd(mapping), lines);
    }

    /// <summary>True when every value <paramref name="desired"/> sets is a string at a key <paramref name="flow"/> already holds a scalar for.</summary>
    private static bool SetsOnlyExistingScalars(YMapping flow, ValuesTree desired) =>
        desired.Entries.All(d => d.Value is StringLeaf && flow.Entries.Count(e => EditableKey(e) == d.Key) == 1 &&
                                 flow.Entries.Single(e => EditableKey(e) == d.Key).Value is YScalar);

    /// <param name="inFlow">The scalar sits in a flow mapping, where a plain scalar must not hold flow indicators: it is quoted.</param>
    private void ReplaceScalar(YScalar scalar, string value, string path, bool inFlow = false)
    {
        if (IsEmptyValue(scalar))
        {
            AddEdit(scalar.Start, scalar.Start, " " + YamlText.DoubleQuoted(value));
            return;
        }

        var replacement = scalar.Style switch
        {
            ScalarStyle.SingleQuoted => YamlText.SingleQuoted(value) ?? YamlText.DoubleQuoted(value),
            ScalarStyle.DoubleQuoted => YamlText.DoubleQuoted(value),
            ScalarStyle.Literal or ScalarStyle.Folded =>
                throw Fail(scalar, path, "the value is a block scalar (| or >); write it as a one-line string to let it be rewritten"),
            _ => YamlText.IsSafePlain(value) && !inFlow ? value : YamlText.DoubleQuoted(value),
        };

        if (_text.AsSpan(scalar.Start, scalar.End - scalar.Start).SequenceEqual(replacement))
        {
            return;
        }

        AddEdit(scalar.Start, scalar.End, replacement);
    }

    private void ApplySecretList(YNode value, SecretListLeaf secrets, string path)
    {
        switch (value)
        {
            case YScalar empty when IsEmptyValue(empty):
                AddEdit(empty.Start, empty.Start, " " + secrets.ToYaml());
                break;
            case YScalar nullValue when IsBareNull(nullValue):
                AddEdit(nullValue.Start, nullValue.End, secrets.ToYaml());
                break;
            case YSequence { Items.Count: 0 } emptyList:
                AddEdit(emptyList.Start, emptyList.End, secrets.ToYaml());
                break;
            case YSequence list:
                var listed = list.Items.Any(item => item switch
                {
                    YScalar s => s.Value == secrets.Name,
                    YMapping m => m.Entries.Any(e => EditableKey(e) == "name" && e.Value is YScalar n && n.Value == secrets.Name),
                    _ => false,
                });
                if (!listed)
                {
                    _warnings.Add(
                        $"{_sourceName}: '{path}' already lists pull secrets and was left unchanged; add " +
                        $"{secrets.ToYaml()[1..^1]} to it if the air-gapped registry needs the secret '{secrets.Name}'");
                }

                break;
            default:
                throw Fail(value, path, $"expected a list of pull secrets but found a {Describe(value)}");
        }
    }

    /// <summary>Refuses nodes that other parts of the file may share (anchors) or that stand for another node (aliases).</summary>
    private void CheckNotShared(YNode node, List<string> path)
    {
        var shown = path.Count == 0 ? "(top level)" : string.Join('.', path);
        if (node is YAlias alias)
        {
            throw Fail(node, shown, $"the value is an alias (*{alias.Name}); editing through YAML aliases is not supported — " +
                                   "write the value out, or use the generated override file instead of rewriting this file");
        }

        if (node.Anchor is not null)
        {
            throw Fail(node, shown, $"the value defines the anchor &{node.Anchor}, which other values may alias; editing it is not supported — " +
                                   "write the values out, or use the generated override file instead of rewriting this file");
        }
    }

    /// <summary>Inserts whole lines at the start of the line after <paramref name="contentEnd"/>.</summary>
    private void InsertLinesAfter(int contentEnd, List<string> lines)
    {
        var block = string.Concat(lines.Select(l => l + _newline));
        if (contentEnd == 0 || _text[contentEnd - 1] == '\n')
        {
            AddEdit(contentEnd, contentEnd, block);
            return;
        }

        var newline = _text.IndexOf('\n', contentEnd);
        if (newline >= 0)
        {
            AddEdit(newline + 1, newline + 1, block);
        }
        else
        {
            AddEdit(_text.Length, _text.Length, _newline + block);
        }
    }

    private void AppendAtEnd(List<string> lines)
    {
        var block = string.Concat(lines.Select(l => l + _newline));
        var needsBreak = _text.Length > 0 && _text[^1] != '\n';
        AddEdit(_text.Length, _text.Length, (needsBreak ? _newline : string.Empty) + block);
    }

    /// <summary>Where a node's text ends, ignoring what follows it on its line.</summary>
    private static int ContentEnd(YNode node) => node switch
    {
        YMapping { IsFlow: false, Entries.Count: > 0 } m => ContentEnd(m.Entries[^1].Value),
        YSequence { IsFlow: false, Items.Count: > 0 } s => ContentEnd(s.Items[^1]),
        _ => node.End,
    };

    private int ColonAfter(YEntry entry, string path)
    {
        var i = entry.Key.End;
        while (i < _text.Length && _text[i] is ' ' or '\t')
        {
            i++;
        }

        if (i >= _text.Length || _text[i] != ':')
        {
            throw Fail(entry.Key, path, "the key is not followed by ':' on the same line (explicit '?' keys are not supported)");
        }

        return i;
    }

    private int Column(int index) => index == 0 ? 0 : index - (_text.LastIndexOf('\n', index - 1) + 1);

    private (int Line, int Column) Position(int index)
    {
        var line = 1;
        for (var i = 0; i < index && i < _text.Length; i++)
        {
            if (_text[i] == '\n')
            {
                line++;
            }
        }

        return (line, Column(index) + 1);
    }

    private InputException Fail(YNode node, string path, string why)
    {
        var (line, column) = Position(node.Start);
        return new InputException($"{_sourceName}: line {line}, column {column}: values path '{path}': {why}");
    }

    /// <summary>
    /// The key's text when the rewriter may match it: a scalar key that defines no anchor. An anchored key is shared
    /// with its aliases, and the rewriter treats every shared node as not its to edit.
    /// </summary>
    private static string? EditableKey(YEntry entry) => entry.Key is YScalar { Anchor: null } scalar ? scalar.Value : null;

    /// <summary>A key with nothing after the colon (or a bare <c>-</c>): an empty plain scalar of no width just after the indicator.</summary>
    private static bool IsEmptyValue(YScalar scalar) =>
        scalar.Value.Length == 0 && scalar.Style is ScalarStyle.Plain or ScalarStyle.Any && scalar.Start == scalar.End;

    /// <summary>
    /// A plain, untagged null (empty, <c>~</c>, <c>null</c>) that may be overwritten in place. Narrower than
    /// <see cref="YScalar.IsNull"/> on purpose: an explicit <c>!!null</c> tag is text the rewriter does not drop silently.
    /// </summary>
    private static bool IsBareNull(YScalar scalar) =>
        scalar.Style is ScalarStyle.Plain or ScalarStyle.Any && scalar.Tag is null &&
        (IsEmptyValue(scalar) || scalar.Value is "~" or "null" or "Null" or "NULL");

    private static string Describe(YNode node) => node switch
    {
        YMapping => "mapping",
        YSequence => "list",
        YAlias => "alias",
        YScalar s => $"scalar '{s.Value}'",
        _ => "node",
    };

    private void AddEdit(int start, int end, string text) => _edits.Add(new Edit(start, end, text, _edits.Count));

    private string Splice()
    {
        var sb = new StringBuilder(_text);
        var ordered = _edits.OrderByDescending(e => e.Start).ThenByDescending(e => e.Sequence).ToList();
        for (var i = 0; i < ordered.Count; i++)
        {
            var edit = ordered[i];
            if (i > 0 && edit.End > ordered[i - 1].Start)
            {
                throw new InvalidOperationException($"overlapping edits at {edit.Start}..{edit.End} and {ordered[i - 1].Start}..{ordered[i - 1].End}");
            }

            sb.Remove(edit.Start, edit.End - edit.Start).Insert(edit.Start, edit.Text);
        }

        return sb.ToString();
    }

    /// <summary>Replace <c>[Start, End)</c> with <c>Text</c>; <c>Sequence</c> orders insertions at one point (earlier first).</summary>
    private sealed record Edit(int Start, int End, string Text, int Sequence);
}
