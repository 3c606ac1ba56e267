using System.Net;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// nginx in front of a registry with <c>client_max_body_size</c>: a request whose Content-Length exceeds the limit is
/// answered <c>413 Request Entity Too Large</c> with nginx's HTML page before its body is read (so a client that asked
/// <c>Expect: 100-continue</c> never sends it); everything else is passed through.
/// </summary>
public sealed class BodyLimitProxy(Uri upstream, long maxBodyBytes) : IAsyncDisposable
{
    private const string NginxPage = "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
    private readonly HttpClient _upstream = HttpForwarding.CreateUpstreamClient();
    private LoopbackHttpServer? _server;
    private int _refused;
    private int _patches;

    public string Host => (_server ?? throw new InvalidOperationException("not started")).Authority;

    public int Refused413 => Volatile.Read(ref _refused);

    public int PatchRequests => Volatile.Read(ref _patches);

    public long MaxBodyBytes { get; } = maxBodyBytes;

    public async Task StartAsync() => _server = await LoopbackHttpServer.StartAsync(IPAddress.Loopback, HandleAsync);

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _upstream.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        try
        {
            if (context.Request.ContentLength > MaxBodyBytes)
            {
                Interlocked.Increment(ref _refused);
                context.Response.Headers.Connection = "close";
                await HttpForwarding.WriteBodyAsync(context, StatusCodes.Status413RequestEntityTooLarge, "text/html", NginxPage);
                return;
            }

            if (HttpMethods.IsPatch(context.Request.Method))
            {
                Interlocked.Increment(ref _patches);
            }

            var target = HttpForwarding.BuildUpstreamUri(upstream, HttpForwarding.PathAndQuery(context));
            using var request = HttpForwarding.CreateUpstreamRequest(context, target);
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
            // Client went away; nothing to do.
        }
    }
}
