using System.Net;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// nginx in front of a registry with <c>client_max_body_size</c>: a request whose Content-Length exceeds the limit is
/// answered <c>413 Request Entity Too Large</c> with nginx's HTML page before its body is read (so a client that asked
/// <c>Expect: 100-continue</c> never sends it); everything else is passed through.
/// </summary>
public sealed class BodyLimitProxy(Uri upstream, long maxBodyBytes) : InterceptingProxy(upstream)
{
    private const string NginxPage = "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
    private int _refused;
    private int _patches;

    public int Refused413 => Volatile.Read(ref _refused);

    public int PatchRequests => Volatile.Read(ref _patches);

    public long MaxBodyBytes { get; } = maxBodyBytes;

    protected override async Task<bool> InterceptAsync(HttpContext context)
    {
        if (context.Request.ContentLength > MaxBodyBytes)
        {
            Interlocked.Increment(ref _refused);
            context.Response.Headers.Connection = "close";
            await HttpForwarding.WriteBodyAsync(context, StatusCodes.Status413RequestEntityTooLarge, "text/html", NginxPage);
            return true;
        }

        if (HttpMethods.IsPatch(context.Request.Method))
        {
            Interlocked.Increment(ref _patches);
        }

        return false;
    }
}
