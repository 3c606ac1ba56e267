using System.Text.Json;
using System.Text.Json.Nodes;

namespace OpenLm.Mirror.Cli.Output;

/// <summary>Why a command failed, as the --json envelope's <c>error</c> object reports it.</summary>
/// <param name="Kind">One of <see cref="ErrorKinds"/>: what class of failure (it decides the exit code).</param>
/// <param name="Code">A stable identifier runbooks may match on (listed in docs/json-output.md).</param>
/// <param name="Message">What went wrong, for a person.</param>
/// <param name="Hint">What to change (flags named), or null.</param>
internal sealed record CommandProblem(string Kind, string Code, string Message, string? Hint);

/// <summary>The <c>error.kind</c> values; each belongs to one exit code.</summary>
internal static class ErrorKinds
{
    public const string Operational = "operational";
    public const string Usage = "usage";
    public const string Integrity = "integrity";
    public const string Incomplete = "incomplete";
    public const string Interrupted = "interrupted";

    public static string ForExitCode(int exitCode) => exitCode switch
    {
        ExitCodes.Usage => Usage,
        ExitCodes.Integrity => Integrity,
        ExitCodes.Incomplete => Incomplete,
        ExitCodes.Cancelled or ExitCodes.Terminated => Interrupted,
        _ => Operational,
    };
}

/// <summary>
/// The one JSON document a command prints with --json, success or failure: <c>schemaVersion</c>, <c>command</c>,
/// <c>ok</c>, <c>exitCode</c>, on failure <c>error</c>, then the command's own fields (see docs/json-output.md).
/// </summary>
internal static class JsonEnvelope
{
    /// <summary>Bumped when a field is removed or changes meaning; adding fields does not bump it.</summary>
    public const int SchemaVersion = 1;

    private static readonly HashSet<string> EnvelopeFields = new(StringComparer.Ordinal) { "schemaVersion", "command", "ok", "exitCode", "error" };

    /// <summary>True when the command line asks for JSON (before a <c>--</c> that ends the options).</summary>
    public static bool Requested(IEnumerable<string> args) => args.TakeWhile(a => a != "--").Contains("--json", StringComparer.Ordinal);

    /// <summary>
    /// The envelope around what the command printed on stdout (<paramref name="commandOutput"/>: its JSON document, or
    /// nothing when it failed before printing one).
    /// </summary>
    public static string Render(string command, int exitCode, CommandProblem? problem, string commandOutput, bool indented = true)
    {
        var document = new JsonObject
        {
            ["schemaVersion"] = SchemaVersion,
            ["command"] = command,
            ["ok"] = exitCode == ExitCodes.Success,
            ["exitCode"] = exitCode,
        };
        if (exitCode != ExitCodes.Success)
        {
            problem ??= new CommandProblem(ErrorKinds.ForExitCode(exitCode), "failed", $"exit code {exitCode}", null);
            document["error"] = new JsonObject
            {
                ["kind"] = problem.Kind,
                ["code"] = problem.Code,
                ["message"] = problem.Message,
                ["hint"] = problem.Hint,
            };
        }

        foreach (var (name, value) in Fields(commandOutput))
        {
            if (!EnvelopeFields.Contains(name))
            {
                document[name] = value;
            }
        }

        return document.ToJsonString(indented ? Format.Json : Format.JsonLine);
    }

    /// <summary>The top-level fields of the command's document; text that is not one JSON object is kept as <c>output</c>.</summary>
    private static IEnumerable<KeyValuePair<string, JsonNode?>> Fields(string commandOutput)
    {
        var text = commandOutput.Trim();
        if (text.Length == 0)
        {
            return [];
        }

        try
        {
            if (JsonNode.Parse(text) is JsonObject parsed)
            {
                var fields = parsed.ToList();
                parsed.Clear();
                return fields;
            }
        }
        catch (JsonException)
        {
            // Not one JSON document: a command printed text; keep it rather than lose it.
        }

        return [new KeyValuePair<string, JsonNode?>("output", JsonValue.Create(text))];
    }
}
