using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace OpenLm.Mirror.Registry.Auth;

/// <summary>A parsed <c>WWW-Authenticate</c> challenge, e.g. <c>Bearer realm="…",service="…",scope="…"</c>.</summary>
public sealed record Challenge(string Scheme, IReadOnlyDictionary<string, string> Parameters)
{
    public string? Realm => Parameters.GetValueOrDefault("realm");

    public string? Service => Parameters.GetValueOrDefault("service");

    public string? Scope => Parameters.GetValueOrDefault("scope");

    public bool IsBearer => Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase);

    public bool IsBasic => Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The realm as a token endpoint: an absolute http(s) URI with a host; null when it is missing or broken (Nexus
    /// has sent <c>null://host/v2/token</c>), in which case a client falls back to Basic credentials.
    /// </summary>
    public Uri? TokenEndpoint =>
        Uri.TryCreate(Realm, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp) && uri.Host.Length > 0
            ? uri
            : null;

    public static bool TryParse(string? header, [NotNullWhen(true)] out Challenge? challenge)
    {
        challenge = null;
        if (string.IsNullOrWhiteSpace(header))
        {
            return false;
        }

        var text = header.Trim();
        var space = text.IndexOf(' ');
        var scheme = space < 0 ? text : text[..space];
        if (scheme.Length == 0 || !scheme.All(char.IsAsciiLetter))
        {
            return false;
        }

        var parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var i = space < 0 ? text.Length : space + 1;
        while (i < text.Length)
        {
            while (i < text.Length && (text[i] == ' ' || text[i] == ','))
            {
                i++;
            }

            var eq = text.IndexOf('=', i);
            if (eq < 0)
            {
                break;
            }

            var key = text[i..eq].Trim();
            i = eq + 1;
            string value;
            if (i < text.Length && text[i] == '"')
            {
                var sb = new StringBuilder();
                i++;
                while (i < text.Length && text[i] != '"')
                {
                    if (text[i] == '\\' && i + 1 < text.Length)
                    {
                        i++;
                    }

                    sb.Append(text[i]);
                    i++;
                }

                i++; // closing quote
                value = sb.ToString();
            }
            else
            {
                var end = text.IndexOf(',', i);
                if (end < 0)
                {
                    end = text.Length;
                }

                value = text[i..end].Trim();
                i = end;
            }

            if (key.Length > 0)
            {
                parameters[key] = value;
            }
        }

        challenge = new Challenge(scheme, parameters);
        return true;
    }
}
