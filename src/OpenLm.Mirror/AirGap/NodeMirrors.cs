using System.Globalization;
using System.Text;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.AirGap;

/// <summary>Options shared by the node mirror configuration writers.</summary>
public sealed record NodeMirrorOptions
{
    /// <summary>
    /// Path <b>on the node</b> of the CA certificate (PEM) that signed the air-gapped registry's TLS certificate, or
    /// null when the node already trusts it.
    /// </summary>
    public string? CaFile { get; init; }

    /// <summary>Talk to the air-gapped registry over plain HTTP instead of HTTPS.</summary>
    public bool PlainHttp { get; init; }
}

/// <summary>A repository rewrite rule for a k3s/RKE2 mirror: a Go regular expression and its replacement.</summary>
internal sealed record MirrorRewrite(string Pattern, string Replacement);

/// <summary>The images of one upstream registry and how a mirror reaches their target names.</summary>
internal sealed record UpstreamGroup(string Registry, IReadOnlyList<ImageMapping> Images);

internal static class NodeMirrors
{
    /// <summary>Maps the images and groups them by upstream registry (ordinal order), leaving out the target itself.</summary>
    public static List<UpstreamGroup> Group(TargetNameMapper mapper, IEnumerable<Reference> images) =>
        mapper.MapAll(images)
            .Where(m => m.Source.Registry != mapper.Target.Host)
            .GroupBy(m => m.Source.Registry, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new UpstreamGroup(g.Key, g.ToList()))
            .ToList();

    /// <summary>
    /// Non-overlapping rewrites (k3s/RKE2 do not keep the order of rewrite rules, so at most one may match any
    /// repository) that turn each source repository of <paramref name="group"/> into its target repository.
    /// A mapping rule whose FROM is not nested in another rule used by the group becomes one prefix rewrite
    /// (<c>^r3q3q2f4/(.*)$</c> → <c>openlm/$1</c>; <c>^(.*)$</c> → <c>openlm/$1</c> for a whole registry);
    /// images of nested rules get one exact rewrite each (<c>^library/mongo$</c> → <c>openlm/library/mongo</c>).
    /// Identity rewrites are left out.
    /// </summary>
    public static List<MirrorRewrite> Rewrites(TargetNameMapper mapper, UpstreamGroup group)
    {
        var byRule = group.Images
            .GroupBy(m => mapper.RuleFor(m.Source).From, StringComparer.Ordinal)
            .Select(g => (Rule: mapper.RuleFor(g.First().Source), Images: g.ToList()))
            .ToList();
        var rewrites = new List<MirrorRewrite>();
        foreach (var (rule, images) in byRule)
        {
            var nested = byRule.Any(o => o.Rule.From != rule.From &&
                                         (NamePaths.IsUnder(o.Rule.From, rule.From) || NamePaths.IsUnder(rule.From, o.Rule.From)));
            if (nested)
            {
                foreach (var image in images)
                {
                    if (image.Source.Repository != image.Target.Repository)
                    {
                        rewrites.Add(new MirrorRewrite($"^{RegexEscape(image.Source.Repository)}$", image.Target.Repository));
                    }
                }

                continue;
            }

            var basePath = NamePaths.Join(mapper.Target.Prefix, rule.To);
            var fromPath = rule.FromPath;
            if (fromPath.Length == 0 && basePath.Length == 0)
            {
                continue;
            }

            var exactFrom = images.Any(m => m.Source.Repository == fromPath);
            rewrites.Add(fromPath.Length == 0
                ? new MirrorRewrite("^(.*)$", $"{basePath}/$1")
                : basePath.Length == 0
                    ? new MirrorRewrite($"^{RegexEscape(fromPath)}/(.*)$", "$1")
                    : exactFrom
                        ? new MirrorRewrite($"^{RegexEscape(fromPath)}(/.*)?$", $"{basePath}$1")
                        : new MirrorRewrite($"^{RegexEscape(fromPath)}/(.*)$", $"{basePath}/$1"));
        }

        return rewrites.DistinctBy(r => r.Pattern).OrderBy(r => r.Pattern, StringComparer.Ordinal).ToList();
    }

    public static string Scheme(NodeMirrorOptions options) => options.PlainHttp ? "http" : "https";

    /// <summary>Escapes regular-expression metacharacters (RE2 syntax, as used by k3s).</summary>
    public static string RegexEscape(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (@"\.+*?()|[]{}^$".Contains(c))
            {
                sb.Append('\\');
            }

            sb.Append(c);
        }

        return sb.ToString();
    }

    /// <summary>A TOML basic string.</summary>
    public static string TomlString(string value)
    {
        var sb = new StringBuilder(value.Length + 2).Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (char.IsControl(c))
                    {
                        sb.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        return sb.Append('"').ToString();
    }
}
