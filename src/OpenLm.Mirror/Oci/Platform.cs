using System.Text.Json.Serialization;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Oci;

/// <summary>An OCI platform (<c>os/arch[/variant]</c>).</summary>
public sealed record Platform
{
    [JsonPropertyName("architecture")]
    public required string Architecture { get; init; }

    [JsonPropertyName("os")]
    public required string Os { get; init; }

    [JsonPropertyName("os.version")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? OsVersion { get; init; }

    [JsonPropertyName("variant")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Variant { get; init; }

    public static Platform Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0 || p.Any(char.IsWhiteSpace)))
        {
            throw new InputException($"invalid platform '{text}': expected os/arch or os/arch/variant, e.g. linux/amd64");
        }

        return new Platform { Os = parts[0], Architecture = parts[1], Variant = parts.Length == 3 ? parts[2] : null };
    }

    public static IReadOnlyList<Platform> ParseList(string? text) =>
        string.IsNullOrWhiteSpace(text)
            ? []
            : text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Parse).ToList();

    /// <summary>True when <paramref name="candidate"/> satisfies this filter; a filter without variant takes any variant.</summary>
    public bool Matches(Platform? candidate) =>
        candidate is not null
        && string.Equals(Os, candidate.Os, StringComparison.Ordinal)
        && string.Equals(Architecture, candidate.Architecture, StringComparison.Ordinal)
        && (Variant is null || string.Equals(Variant, candidate.Variant, StringComparison.Ordinal));

    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";
}
