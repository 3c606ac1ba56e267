using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace OpenLm.Mirror.Yaml;

/// <summary>How <see cref="YamlTree.Read"/> builds the tree.</summary>
internal sealed record YamlReadOptions
{
    /// <summary>
    /// False (readers of values): an alias becomes the node it names, shared rather than copied, and an unknown
    /// anchor is an error. True (editors of text): aliases stay <see cref="YAlias"/> nodes, unknown anchors included,
    /// because an edit must not reach through an alias into a node other parts of the file share.
    /// </summary>
    public bool KeepAliases { get; init; }

    /// <summary>
    /// True: only the first document is read and the rest of the stream is not looked at (Helm reads a
    /// <c>values.yaml</c> that way). False: a following document is reported in <see cref="YamlDocument.SecondDocumentLine"/>.
    /// </summary>
    public bool FirstDocumentOnly { get; init; }

    public int MaxNodes { get; init; } = YamlTree.DefaultMaxNodes;
}

/// <summary>The first document of a YAML stream, with the text it was read from.</summary>
internal sealed class YamlDocument(string text, string file, YNode? root, int documentStartEnd, int? secondDocumentLine)
{
    /// <summary>The text that was parsed; node ranges index into it.</summary>
    public string Text { get; } = text;

    public string File { get; } = file;

    /// <summary>The document's root node, or null when the text holds no document (empty or only comments).</summary>
    public YNode? Root { get; } = root;

    /// <summary>Index just after the <c>---</c> marker (the document's first token when there is no marker).</summary>
    public int DocumentStartEnd { get; } = documentStartEnd;

    /// <summary>Line where a second document starts; null when there is none or <see cref="YamlReadOptions.FirstDocumentOnly"/> was set.</summary>
    public int? SecondDocumentLine { get; } = secondDocumentLine;
}

/// <summary>A YAML syntax or structure problem, with the file and line (and, for syntax errors, column) it was found at.</summary>
internal sealed class YamlTreeException : Exception
{
    public YamlTreeException(string file, int line, string message, Exception? inner = null, int? column = null)
        : base(column is { } c ? $"{file}:{line}:{c}: {message}" : $"{file}:{line}: {message}", inner)
    {
        File = file;
        Line = line;
        Column = column;
        Reason = message;
    }

    public string File { get; }

    public int Line { get; }

    /// <summary>1-based column of a syntax error; null for structure problems that only have a line.</summary>
    public int? Column { get; }

    public string Reason { get; }

    /// <summary>YamlDotNet's own error when the text is not valid YAML (it carries the column), else null.</summary>
    public YamlException? SyntaxError => InnerException as YamlException;
}

/// <summary>
/// Builds <see cref="YNode"/> trees from YamlDotNet's parser events. Unlike YamlDotNet's RepresentationModel it
/// keeps duplicate mapping keys (so callers can report every one instead of failing on the first), records where
/// every node came from, and bounds nesting depth and node count, because the files are untrusted input.
/// </summary>
internal static class YamlTree
{
    public const int MaxDepth = 200;
    public const int DefaultMaxNodes = 2_000_000;

    /// <summary>
    /// Parses the first document for its values (aliases resolved). Returns null for an empty stream or a document
    /// that is only a null. Throws <see cref="YamlTreeException"/> for syntax errors, unknown aliases or absurd
    /// nesting; <paramref name="allowMultipleDocuments"/> false also rejects a second document.
    /// </summary>
    public static YNode? Parse(string text, string file, bool allowMultipleDocuments = false, int maxNodes = DefaultMaxNodes)
    {
        var document = Read(text, file, new YamlReadOptions { FirstDocumentOnly = allowMultipleDocuments, MaxNodes = maxNodes });
        if (document.SecondDocumentLine is { } second)
        {
            throw new YamlTreeException(file, second, "the file holds more than one YAML document; expected exactly one");
        }

        return document.Root is YScalar { IsNull: true } ? null : document.Root;
    }

