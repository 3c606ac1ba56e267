using System.Net;
using Microsoft.AspNetCore.Http;
using OpenLm.Mirror.TestKit;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// A reverse proxy on loopback in front of a registry (typically <see cref="EcrPublicEmulator"/>) that injects the faults
/// release engineering meets on the internet: throttling, 5xx, expiring tokens, connection resets and latency. Location
/// headers and the token realm of challenges are rewritten to the proxy, so token requests pass through it too;
/// redirects to other hosts (the emulator's CDN) are left alone.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly HttpClient _upstreamClient = HttpForwarding.CreateUpstreamClient();
    private readonly FaultPlan _plan;
    private LoopbackHttpServer? _server;

    public FaultProxy(Uri upstream, FaultProxyOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        if (!upstream.IsAbsoluteUri || !upstream.IsLoopback)
        {
            throw new ArgumentException($"Upstream must be an absolute loopback URI, got {upstream}.", nameof(upstream));
        }

        Upstream = upstream;
        _plan = new FaultPlan(options ?? new FaultProxyOptions());
    }

    public Uri Upstream { get; }

    /// <summary>Live fault settings (shared with the bench's <c>fault-proxy</c> verb, see <see cref="FaultPlan"/>).</summary>
    public FaultProxyOptions Options => _plan.Options;

    public Uri BaseAddress => Server.BaseAddress;

    public string RegistryHost => Server.Authority;

    public int Requests => _plan.Requests;

    public int FailedResponses => _plan.FailedResponses;

    public int ExpiredTokens => _plan.ExpiredTokens;

    public int Resets => _plan.Resets;

    /// <inheritdoc cref="FaultPlan.RequestsWithoutToken"/>
    public int RequestsWithoutToken => _plan.RequestsWithoutToken;

    /// <inheritdoc cref="FaultPlan.ExpiredTokenRequests"/>
    public int ExpiredTokenRequests => _plan.ExpiredTokenRequests;

    /// <inheritdoc cref="FaultPlan.ExpiredWithoutToken"/>
    public int ExpiredWithoutToken => _plan.ExpiredWithoutToken;

    /// <inheritdoc cref="FaultPlan.PermanentFailures"/>
    public int PermanentFailures => _plan.PermanentFailures;

    private LoopbackHttpServer Server => _server ?? throw new InvalidOperationException("Call StartAsync first.");

    public async Task StartAsync(CancellationToken cancellationToken = default) =>
        _server = await LoopbackHttpServer.StartAsync(IPAddress.Loopback, HandleAsync, cancellationToken).ConfigureAwait(false);

    /// <summary>Forgets the per-request history and counters, so the next run draws the same faults again.</summary>
    public void Reset() => _plan.Reset();

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
        var ticket = _plan.Begin(context.Request.Method, context.Request.Path.Value ?? "/", pathAndQuery);
        if (options.Latency > TimeSpan.Zero)
        {
            await Task.Delay(options.Latency, context.RequestAborted).ConfigureAwait(false);
        }

        var bearer = context.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase);
        var decision = ticket.Decide(bearer);
        if (decision is FaultDecision.Refuse refuse)
        {
            if (refuse.RetryAfter is { } after)
            {
                context.Response.Headers.RetryAfter = after;
            }

            await HttpForwarding.WriteRegistryErrorAsync(context, refuse.Status, refuse.Code, refuse.Message).ConfigureAwait(false);
            return;
        }

        var stripAuthorization = decision is FaultDecision.Forward { StripAuthorization: true };
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
        if (upstreamResponse.IsSuccessStatusCode && length is { } size && ticket.ShouldResetBody(size))
        {
            await HttpForwarding.SendPrefixThenAbortAsync(context, body, size / 2).ConfigureAwait(false);
            return;
        }

        await HttpForwarding.CopyBodyAsync(body, context.Response.Body, context.RequestAborted).ConfigureAwait(false);
    }
}
