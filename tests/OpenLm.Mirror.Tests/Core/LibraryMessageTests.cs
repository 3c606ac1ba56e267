using System.Text;
using System.Text.RegularExpressions;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

/// <summary>
/// The library speaks in settings and remedies; only the CLI knows its flags. These tests read every string literal in
/// <c>src/OpenLm.Mirror</c> and fail on anything that looks like a long flag.
/// </summary>
public sealed partial class LibraryMessageTests
{
    /// <summary>Literals that are output content, not messages: the comment written into the generated values file.</summary>
    private static readonly (string File, string Literal)[] OutputContent =
    [
        ("AirGap/HelmValuesWriter.cs", "#   helm upgrade --install <release> <chart> -f <your-values.yaml> -f <this-file>\n"),
        ("AirGap/ValuesWorkflow.cs", "helm upgrade --install {0} oci://{1}/{2} --version {3} -f <your-values.yaml> -f {4}"),
    ];

    [GeneratedRegex(@"(?<![\w-])--[a-z][a-z-]+")]
    private static partial Regex LongFlag();

    [Fact]
    public void Library_StringLiterals_NameNoCliFlag()
    {
        // Given every C# file of the library
        var root = Path.Combine(RepositoryRoot(), "src", "OpenLm.Mirror");
        var files = Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
            .ToList();
        Assert.NotEmpty(files);

        // When its string literals are searched for --flag
        var found = new List<string>();
        foreach (var file in files)
        {
            var relative = Path.GetRelativePath(root, file).Replace(Path.DirectorySeparatorChar, '/');
            var text = File.ReadAllText(file);
            foreach (var literal in StringLiterals.Scan(text))
            {
                if (LongFlag().Match(literal.Text) is { Success: true } match && !OutputContent.Contains((relative, literal.Text)))
                {
                    found.Add($"src/OpenLm.Mirror/{relative}:{LineOf(text, literal.Offset)}: {match.Value}");
                }
            }
        }

        // Then there is none: give the exception a Remedy or Setting and let the CLI name the flag
        Assert.True(found.Count == 0, "library messages name CLI flags:\n" + string.Join('\n', found));
    }

    [Fact]
    public void StringLiterals_Scan_FindsFlagsInEveryLiteralFormAndIgnoresCode()
    {
        // Given source with each kind of literal, comments, and a decrement in code
        const string source = """"
            // pass --comment is fine
            /* --block too */
            var a = "plain --one";
            var b = $"interpolated {(x ? "nested --two" : "no")} and --three {y:0.0}";
            var c = @"verbatim ""quoted"" --four";
            var d = '"';
            var e = --count + $@"{z} --five";
            var f = $$"""raw {{w}} --six""";
            var g = "escaped \" --seven";
            """";

        // When its literals are scanned
        var flags = StringLiterals.Scan(source).SelectMany(l => LongFlag().Matches(l.Text)).Select(m => m.Value).ToList();

        // Then exactly the flags inside literals are found
        Assert.Equal(["--one", "--two", "--three", "--four", "--five", "--six", "--seven"], flags);
    }

    [Fact]
    public void StringLiterals_Scan_ReportsTheLineOfEachLiteral()
    {
        const string source = "var a = 1;\nvar b = \"x\";\nvar c =\n  \"--flag\";\n";

        var literal = StringLiterals.Scan(source).Single(l => l.Text == "--flag");

        Assert.Equal(4, LineOf(source, literal.Offset));
    }

