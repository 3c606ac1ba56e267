using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace OpenLm.Mirror.Harbor;

/// <summary>One doublestar selector of a Harbor rule: <c>matches</c>/<c>repoMatches</c> select what the pattern matches, <c>excludes</c>/<c>repoExcludes</c> what it does not.</summary>
public sealed record HarborSelector(string Decoration, string Pattern)
{
    public bool Excludes => Decoration.EndsWith("xcludes", StringComparison.Ordinal);

    /// <summary>Whether this selector selects <paramref name="value"/>.</summary>
    public bool Selects(string value) => HarborPattern.Matches(Pattern, value) != Excludes;
}

/// <summary>
/// A tag immutability rule of a Harbor project, as <c>GET /api/v2.0/projects/{project}/immutabletagrules</c> lists it:
/// <c>{"disabled":false,"action":"immutable","template":"immutable_template","tag_selectors":[{"kind":"doublestar",
/// "decoration":"matches","pattern":"**"}],"scope_selectors":{"repository":[{"kind":"doublestar","decoration":
/// "repoMatches","pattern":"**"}]}}</c>. Harbor matches the repository selectors against the repository name within the
/// project (without the project), the tag selectors against the tag; a tag is immutable when an enabled rule selects both.
/// </summary>
public sealed record HarborImmutableRule(bool Disabled, IReadOnlyList<HarborSelector> Repositories, IReadOnlyList<HarborSelector> Tags)
{
    /// <summary>Whether this rule makes <paramref name="tag"/> of <paramref name="repositoryInProject"/> (the name without the project) immutable.</summary>
    public bool Protects(string repositoryInProject, string tag) =>
        !Disabled && Repositories.All(s => s.Selects(repositoryInProject)) && Tags.All(s => s.Selects(tag));

    /// <summary>The rules of one <c>immutabletagrules</c> answer; entries without an <c>immutable</c> action are not tag immutability rules.</summary>
    public static IReadOnlyList<HarborImmutableRule> ParseList(JsonNode? body)
    {
        var rules = new List<HarborImmutableRule>();
        foreach (var rule in (body as JsonArray ?? []).OfType<JsonObject>())
        {
            if (rule["action"]?.GetValue<string>() is { } action && action != "immutable")
            {
                continue;
            }

            rules.Add(new HarborImmutableRule(
                rule["disabled"] is JsonValue d && d.TryGetValue<bool>(out var disabled) && disabled,
                Selectors(rule["scope_selectors"]?["repository"]),
                Selectors(rule["tag_selectors"])));
        }

        return rules;
    }

    private static List<HarborSelector> Selectors(JsonNode? list) =>
        (list as JsonArray ?? []).OfType<JsonObject>()
            .Select(s => new HarborSelector(s["decoration"]?.GetValue<string>() ?? "matches", s["pattern"]?.GetValue<string>() ?? "**"))
            .ToList();
}

/// <summary>
/// Harbor's doublestar patterns (github.com/bmatcuk/doublestar): <c>**</c> any characters including <c>/</c>, <c>*</c> any
/// but <c>/</c>, <c>?</c> one but <c>/</c>, <c>{a,b}</c> alternatives, <c>[...]</c> a class; the whole value must match.
/// </summary>
public static class HarborPattern
{
    public static bool Matches(string pattern, string value)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(value);
        return Regex.IsMatch(value, ToRegex(pattern), RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
    }

    internal static string ToRegex(string pattern)
    {
        var regex = new StringBuilder("^");
        var braces = 0;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '*' when i + 1 < pattern.Length && pattern[i + 1] == '*':
                    regex.Append(".*");
                    i++;
                    break;
                case '*':
                    regex.Append("[^/]*");
                    break;
                case '?':
                    regex.Append("[^/]");
                    break;
                case '{':
                    braces++;
                    regex.Append("(?:");
                    break;
                case '}' when braces > 0:
                    braces--;
                    regex.Append(')');
                    break;
                case ',' when braces > 0:
                    regex.Append('|');
                    break;
                case '[' when pattern.IndexOf(']', i + 1) is var end and > 0:
                    var body = pattern[(i + 1)..end];
                    regex.Append('[').Append(body.StartsWith('!') ? "^" + Regex.Escape(body[1..]) : Regex.Escape(body)).Append(']');
                    i = end;
                    break;
                default:
                    regex.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }

        // An unclosed brace: its group is closed so the expression stays valid.
        regex.Append(')', braces).Append('$');
        return regex.ToString();
    }
}