    /// <summary>Parses the first document of <paramref name="text"/>; see <see cref="YamlReadOptions"/>.</summary>
    public static YamlDocument Read(string text, string file, YamlReadOptions options)
    {
        var builder = new Builder(file, text.Length, options);
        try
        {
            return builder.Run(text, new Parser(new StringReader(text)));
        }
        catch (YamlException ex)
        {
            // The innermost error is the scanner's, at the character that is wrong; outer ones mark where the
            // enclosing construct started (a block mapping at line 1, say), which points away from the fault.
            var innermost = ex;
            while (innermost.InnerException is YamlException inner)
            {
                innermost = inner;
            }

            var at = innermost.Start.Line > 0 ? innermost.Start : ex.Start;
            // YamlDotNet reports a tab in indentation at the start of the enclosing block (often line 1), so the
            // tab is looked for in the whole text: outside block scalars a tab can never indent valid YAML.
            if (FirstTabIndentedLine(text, long.MaxValue) is { } tab)
            {
                throw new YamlTreeException(
                    file, tab.Line, "YAML syntax error: a tab character indents this line; YAML indentation must use spaces", ex, tab.Column);
            }

            var message = string.IsNullOrEmpty(innermost.Message) ? ex.Message : innermost.Message;
            throw new YamlTreeException(file, ToLine(at.Line), $"YAML syntax error: {StripMark(message)}", ex, ToLine(at.Column));
        }
        catch (InvalidOperationException ex)
        {
            // YamlDotNet's parser runs off the end of its token stream on some unterminated flow collections
            // ("[a, b" followed by block content) instead of raising a syntax error; name the unclosed bracket.
            var (line, column, reason) = builder.DescribeUnterminated();
            throw new YamlTreeException(file, line, $"YAML syntax error: {reason}", ex, column);
        }
    }

    /// <summary>The first line up to <paramref name="lastLine"/> whose leading whitespace holds a tab, with the tab's column.</summary>
    private static (int Line, int Column)? FirstTabIndentedLine(string text, long lastLine)
    {
        var line = 1;
        var column = 1;
        var inIndent = true;
        foreach (var ch in text)
        {
            if (line > lastLine)
            {
                break;
            }

            if (ch == '\n')
            {
                line++;
                column = 1;
                inIndent = true;
                continue;
            }

            if (inIndent && ch == '\t')
            {
                return (line, column);
            }

            inIndent = inIndent && ch == ' ';
            column++;
        }

        return null;
    }

    internal static int ToLine(long line) => line is <= 0 ? 1 : line > int.MaxValue ? int.MaxValue : (int)line;

    private static string StripMark(string message)
    {
        // YamlDotNet messages start with "(Line: 3, Col: 1, Idx: 10) - (Line: …): "; the caller already shows the line.
        var marker = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line:", StringComparison.Ordinal) && marker > 0 ? message[(marker + 3)..] : message;
    }

    private sealed class Builder(string file, int length, YamlReadOptions options)
    {
        private readonly Dictionary<string, YNode> _anchors = new(StringComparer.Ordinal);
        private readonly Stack<(Mark Start, bool Sequence)> _openFlow = new();
        private Mark _last = Mark.Empty;
        private int _nodes;

        /// <summary>Where parsing stopped: the innermost flow collection still open, else the last event read.</summary>
        public (int Line, int Column, string Reason) DescribeUnterminated()
        {
            if (_openFlow.TryPeek(out var open))
            {
                var (opener, closer) = open.Sequence ? ('[', ']') : ('{', '}');
                return (ToLine(open.Start.Line), ToLine(open.Start.Column), $"the flow {(open.Sequence ? "sequence" : "mapping")} opened with '{opener}' here is never closed with '{closer}'");
            }

            return (ToLine(_last.Line), ToLine(_last.Column), "the text after this point is not valid YAML");
        }

        public YamlDocument Run(string text, IParser parser)
        {
            parser.Consume<StreamStart>();
            if (!parser.TryConsume<DocumentStart>(out var documentStart))
            {
                parser.Consume<StreamEnd>();
                return new YamlDocument(text, file, null, 0, null);
            }

            var root = ParseNode(parser, 0);
            parser.Consume<DocumentEnd>();
            int? second = null;
            if (!options.FirstDocumentOnly)
            {
                if (parser.Accept<DocumentStart>(out var next))
                {
                    second = ToLine(next.Start.Line);
                }
                else
                {
                    parser.Consume<StreamEnd>();
                }
            }

            return new YamlDocument(text, file, root, Clamp(documentStart.End.Index), second);
        }

