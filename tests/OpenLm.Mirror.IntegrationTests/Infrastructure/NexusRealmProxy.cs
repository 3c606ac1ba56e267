using System.Net;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// A Nexus-like Docker connector in front of a real Distribution registry, with the broken challenge Nexus has been
/// reported to send behind a misconfigured base URL: <c>401</c> with <c>WWW-Authenticate: Bearer
/// realm="null://HOST/v2/token",service="nexus"</c> and <c>Server: Nexus/3.x</c>, while the connector itself takes
/// HTTP Basic credentials on every /v2 request.
/// </summary>
public sealed class NexusRealmProxy(Uri upstream) : IAsyncDisposable
{
    public const string User = "deployer";
    public const string Password = "nexus-secret-1";
    private readonly HttpClient _upstream = HttpForwarding.CreateUpstreamClient();
    private LoopbackHttpServer? _server;
    private int _challenges;
    private int _basicAccepted;

    public string Host => (_server ?? throw new InvalidOperationException("not started")).Authority;

    public int Challenges => Volatile.Read(ref _challenges);

    public int BasicAccepted => Volatile.Read(ref _basicAccepted);

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
            context.Response.Headers.Server = "Nexus/3.68.1-02 (OSS)";
            var expected = "Basic " + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{User}:{Password}"));
            if (context.Request.Headers.Authorization.ToString() != expected)
            {
                Interlocked.Increment(ref _challenges);
                context.Response.Headers.WWWAuthenticate = $"Bearer realm=\"null://{Host}/v2/token\",service=\"nexus\"";
                await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status401Unauthorized, "UNAUTHORIZED", "Access denied to resource");
                return;
            }

            Interlocked.Increment(ref _basicAccepted);
            var target = HttpForwarding.BuildUpstreamUri(upstream, HttpForwarding.PathAndQuery(context));
            using var request = HttpForwarding.CreateUpstreamRequest(context, target, name => string.Equals(name, "Authorization", StringComparison.OrdinalIgnoreCase));
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
        }
    }
}
