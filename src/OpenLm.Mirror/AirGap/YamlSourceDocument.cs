using OpenLm.Mirror.Errors;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace OpenLm.Mirror.AirGap;

/// <summary>A YAML node with its exact character range in the source text (indices into the string that was parsed).</summary>
internal abstract class YNode
{
    /// <summary>Index of the node's first character (its anchor or tag when it has one).</summary>
    public int Start { get; init; }

    /// <summary>Index just after the node's last character.</summary>
    public int End { get; init; }

    public string? Anchor { get; init; }
}

internal sealed class YScalar : YNode
{
    public required string Value { get; init; }

    public ScalarStyle Style { get; init; }

    public string? Tag { get; init; }

    /// <summary>A key with nothing after the colon (or a bare <c>-</c>); Start = End = just after the indicator.</summary>
    public bool IsEmpty => Value.Length == 0 && Style is ScalarStyle.Plain or ScalarStyle.Any && Start == End;

    /// <summary>A plain scalar every YAML reader takes as null (empty, <c>~</c>, <c>null</c>).</summary>
    public bool IsNull => Style is ScalarStyle.Plain or ScalarStyle.Any && Tag is null &&
                          (IsEmpty || Value is "~" or "null" or "Null" or "NULL");
}

internal sealed class YAlias : YNode
{
    public required string Name { get; init; }
}

internal sealed record YEntry(YNode Key, YNode Value)
{
    public string? KeyText => Key is YScalar { Anchor: null } s ? s.Value : null;
}

internal sealed class YMapping : YNode
{
    public bool IsFlow { get; init; }

    public List<YEntry> Entries { get; } = [];
}

internal sealed class YSequence : YNode
{
    public bool IsFlow { get; init; }

    public List<YNode> Items { get; } = [];
}

/// <summary>
/// A single YAML document parsed with YamlDotNet's event parser, keeping each node's source range so that edits
/// can be spliced into the original text (comments, quoting and layout are left alone).
/// </summary>
internal sealed class YamlSourceDocument
{
    private YamlSourceDocument(string text, YNode? root, int documentStartEnd)
    {
        Text = text;
        Root = root;
        DocumentStartEnd = documentStartEnd;
    }

    public string Text { get; }

    /// <summary>The document's root node, or null when the text holds no document (empty or only comments).</summary>
    public YNode? Root { get; }

    /// <summary>Index just after the <c>---</c> marker (the document's first token when there is no marker).</summary>
    public int DocumentStartEnd { get; }

    public static YamlSourceDocument Parse(string text, string sourceName)
    {
        var parser = new Parser(new StringReader(text));
        try
        {
            parser.Consume<StreamStart>();
            YNode? root = null;
            var documentStartEnd = 0;
            if (parser.TryConsume<DocumentStart>(out var documentStart))
            {
                documentStartEnd = (int)Math.Min(documentStart.End.Index, text.Length);
                root = ReadNode(parser, text.Length);
                parser.Consume<DocumentEnd>();
                if (parser.Accept<DocumentStart>(out var second))
                {
                    throw new InputException(
                        $"{sourceName}: line {second.Start.Line}: a second YAML document starts here; a values file holds exactly one document");
                }
            }

            parser.Consume<StreamEnd>();
            return new YamlSourceDocument(text, root, documentStartEnd);
        }
        catch (YamlException e)
        {
            throw new InputException($"{sourceName}: not valid YAML at line {e.Start.Line}, column {e.Start.Column}: {e.Message}", e);
        }
    }

    private static YNode ReadNode(IParser parser, int length)
    {
        switch (parser.Current)
        {
            case Scalar scalar:
                parser.MoveNext();
                // Empty scalars can carry marks past the end of the text (e.g. a document that is only "---").
                return new YScalar
                {
                    Start = (int)Math.Min(scalar.Start.Index, length),
                    End = (int)Math.Min(scalar.End.Index, length),
                    Anchor = scalar.Anchor.IsEmpty ? null : scalar.Anchor.Value,
                    Value = scalar.Value,
                    Style = scalar.Style,
                    Tag = scalar.Tag.IsEmpty || scalar.Tag.IsNonSpecific ? null : scalar.Tag.Value,
                };
            case AnchorAlias alias:
                parser.MoveNext();
                return new YAlias { Start = (int)alias.Start.Index, End = (int)alias.End.Index, Name = alias.Value.Value };
            case MappingStart start:
            {
                parser.MoveNext();
                var entries = new List<YEntry>();
                while (parser.Current is not MappingEnd)
                {
                    var key = ReadNode(parser, length);
                    var value = ReadNode(parser, length);
                    entries.Add(new YEntry(key, value));
                }

                var end = parser.Current;
                parser.MoveNext();
                var flow = start.Style == MappingStyle.Flow;
                var mapping = new YMapping
                {
                    Start = (int)start.Start.Index,
                    End = flow ? (int)end.Start.Index + 1 : entries.Count > 0 ? entries[^1].Value.End : (int)start.End.Index,
                    Anchor = start.Anchor.IsEmpty ? null : start.Anchor.Value,
                    IsFlow = flow,
                };
                mapping.Entries.AddRange(entries);
                return mapping;
            }

            case SequenceStart start:
            {
                parser.MoveNext();
                var items = new List<YNode>();
                while (parser.Current is not SequenceEnd)
                {
                    items.Add(ReadNode(parser, length));
                }

                var end = parser.Current;
                parser.MoveNext();
                var flow = start.Style == SequenceStyle.Flow;
                var sequence = new YSequence
                {
                    Start = (int)start.Start.Index,
                    End = flow ? (int)end.Start.Index + 1 : items.Count > 0 ? items[^1].End : (int)start.End.Index,
                    Anchor = start.Anchor.IsEmpty ? null : start.Anchor.Value,
                    IsFlow = flow,
                };
                sequence.Items.AddRange(items);
                return sequence;
            }

            default:
                throw new YamlException(parser.Current!.Start, parser.Current.End, $"unexpected {parser.Current.GetType().Name}");
        }
    }
}