        private YNode ParseNode(IParser parser, int depth)
        {
            if (depth > MaxDepth)
            {
                throw new YamlTreeException(file, ToLine(parser.Current?.Start.Line ?? 1), $"nesting deeper than {MaxDepth} levels");
            }

            if (++_nodes > options.MaxNodes)
            {
                throw new YamlTreeException(file, ToLine(parser.Current?.Start.Line ?? 1), $"more than {options.MaxNodes} YAML nodes");
            }

            if (parser.Current is { } current)
            {
                _last = current.Start;
            }

            if (parser.TryConsume<AnchorAlias>(out var alias))
            {
                return Alias(alias);
            }

            if (parser.TryConsume<Scalar>(out var scalar))
            {
                // Empty scalars can carry marks past the end of the text (e.g. a document that is only "---").
                var node = new YScalar(file, ToLine(scalar.Start.Line), scalar.Value, scalar.Style, TagOf(scalar.Tag))
                {
                    Start = Clamp(scalar.Start.Index),
                    End = Clamp(scalar.End.Index),
                    Anchor = AnchorOf(scalar.Anchor),
                };
                Remember(node);
                return node;
            }

            if (parser.TryConsume<SequenceStart>(out var sequenceStart))
            {
                return Sequence(parser, sequenceStart, depth);
            }

            if (parser.TryConsume<MappingStart>(out var mappingStart))
            {
                return Mapping(parser, mappingStart, depth);
            }

            var unexpected = parser.Current;
            throw new YamlTreeException(file, ToLine(unexpected?.Start.Line ?? 1), $"unexpected YAML event {unexpected?.GetType().Name}");
        }

        private YNode Alias(AnchorAlias alias)
        {
            var known = _anchors.TryGetValue(alias.Value.Value, out var target);
            if (options.KeepAliases)
            {
                return new YAlias(file, ToLine(alias.Start.Line), alias.Value.Value, known ? target : null)
                {
                    Start = (int)alias.Start.Index,
                    End = (int)alias.End.Index,
                };
            }

            return known
                ? target!
                : throw new YamlTreeException(file, ToLine(alias.Start.Line), $"alias '*{alias.Value.Value}' refers to an unknown anchor");
        }

        private YSequence Sequence(IParser parser, SequenceStart start, int depth)
        {
            var flow = start.Style == SequenceStyle.Flow;
            if (flow)
            {
                _openFlow.Push((start.Start, true));
            }

            var items = new List<YNode>();
            while (!parser.Accept<SequenceEnd>(out _))
            {
                items.Add(ParseNode(parser, depth + 1));
            }

            var end = parser.Consume<SequenceEnd>();
            if (flow)
            {
                _openFlow.Pop();
            }

            var sequence = new YSequence(file, ToLine(start.Start.Line))
            {
                Start = (int)start.Start.Index,
                End = flow ? (int)end.Start.Index + 1 : items.Count > 0 ? items[^1].End : (int)start.End.Index,
                Anchor = AnchorOf(start.Anchor),
                IsFlow = flow,
            };
            sequence.Items.AddRange(items);

            // Registered after the node is complete: an alias inside its own anchor is "unknown", so no cycles.
            Remember(sequence);
            return sequence;
        }

        private YMapping Mapping(IParser parser, MappingStart start, int depth)
        {
            var flow = start.Style == MappingStyle.Flow;
            if (flow)
            {
                _openFlow.Push((start.Start, false));
            }

            var entries = new List<YEntry>();
            while (!parser.Accept<MappingEnd>(out _))
            {
                var key = ParseNode(parser, depth + 1);
                var value = ParseNode(parser, depth + 1);
                entries.Add(new YEntry(key, value));
            }

            var end = parser.Consume<MappingEnd>();
            if (flow)
            {
                _openFlow.Pop();
            }

            // A block mapping ends with its last value; the text after it on that line (a comment) is not part of it.
            var mapping = new YMapping(file, ToLine(start.Start.Line))
            {
                Start = (int)start.Start.Index,
                End = flow ? (int)end.Start.Index + 1 : entries.Count > 0 ? entries[^1].Value.End : (int)start.End.Index,
                Anchor = AnchorOf(start.Anchor),
                IsFlow = flow,
            };
            foreach (var entry in entries)
            {
                mapping.Add(entry);
            }

            Remember(mapping);
            return mapping;
        }

        private void Remember(YNode node)
        {
            if (node.Anchor is { } anchor)
            {
                _anchors[anchor] = node;
            }
        }

        private int Clamp(long index) => (int)Math.Min(index, length);

        private static string? AnchorOf(AnchorName anchor) => anchor.IsEmpty ? null : anchor.Value;

        private static string? TagOf(TagName tag) => tag.IsEmpty || tag.IsNonSpecific ? null : tag.Value;
    }
}
