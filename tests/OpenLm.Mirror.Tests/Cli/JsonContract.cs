using System.Text.Json;
using Json.Schema;
using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary>
/// The published --json contract: the schemas under docs/schemas, loaded once, and the check every test applies to a
/// command's stdout (exactly one JSON document, valid against the command's schema). Linked into the integration tests.
/// </summary>
public static class JsonContract
{
    private static readonly Lazy<IReadOnlyDictionary<string, JsonSchema>> Schemas = new(Load);

    /// <summary>The one document on <paramref name="stdout"/>, after asserting it is valid for <paramref name="command"/> and has <paramref name="exitCode"/>.</summary>
    public static JsonElement Validate(string command, string stdout, int exitCode)
    {
        // Exactly one document: parsing the whole text fails on trailing content.
        using var document = JsonDocument.Parse(stdout);
        var root = document.RootElement.Clone();
        Assert.True(Schemas.Value.TryGetValue(command, out var schema), $"no schema for '{command}' under docs/schemas");
        var result = schema.Evaluate(root, new EvaluationOptions { OutputFormat = OutputFormat.List });
        Assert.True(result.IsValid, $"{command} --json output does not match {command}.schema.json:\n{Errors(result)}\n--- output\n{stdout}");
        Assert.Equal(command, root.GetProperty("command").GetString());
        Assert.Equal(exitCode, root.GetProperty("exitCode").GetInt32());
        Assert.Equal(exitCode == 0, root.GetProperty("ok").GetBoolean());
        return root;
    }

    /// <summary>Whether <paramref name="json"/> is valid for <paramref name="command"/> (for tests of the schemas themselves).</summary>
    public static bool IsValid(string command, string json)
    {
        using var document = JsonDocument.Parse(json);
        return Schemas.Value[command].Evaluate(document.RootElement).IsValid;
    }

    /// <summary>The failure's <c>error</c> object, after <see cref="Validate"/>.</summary>
    public static JsonElement Error(string command, string stdout, int exitCode, string kind)
    {
        var root = Validate(command, stdout, exitCode);
        var error = root.GetProperty("error");
        Assert.Equal(kind, error.GetProperty("kind").GetString());
        return error;
    }

    public static string SchemaDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "docs", "schemas");
            if (File.Exists(Path.Combine(dir.FullName, "OpenLm.Mirror.sln")) && Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"docs/schemas not found above {AppContext.BaseDirectory}");
    }

    private static IReadOnlyDictionary<string, JsonSchema> Load()
    {
        var directory = SchemaDirectory();
        var options = new BuildOptions { SchemaRegistry = new SchemaRegistry() };

        // common first: the command schemas refer to it, and references resolve when a schema is built.
        JsonSchema.FromFile(Path.Combine(directory, "common.schema.json"), options);
        var schemas = new Dictionary<string, JsonSchema>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(directory, "*.schema.json").Where(f => !f.EndsWith("common.schema.json", StringComparison.Ordinal)))
        {
            var name = Path.GetFileName(file)[..^".schema.json".Length];
            schemas[name] = JsonSchema.FromFile(file, options);
        }

        return schemas;
    }

    private static string Errors(EvaluationResults result) =>
        string.Join('\n', (result.Details ?? []).Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(e => $"  {d.InstanceLocation} ({d.EvaluationPath}): {e.Value}")));
}
