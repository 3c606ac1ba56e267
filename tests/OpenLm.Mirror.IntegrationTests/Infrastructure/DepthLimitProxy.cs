using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// GitLab-like path depth limit in front of a real Distribution registry: a repository with more path components
/// than <see cref="MaxComponents"/> answers every request with a bare <c>403 DENIED "requested access to the resource
/// is denied"</c> (what GitLab's registry gives past project path + 2 levels), everything else is forwarded.
/// </summary>
public sealed partial class DepthLimitProxy(Uri upstream, int maxComponents) : IAsyncDisposable
{
    private readonly HttpClient _upstream = HttpForwarding.CreateUpstreamClient();
    private LoopbackHttpServer? _server;
    private int _blobWrites;
    private int _denied;

    public int MaxComponents { get; } = maxComponents;

    public string Host => (_server ?? throw new InvalidOperationException("not started")).Authority;

    public int BlobWrites => Volatile.Read(ref _blobWrites);

    public int Denied => Volatile.Read(ref _denied);

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
            var match = RepositoryPath().Match(context.Request.Path.Value ?? "/");
            if (match.Success && match.Groups["name"].Value.Split('/').Length > MaxComponents)
            {
                Interlocked.Increment(ref _denied);
                await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status403Forbidden, "DENIED", "requested access to the resource is denied");
                return;
            }

            if (match.Success && match.Groups["kind"].Value == "blobs" && (HttpMethods.IsPatch(context.Request.Method) || (HttpMethods.IsPut(context.Request.Method) && context.Request.ContentLength > 0)))
            {
                Interlocked.Increment(ref _blobWrites);
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
        }
    }

    [GeneratedRegex(@"^/v2/(?<name>.+?)/(?<kind>blobs|manifests|tags|referrers)/(?<rest>.*)$")]
    private static partial Regex RepositoryPath();
}