    private static int LineOf(string text, int offset) => text.AsSpan(0, offset).Count('\n') + 1;

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "OpenLm.Mirror.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root (OpenLm.Mirror.sln) not found above " + AppContext.BaseDirectory);
    }

    /// <summary>
    /// A small C# lexer that yields the text of every string literal (interpolation holes left out but scanned as code,
    /// so a literal nested in a hole is found too). Comments and character literals are skipped.
    /// </summary>
    private sealed class StringLiterals
    {
        private readonly string _s;
        private readonly List<(int Offset, string Text)> _found = [];
        private int _i;

        private StringLiterals(string source) => _s = source;

        public static IReadOnlyList<(int Offset, string Text)> Scan(string source)
        {
            var scanner = new StringLiterals(source);
            scanner.Code(untilHoleEnd: false);
            return scanner._found;
        }

        private char At(int ahead) => _i + ahead < _s.Length ? _s[_i + ahead] : '\0';

        /// <summary>Code up to the end of the text, or up to the <c>}</c> that closes an interpolation hole.</summary>
        private void Code(bool untilHoleEnd)
        {
            var depth = 0;
            while (_i < _s.Length)
            {
                var c = _s[_i];
                if (c == '/' && At(1) == '/')
                {
                    SkipPast("\n");
                }
                else if (c == '/' && At(1) == '*')
                {
                    SkipPast("*/");
                }
                else if (c == '\'')
                {
                    _i += At(1) == '\\' ? 3 : 2;
                    while (_i < _s.Length && _s[_i] != '\'')
                    {
                        _i++;
                    }

                    _i++;
                }
                else if ((c is '"' or '$' or '@') && TryLiteral())
                {
                    continue;
                }
                else if (untilHoleEnd && c == '{')
                {
                    depth++;
                    _i++;
                }
                else if (untilHoleEnd && c == '}')
                {
                    if (depth-- == 0)
                    {
                        return;
                    }

                    _i++;
                }
                else
                {
                    _i++;
                }
            }
        }

        private void SkipPast(string end)
        {
            var at = _s.IndexOf(end, _i + 1, StringComparison.Ordinal);
            _i = at < 0 ? _s.Length : at + end.Length;
        }

        /// <summary>Reads a literal starting at the current position if there is one (prefixes <c>$</c>, <c>@</c>, raw quotes).</summary>
        private bool TryLiteral()
        {
            var start = _i;
            var dollars = 0;
            var verbatim = false;
            while (At(0) is '$' or '@')
            {
                dollars += At(0) == '$' ? 1 : 0;
                verbatim |= At(0) == '@';
                _i++;
            }

            if (At(0) != '"')
            {
                // An @identifier or a lone $: not a literal; go on after the first character.
                _i = start + 1;
                return true;
            }

            var quotes = 0;
            while (At(quotes) == '"')
            {
                quotes++;
            }

            var offset = _i;
            var text = new StringBuilder();
            if (quotes >= 3)
            {
                _i += quotes;
                Raw(new string('"', quotes), dollars, text);
            }
            else
            {
                _i++;
                Quoted(verbatim, dollars > 0, text);
            }

            _found.Add((offset, text.ToString()));
            return true;
        }

        private void Quoted(bool verbatim, bool interpolated, StringBuilder text)
        {
            while (_i < _s.Length)
            {
                var c = _s[_i];
                if (c == '"' && verbatim && At(1) == '"')
                {
                    text.Append('"');
                    _i += 2;
                }
                else if (c == '"')
                {
                    _i++;
                    return;
                }
                else if (c == '\\' && !verbatim)
                {
                    text.Append(At(1) == 'n' ? '\n' : At(1));
                    _i += 2;
                }
                else if (interpolated && c == '{' && At(1) == '{')
                {
                    text.Append('{');
                    _i += 2;
                }
                else if (interpolated && c == '{')
                {
                    Hole();
                }
                else
                {
                    text.Append(c);
                    _i++;
                }
            }
        }

        private void Raw(string delimiter, int dollars, StringBuilder text)
        {
            var opener = new string('{', Math.Max(dollars, 1));
            while (_i < _s.Length)
            {
                if (string.CompareOrdinal(_s, _i, delimiter, 0, delimiter.Length) == 0)
                {
                    _i += delimiter.Length;
                    return;
                }

                if (dollars > 0 && string.CompareOrdinal(_s, _i, opener, 0, opener.Length) == 0)
                {
                    _i += opener.Length - 1;
                    Hole();
                    continue;
                }

                text.Append(_s[_i]);
                _i++;
            }
        }

        /// <summary>Skips an interpolation hole (at its <c>{</c>), scanning it as code, up to and past its <c>}</c>.</summary>
        private void Hole()
        {
            _i++;
            Code(untilHoleEnd: true);
            while (At(0) == '}')
            {
                _i++;
            }
        }
    }
}
