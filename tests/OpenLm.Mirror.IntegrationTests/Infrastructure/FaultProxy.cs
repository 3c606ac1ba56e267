using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// Live fault settings of a <see cref="FaultProxy"/> (read per request). Every random draw is a hash of the seed, the
/// request (method, path and query) and how often that exact request was seen before, so a run fails the same requests
/// the same way whatever the interleaving of parallel requests.
/// </summary>
public sealed class FaultProxyOptions
{
    /// <summary>Status answered instead of forwarding (e.g. 429 or 503); null for none.</summary>
    public int? FailStatus { get; set; }

    /// <summary>Probability (0..1) of answering <see cref="FailStatus"/>.</summary>
    public double FailProbability { get; set; }

    /// <summary><c>Retry-After</c> seconds sent with <see cref="FailStatus"/>; null sends none.</summary>
    public int? RetryAfterSeconds { get; set; }

    /// <summary>
    /// Every Nth request (all requests counted: token requests and a repository's first, token-less request included)
    /// behaves as if the token had just expired: a token request gets 401, a request with a bearer token gets ECR's
    /// <c>400 DENIED "Your Authorization Token is invalid."</c> or a 401 challenge (alternately); 0 disables.
    /// </summary>
    public int ExpireTokenEveryNth { get; set; }

    /// <summary>Probability (0..1) of cutting a successful GET body in half and resetting the connection.</summary>
    public double ResetProbability { get; set; }

    /// <summary>Added before every request is handled.</summary>
    public TimeSpan Latency { get; set; }

    public int Seed { get; set; } = 20261202;

    /// <summary>
    /// Repositories (e.g. <c>fault/app03</c>) whose blob requests are always answered <see cref="PermanentFailStatus"/>:
    /// a registry that cannot serve some images at all, however often it is asked. Change only between runs.
    /// </summary>
    public ISet<string> FailBlobsOfRepositories { get; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>The status of <see cref="FailBlobsOfRepositories"/>' answers (503 UNAVAILABLE by default).</summary>
    public int PermanentFailStatus { get; set; } = StatusCodes.Status503ServiceUnavailable;

    public void Clear()
    {
        FailBlobsOfRepositories.Clear();
        PermanentFailStatus = StatusCodes.Status503ServiceUnavailable;
        FailStatus = null;
        FailProbability = 0;
        RetryAfterSeconds = null;
        ExpireTokenEveryNth = 0;
        ResetProbability = 0;
        Latency = TimeSpan.Zero;
    }
}

/// <summary>
/// A reverse proxy on loopback in front of a registry (typically <see cref="EcrPublicEmulator"/>) that injects the faults
/// release engineering meets on the internet: throttling, 5xx, expiring tokens, connection resets and latency. Location
/// headers and the token realm of challenges are rewritten to the proxy, so token requests pass through it too;
/// redirects to other hosts (the emulator's CDN) are left alone.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly HttpClient _upstreamClient = HttpForwarding.CreateUpstreamClient();
    private readonly Dictionary<string, int> _seen = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private LoopbackHttpServer? _server;
    private int _requests;
    private int _failed;
    private int _expired;
    private int _resets;
    private int _permanent;
    private int _expiredTokenRequests;
    private int _expiredWithoutToken;

    public FaultProxy(Uri upstream, FaultProxyOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        if (!upstream.IsAbsoluteUri || !upstream.IsLoopback)
        {
            throw new ArgumentException($"Upstream must be an absolute loopback URI, got {upstream}.", nameof(upstream));
        }

        Upstream = upstream;
        Options = options ?? new FaultProxyOptions();
    }

    public Uri Upstream { get; }

    public FaultProxyOptions Options { get; }

    public Uri BaseAddress => Server.BaseAddress;

    public string RegistryHost => Server.Authority;

    public int Requests => Volatile.Read(ref _requests);

    public int FailedResponses => Volatile.Read(ref _failed);

    public int ExpiredTokens => Volatile.Read(ref _expired);

    public int Resets => Volatile.Read(ref _resets);

    /// <summary>Of <see cref="ExpiredTokens"/>, the token requests refused.</summary>
    public int ExpiredTokenRequests => Volatile.Read(ref _expiredTokenRequests);

    /// <summary>Of <see cref="ExpiredTokens"/>, requests that carried no token yet (a repository's first request).</summary>
    public int ExpiredWithoutToken => Volatile.Read(ref _expiredWithoutToken);

    /// <summary>Answers to <see cref="FaultProxyOptions.FailBlobsOfRepositories"/>' blob requests.</summary>
    public int PermanentFailures => Volatile.Read(ref _permanent);

    private LoopbackHttpServer Server => _server ?? throw new InvalidOperationException("Call StartAsync first.");

    public async Task StartAsync(CancellationToken cancellationToken = default) =>
        _server = await LoopbackHttpServer.StartAsync(IPAddress.Loopback, HandleAsync, cancellationToken).ConfigureAwait(false);

