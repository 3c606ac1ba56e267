using System.Net;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// A loopback proxy in front of a real registry that lets a subclass answer a request itself (to reproduce one
/// product's quirk) and forwards everything else unchanged, rewriting upstream <c>Location</c> headers to itself.
/// </summary>
public abstract class InterceptingProxy(Uri upstream) : IAsyncDisposable
{
    private readonly HttpClient _upstream = HttpForwarding.CreateUpstreamClient();
    private LoopbackHttpServer? _server;

    public string Host => (_server ?? throw new InvalidOperationException("not started")).Authority;

    public async Task StartAsync() => _server = await LoopbackHttpServer.StartAsync(IPAddress.Loopback, HandleAsync);

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _upstream.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Answers the request itself and returns true, or returns false to have it forwarded.</summary>
    protected abstract Task<bool> InterceptAsync(HttpContext context);

    /// <summary>Request headers not passed upstream (none by default).</summary>
    protected virtual bool DropsRequestHeader(string name) => false;

    private async Task HandleAsync(HttpContext context)
    {
        try
        {
            if (await InterceptAsync(context))
            {
                return;
            }

            var target = HttpForwarding.BuildUpstreamUri(upstream, HttpForwarding.PathAndQuery(context));
            using var request = HttpForwarding.CreateUpstreamRequest(context, target, DropsRequestHeader);
            using var response = await HttpForwarding.SendUpstreamAsync(_upstream, request, context);
            if (response is null)
            {
                return;
            }

            HttpForwarding.CopyResponseHead(response, context.Response, rewriteLocation: HttpForwarding.AuthorityRewriter(upstream, _server!.BaseAddress));
            if (!HttpMethods.IsHead(context.Request.Method))
            {
                await using var body = await response.Content.ReadAsStreamAsync(context.RequestAborted);
                await HttpForwarding.CopyBodyAsync(body, context.Response.Body, context.RequestAborted);
            }
        }
        catch (Exception ex) when (HttpForwarding.IsClientGone(ex, context))
        {
            // The client went away; nothing to answer.
        }
    }
}
