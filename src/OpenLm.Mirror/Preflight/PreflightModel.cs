using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Preflight;

/// <summary>What one preflight check looked at.</summary>
public enum PreflightCheckKind
{
    /// <summary>The host name resolves to addresses on this machine.</summary>
    Dns,

    /// <summary>A TCP connection to host:port opens.</summary>
    Tcp,

    /// <summary>A TLS handshake completes and the server certificate is trusted.</summary>
    Tls,

    /// <summary>The HTTP proxy lets the request through (CONNECT for TLS).</summary>
    Proxy,

    /// <summary>The registry accepts the configured credentials (or anonymous access), through its token endpoint when it has one.</summary>
    Auth,

    /// <summary>One manifest of the release can be fetched (for an OCI chart: its Helm chart manifest).</summary>
    Manifest,

    /// <summary>A Helm repository's <c>index.yaml</c> is served and lists the chart at its version.</summary>
    Index,

    /// <summary>One blob (or a Helm repository's chart archive) is fetched: where it is redirected (a CDN host) and whether that host serves it.</summary>
    Blob,
}

/// <summary>A check's verdict.</summary>
public enum PreflightStatus
{
    Ok,

    /// <summary>Not run: not applicable (plain HTTP has no TLS; the proxy resolves the name) or an earlier check failed.</summary>
    Skipped,

    Failed,
}

/// <summary>Why an endpoint must be reachable.</summary>
public enum PreflightRole
{
    /// <summary>A registry's API host (manifests, and blobs unless redirected).</summary>
    Registry,

    /// <summary>A bearer token endpoint (the challenge's realm).</summary>
    TokenRealm,

    /// <summary>The host a registry redirects blob downloads to (ECR Public: a CloudFront name).</summary>
    Cdn,

    /// <summary>The HTTP proxy every request goes through.</summary>
    Proxy,

    /// <summary>A Helm HTTP repository's host (its <c>index.yaml</c>).</summary>
    ChartRepository,

    /// <summary>The host a Helm repository's index sends chart archives to (its <c>urls</c>; e.g. GitHub releases).</summary>
    ChartArchive,
}

/// <summary>One host:port this machine (or its proxy) must reach.</summary>
/// <param name="Host">The host name or address, as requests name it.</param>
/// <param name="Port">The TCP port (443 for https without an explicit port).</param>
/// <param name="Role">Why it is needed.</param>
/// <param name="Via">The registry or Helm repository (host as written) that led to it: the token realm or CDN of that registry, the archive host of that repository; null for a registry, repository or the proxy.</param>
/// <param name="Scheme">http or https: whether a TLS handshake belongs to it.</param>
public sealed record PreflightEndpoint(string Host, int Port, PreflightRole Role, string? Via, string Scheme)
{
    /// <summary><c>host:port</c>, IPv6 addresses in brackets: one allow-list line.</summary>
    public string Address => Host.Contains(':', StringComparison.Ordinal) && !Host.StartsWith('[') ? $"[{Host}]:{Port}" : $"{Host}:{Port}";

    public bool UsesTls => Scheme == Uri.UriSchemeHttps;

    /// <summary>The endpoint of a URL (its scheme's default port when none is written).</summary>
    public static PreflightEndpoint Of(Uri uri, PreflightRole role, string? via)
    {
        ArgumentNullException.ThrowIfNull(uri);
        return new PreflightEndpoint(uri.IdnHost.Trim('[', ']'), uri.Port, role, via, uri.Scheme);
    }
}

/// <summary>One verdict: which check, on which endpoint, what was found, and what would fix a failure.</summary>
/// <param name="Endpoint">The endpoint's <see cref="PreflightEndpoint.Address"/>.</param>
/// <param name="Kind">The check.</param>
/// <param name="Status">The verdict.</param>
/// <param name="Detail">What was found, for a person (never a secret).</param>
/// <param name="Remedy">The change that fixes a failure; a front end names its flag.</param>
public sealed record PreflightCheck(string Endpoint, PreflightCheckKind Kind, PreflightStatus Status, string Detail, Remedy Remedy = Remedy.None)
{
    public static PreflightCheck Ok(PreflightEndpoint endpoint, PreflightCheckKind kind, string detail) => new(endpoint.Address, kind, PreflightStatus.Ok, detail);

    public static PreflightCheck Skipped(PreflightEndpoint endpoint, PreflightCheckKind kind, string detail) => new(endpoint.Address, kind, PreflightStatus.Skipped, detail);

    public static PreflightCheck Failed(PreflightEndpoint endpoint, PreflightCheckKind kind, string detail, Remedy remedy = Remedy.None) =>
        new(endpoint.Address, kind, PreflightStatus.Failed, detail, remedy);
}

/// <summary>What preflight found: every endpoint, every verdict, and the allow-list a firewall needs.</summary>
public sealed class PreflightReport
{
    public PreflightReport(string input, IReadOnlyList<PreflightEndpoint> endpoints, IReadOnlyList<PreflightCheck> checks, string proxy)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(checks);
        Input = input;
        Endpoints = endpoints;
        Checks = checks;
        Proxy = proxy;
        AllowList = BuildAllowList(endpoints);
    }

    /// <summary>What was checked, for a person: the manifest or lock file, or the target registry.</summary>
    public string Input { get; }

    /// <summary>Every endpoint, in the order found (registries first, then what each led to).</summary>
    public IReadOnlyList<PreflightEndpoint> Endpoints { get; }

    public IReadOnlyList<PreflightCheck> Checks { get; }

    /// <summary>The proxy configuration in use, without credentials (<c>none</c> without one).</summary>
    public string Proxy { get; }

    /// <summary>One <c>host:port</c> line per distinct endpoint, in ordinal order.</summary>
    public IReadOnlyList<string> AllowList { get; }

    /// <summary>True when no check failed: everything needed is reachable.</summary>
    public bool Reachable => Checks.All(c => c.Status != PreflightStatus.Failed);

    public IReadOnlyList<PreflightCheck> Failures => Checks.Where(c => c.Status == PreflightStatus.Failed).ToList();

    /// <summary>
    /// The allow-list of a set of endpoints: each distinct <c>host:port</c> once (host names compared without case), in
    /// ordinal order, so the same release always gives the same lines.
    /// </summary>
    public static IReadOnlyList<string> BuildAllowList(IEnumerable<PreflightEndpoint> endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return endpoints
            .Select(e => e.Address.ToLowerInvariant())
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
    }
}
