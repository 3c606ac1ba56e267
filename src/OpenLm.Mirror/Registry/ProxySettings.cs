using System.Net;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Registry;

/// <summary>
/// Which HTTP proxy a request goes through: an explicit proxy URL for every request, or the environment's
/// <c>HTTPS_PROXY</c> (https URLs), <c>HTTP_PROXY</c> (http URLs) and <c>NO_PROXY</c>, each in upper or lower case
/// (lower case wins when both are set, as curl does). TLS goes through the proxy with <c>CONNECT</c>.
/// </summary>
/// <remarks>
/// .NET's own <see cref="WebProxy"/> never proxies loopback addresses; this one proxies every host not matched by
/// <c>NO_PROXY</c> (entries: <c>*</c>, <c>host</c>, <c>.domain</c> or <c>domain</c> matching its subdomains,
/// <c>host:port</c>, IP addresses). Proxy credentials come from the URL's user info and are never shown:
/// <see cref="ToString"/> prints the proxy without them.
/// </remarks>
public sealed class ProxySettings : IWebProxy
{
    private readonly Uri? _explicit;
    private readonly Uri? _https;
    private readonly Uri? _http;
    private readonly string[] _noProxy;

    private ProxySettings(Uri? explicitProxy, Uri? https, Uri? http, string[] noProxy, ICredentials? credentials)
    {
        _explicit = explicitProxy;
        _https = https;
        _http = http;
        _noProxy = noProxy;
        Credentials = credentials;
    }

    public ICredentials? Credentials { get; set; }

    /// <summary>Whether any proxy is configured at all.</summary>
    public bool Enabled => _explicit is not null || _https is not null || _http is not null;

    /// <summary>
    /// The proxy settings for a run: <paramref name="proxyUrl"/> when given (it wins over the environment, NO_PROXY still
    /// applies), else the environment read through <paramref name="environment"/>.
    /// </summary>
    public static ProxySettings Create(string? proxyUrl, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        string? Env(string name) => environment(name.ToLowerInvariant()) is { Length: > 0 } lower ? lower : environment(name) is { Length: > 0 } upper ? upper : null;
        var noProxy = (Env("NO_PROXY") ?? string.Empty).Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var explicitProxy = proxyUrl is null ? null : Parse(proxyUrl, "the proxy URL");
        var https = explicitProxy is null && Env("HTTPS_PROXY") is { } h ? Parse(h, "HTTPS_PROXY") : null;
        var http = explicitProxy is null && Env("HTTP_PROXY") is { } p ? Parse(p, "HTTP_PROXY") : null;
        var withUser = new[] { explicitProxy, https, http }.FirstOrDefault(u => u is not null && u.UserInfo.Length > 0);
        ICredentials? credentials = null;
        if (withUser is not null)
        {
            var parts = withUser.UserInfo.Split(':', 2);
            credentials = new NetworkCredential(Uri.UnescapeDataString(parts[0]), parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : string.Empty);
        }

        return new ProxySettings(Strip(explicitProxy), Strip(https), Strip(http), noProxy, credentials);
    }

    public Uri? GetProxy(Uri destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (IsBypassed(destination))
        {
            return null;
        }

        return _explicit ?? (destination.Scheme == Uri.UriSchemeHttps ? _https : _http);
    }

    public bool IsBypassed(Uri host)
    {
        ArgumentNullException.ThrowIfNull(host);
        var name = host.IdnHost.Trim('[', ']');
        foreach (var entry in _noProxy)
        {
            if (entry == "*")
            {
                return true;
            }

            var (entryHost, entryPort) = SplitPort(entry);
            if (entryPort is { } port && port != host.Port)
            {
                continue;
            }

            var bare = entryHost.TrimStart('.').Trim('[', ']');
            if (string.Equals(name, bare, StringComparison.OrdinalIgnoreCase)
                || name.EndsWith("." + bare, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The configured proxies without credentials (safe to log).</summary>
    public override string ToString() =>
        _explicit is not null ? _explicit.AbsoluteUri
        : !Enabled ? "none"
        : $"https: {_https?.AbsoluteUri ?? "none"}, http: {_http?.AbsoluteUri ?? "none"}{(_noProxy.Length > 0 ? ", no proxy for " + string.Join(',', _noProxy) : string.Empty)}";

    /// <summary>
    /// The error for a proxy that refused a request: the CONNECT tunnel for TLS (any status, e.g. 407 without or 401 with
    /// wrong credentials, 403 for a port it does not tunnel to), or a 407 to a plain-HTTP request. Names the proxy
    /// (never its credentials) and the destination; a refusal of credentials advises <see cref="Remedy.ProxyCredentials"/>.
    /// </summary>
    public static OperationException Refused(Uri? proxy, Uri destination, HttpStatusCode? status, Exception? inner)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var proxyName = proxy is null ? "the HTTP proxy" : $"HTTP proxy {Strip(proxy)!.Authority}";
        var how = destination.Scheme == Uri.UriSchemeHttps ? $"the tunnel (CONNECT) to {destination.Authority}" : $"the request to {destination.Authority}";
        var code = status switch
        {
            null => string.Empty,
            HttpStatusCode.ProxyAuthenticationRequired => " with 407 Proxy Authentication Required",
            { } other => $" with {(int)other} {other}",
        };
        var credentials = status is HttpStatusCode.ProxyAuthenticationRequired or HttpStatusCode.Unauthorized;
        var why = credentials
            ? ": it requires credentials, and none were given or they were rejected"
            : ": the proxy does not allow it";
        return new OperationException($"{proxyName} refused {how}{code}{why}", inner)
        {
            Remedy = credentials ? Remedy.ProxyCredentials : Remedy.None,
            Subject = proxy is null ? null : Strip(proxy)!.Authority,
        };
    }

    private static (string Host, int? Port) SplitPort(string entry)
    {
        var colon = entry.LastIndexOf(':');
        if (colon > 0 && entry.IndexOf(':') == colon && int.TryParse(entry[(colon + 1)..], out var port))
        {
            return (entry[..colon], port);
        }

        if (entry.StartsWith('[') && entry.LastIndexOf("]:", StringComparison.Ordinal) is var close and > 0 && int.TryParse(entry[(close + 2)..], out var v6Port))
        {
            return (entry[..(close + 1)], v6Port);
        }

        return (entry, null);
    }

    private static Uri Parse(string value, string what)
    {
        var text = value.Contains("://", StringComparison.Ordinal) ? value : "http://" + value;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || uri.Host.Length == 0)
        {
            var shown = Uri.TryCreate(text, UriKind.Absolute, out var u) ? Strip(u)!.AbsoluteUri : "(unparseable)";
            throw new InputException($"{what} '{shown}' is not an http:// or https:// proxy URL (host and port, e.g. http://proxy.corp:3128)");
        }

        return uri;
    }

    private static Uri? Strip(Uri? uri) => uri is null || uri.UserInfo.Length == 0 ? uri : new UriBuilder(uri) { UserName = string.Empty, Password = string.Empty }.Uri;
}