    /// <summary>Forgets the per-request history and counters, so the next run draws the same faults again.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _seen.Clear();
            _requests = 0;
            _failed = 0;
            _expired = 0;
            _resets = 0;
            _permanent = 0;
            _expiredTokenRequests = 0;
            _expiredWithoutToken = 0;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync().ConfigureAwait(false);
        }

        _upstreamClient.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        try
        {
            await ProxyAsync(context).ConfigureAwait(false);
        }
        catch (Exception ex) when (HttpForwarding.IsClientGone(ex, context))
        {
        }
    }

    private async Task ProxyAsync(HttpContext context)
    {
        var options = Options;
        var pathAndQuery = HttpForwarding.PathAndQuery(context);
        var key = context.Request.Method + " " + pathAndQuery;
        int number, occurrence;
        lock (_gate)
        {
            number = ++_requests;
            occurrence = _seen[key] = _seen.GetValueOrDefault(key) + 1;
        }

        if (options.Latency > TimeSpan.Zero)
        {
            await Task.Delay(options.Latency, context.RequestAborted).ConfigureAwait(false);
        }

        var isToken = context.Request.Path.StartsWithSegments("/token");
        var bearer = context.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase);
        var stripAuthorization = false;
        if (options.ExpireTokenEveryNth > 0 && number % options.ExpireTokenEveryNth == 0)
        {
            Interlocked.Increment(ref _expired);
            if (isToken)
            {
                Interlocked.Increment(ref _expiredTokenRequests);
                await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status401Unauthorized, "DENIED", "Your authorization token has expired").ConfigureAwait(false);
                return;
            }

            if (bearer && number / options.ExpireTokenEveryNth % 2 == 0)
            {
                await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status400BadRequest, "DENIED", "Your Authorization Token is invalid.").ConfigureAwait(false);
                return;
            }

            if (!bearer)
            {
                Interlocked.Increment(ref _expiredWithoutToken);
            }

            // The upstream answers a request without a token with its 401 challenge, as it would an expired token.
            stripAuthorization = true;
        }

        var permanent = options.FailBlobsOfRepositories.Count > 0 && IsBlobOf(options.FailBlobsOfRepositories, context.Request.Path.Value);
        if (permanent || (options.FailStatus is not null && Draw(options.Seed, "fail", key, occurrence) < options.FailProbability))
        {
            var status = permanent ? options.PermanentFailStatus : options.FailStatus!.Value;
            _ = permanent ? Interlocked.Increment(ref _permanent) : Interlocked.Increment(ref _failed);
            if (!permanent && options.RetryAfterSeconds is { } after)
            {
                context.Response.Headers.RetryAfter = after.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            var code = status switch
            {
                StatusCodes.Status429TooManyRequests => "TOOMANYREQUESTS",
                StatusCodes.Status403Forbidden => "DENIED",
                StatusCodes.Status404NotFound => "BLOB_UNKNOWN",
                _ => "UNAVAILABLE",
            };
            await HttpForwarding.WriteRegistryErrorAsync(context, status, code, status == 429 ? "Rate exceeded" : "service unavailable").ConfigureAwait(false);
            return;
        }

        var target = HttpForwarding.BuildUpstreamUri(Upstream, pathAndQuery);
        using var upstreamRequest = HttpForwarding.CreateUpstreamRequest(context, target);
        if (stripAuthorization)
        {
            upstreamRequest.Headers.Authorization = null;
        }

        using var upstreamResponse = await HttpForwarding.SendUpstreamAsync(_upstreamClient, upstreamRequest, context).ConfigureAwait(false);
        if (upstreamResponse is null)
        {
            return;
        }

        var rewrite = HttpForwarding.AuthorityRewriter(Upstream, Server.BaseAddress);
        HttpForwarding.CopyResponseHead(upstreamResponse, context.Response, rewriteLocation: rewrite);
        if (upstreamResponse.Headers.WwwAuthenticate.Count > 0)
        {
            var from = Upstream.GetLeftPart(UriPartial.Authority);
            var to = Server.BaseAddress.GetLeftPart(UriPartial.Authority);
            context.Response.Headers.WWWAuthenticate = upstreamResponse.Headers.WwwAuthenticate
                .Select(h => h.ToString().Replace(from, to, StringComparison.OrdinalIgnoreCase)).ToArray();
        }

        if (HttpMethods.IsHead(context.Request.Method))
        {
            return;
        }

        await using var body = await upstreamResponse.Content.ReadAsStreamAsync(context.RequestAborted).ConfigureAwait(false);
        var length = upstreamResponse.Content.Headers.ContentLength;
        if (HttpMethods.IsGet(context.Request.Method) && upstreamResponse.IsSuccessStatusCode && length is > 1
            && Draw(options.Seed, "reset", key, occurrence) < options.ResetProbability)
        {
            Interlocked.Increment(ref _resets);
            await HttpForwarding.SendPrefixThenAbortAsync(context, body, length.Value / 2).ConfigureAwait(false);
            return;
        }

        await HttpForwarding.CopyBodyAsync(body, context.Response.Body, context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Whether <paramref name="path"/> is <c>/v2/REPO/blobs/…</c> for one of <paramref name="repositories"/>.</summary>
    private static bool IsBlobOf(ISet<string> repositories, string? path)
    {
        var at = path?.IndexOf("/blobs/", StringComparison.Ordinal) ?? -1;
        return at > 4 && path!.StartsWith("/v2/", StringComparison.Ordinal) && repositories.Contains(path[4..at]);
    }

    /// <summary>A uniform draw in [0, 1) fixed by the seed, the kind of fault, the request and its occurrence.</summary>
    private static double Draw(int seed, string kind, string key, int occurrence)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{seed}|{kind}|{key}|{occurrence}"));
        return (BitConverter.ToUInt64(hash, 0) >> 11) * (1.0 / (1UL << 53));
    }
}
