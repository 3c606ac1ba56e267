using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;

namespace OpenLm.Mirror.Cli.Output;

/// <summary>
/// Parse errors in the user's words: no .NET type names, and "did you mean" for a mistyped flag or command.
/// </summary>
internal static partial class UsageErrors
{
    /// <summary>
    /// <paramref name="args"/> without the value of a <c>--password</c> flag (which no command takes: passwords are
    /// never arguments), and the refusal to report; null when there was none.
    /// </summary>
    public static string[] WithoutSecrets(string[] args, out string? refusal)
    {
        refusal = null;
        var kept = new List<string>(args.Length);
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg == "--")
            {
                kept.AddRange(args[i..]);
                break;
            }

            if (arg is "--password" or "--pass" or "-p" || arg.StartsWith("--password=", StringComparison.Ordinal))
            {
                refusal = $"{arg.Split('=', 2)[0]} is not accepted: passwords are never taken as arguments (they show in the process list and shell history); pipe it to --password-stdin (the value given was not used or shown)";
                if (!arg.Contains('=', StringComparison.Ordinal) && i + 1 < args.Length && !args[i + 1].StartsWith('-'))
                {
                    i++;
                }

                continue;
            }

            kept.Add(arg);
        }

        return [.. kept];
    }

    /// <summary>Every parse error once, without the trailing period; "no command given" is dropped when an unknown one was.</summary>
    public static IReadOnlyList<string> DescribeAll(ParseResult parse)
    {
        var messages = parse.Errors.Select(e => Describe(e, parse).TrimEnd('.')).Distinct(StringComparer.Ordinal).ToList();
        if (messages.Count > 1 && messages.Any(m => m.StartsWith("Unrecognized command", StringComparison.Ordinal)))
        {
            messages.RemoveAll(m => m.StartsWith("Required command was not provided", StringComparison.Ordinal));
        }

        return messages;
    }

    public static string Describe(ParseError error, ParseResult parse)
    {
        var message = error.Message;
        if (ExpectedType().Match(message) is { Success: true } typed)
        {
            return $"{typed.Groups["symbol"].Value}: '{typed.Groups["value"].Value}' is not {Expected(typed.Groups["type"].Value)}";
        }

        if (Unrecognized().Match(message) is { Success: true } unknown && Suggest(unknown.Groups["token"].Value, parse.CommandResult.Command) is { } suggestion)
        {
            return $"{message.TrimEnd('.')}; did you mean '{suggestion}'?";
        }

        return message;
    }

    /// <summary>The closest option (for a token starting with '-') or subcommand of <paramref name="command"/>, if close enough.</summary>
    public static string? Suggest(string token, Command command)
    {
        var candidates = token.StartsWith('-')
            ? command.Options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name))
            : command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name);
        var word = token.Split('=', 2)[0];
        return candidates
            .Select(c => (Name: c, Distance: Distance(word, c)))
            .Where(c => c.Distance <= Math.Max(1, c.Name.TrimStart('-').Length / 3) || c.Name.StartsWith(word, StringComparison.Ordinal) && word.TrimStart('-').Length >= 3)
            .OrderBy(c => c.Distance)
            .ThenBy(c => c.Name, StringComparer.Ordinal)
            .Select(c => c.Name)
            .FirstOrDefault();
    }

    private static string Expected(string typeName) => typeName switch
    {
        _ when typeName.Contains("Int", StringComparison.Ordinal) => "a whole number",
        _ when typeName.Contains("Double", StringComparison.Ordinal) || typeName.Contains("Decimal", StringComparison.Ordinal) || typeName.Contains("Single", StringComparison.Ordinal) => "a number",
        _ when typeName.Contains("Boolean", StringComparison.Ordinal) => "true or false",
        _ => "a valid value",
    };

    /// <summary>Levenshtein distance, with a transposition counted as one edit.</summary>
    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }

    // System.CommandLine's text: "Cannot parse argument 'abc' for option '--concurrency' as expected type 'System.Int32'."
    [GeneratedRegex("^Cannot parse argument '(?<value>.*)' for (?:option|argument|command) '(?<symbol>.*)' as expected type '(?<type>.*)'\\.?$", RegexOptions.Singleline)]
    private static partial Regex ExpectedType();

    // "Unrecognized command or argument 'exprt'."
    [GeneratedRegex("^Unrecognized (?:command or argument|option) '(?<token>.*)'\\.?$")]
    private static partial Regex Unrecognized();
}
