using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// Reverse-proxy plumbing shared by the emulators: building streamed upstream requests from a Kestrel
/// <see cref="HttpContext"/>, copying response headers (minus hop-by-hop ones) and writing small JSON/XML bodies.
/// </summary>
public static class HttpForwarding
{
    private static readonly HashSet<string> HopByHopHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
    };

    /// <summary>Request headers never forwarded: hop-by-hop ones plus Host (derived from the target) and Expect.</summary>
    private static readonly HashSet<string> NonForwardedRequestHeaders = new(HopByHopHeaders, StringComparer.OrdinalIgnoreCase)
    {
        "Host",
        "Expect",
    };

    /// <summary>
    /// An upstream client: no redirects, no decompression, no cookies, no system proxy (loopback only), no timeout
    /// (bodies are streamed; callers pass the request-aborted token).
    /// </summary>
    public static HttpClient CreateUpstreamClient()
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            UseProxy = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        return new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>Whether a header is hop-by-hop and must not be copied across a proxy.</summary>
    public static bool IsHopByHop(string headerName) => HopByHopHeaders.Contains(headerName);

    /// <summary>Combines <paramref name="upstreamBase"/> (which may carry a path prefix) with a path and query.</summary>
    public static Uri BuildUpstreamUri(Uri upstreamBase, string pathAndQuery)
    {
        ArgumentNullException.ThrowIfNull(upstreamBase);
        var root = upstreamBase.GetLeftPart(UriPartial.Path).TrimEnd('/');
        if (!pathAndQuery.StartsWith('/'))
        {
            pathAndQuery = "/" + pathAndQuery;
        }

        return new Uri(root + pathAndQuery, UriKind.Absolute);
    }

    /// <summary>The incoming request's raw path and query string, as sent by the client.</summary>
    public static string PathAndQuery(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Request.PathBase.ToUriComponent()
            + context.Request.Path.ToUriComponent()
            + context.Request.QueryString.ToUriComponent();
    }

    /// <summary>
    /// Creates the upstream request mirroring the incoming one: method, headers (except hop-by-hop, Host, Expect
    /// and any for which <paramref name="skipHeader"/> returns true) and the request body as a stream (not buffered).
    /// </summary>
    public static HttpRequestMessage CreateUpstreamRequest(
        HttpContext context, Uri target, Func<string, bool>? skipHeader = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        var request = context.Request;
        var message = new HttpRequestMessage(new HttpMethod(request.Method), target)
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

        var canHaveBody = context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? false;
        if (canHaveBody)
        {
            message.Content = new StreamContent(request.Body, 81920);
        }
        else if (HttpMethods.IsPost(request.Method) || HttpMethods.IsPut(request.Method) || HttpMethods.IsPatch(request.Method))
        {
            // Keep an explicit "Content-Length: 0" on body-less writes (e.g. the final PUT of a blob upload).
            message.Content = new ByteArrayContent([]);
        }

        foreach (var header in request.Headers)
        {
            if (NonForwardedRequestHeaders.Contains(header.Key) || (skipHeader?.Invoke(header.Key) ?? false))
            {
                continue;
            }

            var values = header.Value.ToArray();
            if (!message.Headers.TryAddWithoutValidation(header.Key, values) && message.Content is not null)
            {
                message.Content.Headers.TryAddWithoutValidation(header.Key, values);
            }
        }

        return message;
    }

    /// <summary>
    /// Copies status code and headers (response and content headers) onto the Kestrel response, dropping hop-by-hop
    /// headers and anything <paramref name="skipHeader"/> rejects; <paramref name="rewriteLocation"/> maps Location values.
    /// </summary>
    public static void CopyResponseHead(
        HttpResponseMessage upstream,
        HttpResponse response,
        Func<string, bool>? skipHeader = null,
        Func<string, string>? rewriteLocation = null)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        ArgumentNullException.ThrowIfNull(response);
        var status = (int)upstream.StatusCode;
        response.StatusCode = status;
        var bodyless = status is StatusCodes.Status204NoContent or StatusCodes.Status304NotModified;

        foreach (var header in upstream.Headers.Concat(upstream.Content.Headers))
        {
            if (IsHopByHop(header.Key) || (skipHeader?.Invoke(header.Key) ?? false))
            {
                continue;
            }

            if (bodyless && string.Equals(header.Key, "Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var values = header.Value.ToArray();
            if (rewriteLocation is not null && string.Equals(header.Key, "Location", StringComparison.OrdinalIgnoreCase))
            {
                values = values.Select(rewriteLocation).ToArray();
            }

            response.Headers[header.Key] = values;
        }
    }

    /// <summary>Rewrites absolute URLs pointing at <paramref name="from"/>'s authority to <paramref name="to"/>; others unchanged.</summary>
    public static Func<string, string> AuthorityRewriter(Uri from, Uri to)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        return location =>
        {
            if (!Uri.TryCreate(location, UriKind.Absolute, out var uri)
                || !string.Equals(uri.Authority, from.Authority, StringComparison.OrdinalIgnoreCase)
                || !string.Equals(uri.Scheme, from.Scheme, StringComparison.OrdinalIgnoreCase))
            {
                return location;
            }

            var builder = new UriBuilder(uri) { Scheme = to.Scheme, Host = to.Host, Port = to.Port };
            return builder.Uri.AbsoluteUri;
        };
    }

    /// <summary>Streams <paramref name="source"/> to <paramref name="destination"/> without buffering it whole.</summary>
    public static Task CopyBodyAsync(Stream source, Stream destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source.CopyToAsync(destination, 81920, cancellationToken);
    }

    /// <summary>The registry error envelope: <c>{"errors":[{"code":"..","message":".."}]}</c>.</summary>
    public static string RegistryErrorJson(string code, string message)
        => "{\"errors\":[{\"code\":\"" + JsonEscape(code) + "\",\"message\":\"" + JsonEscape(message) + "\"}]}";

    /// <summary>Writes a complete small body with an explicit Content-Length (omitting the body itself for HEAD).</summary>
    public static async Task WriteBodyAsync(HttpContext context, int status, string contentType, string body)
    {
        ArgumentNullException.ThrowIfNull(context);
        var bytes = Encoding.UTF8.GetBytes(body);
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = contentType;
        response.ContentLength = bytes.Length;
        if (!HttpMethods.IsHead(context.Request.Method))
        {
            await response.Body.WriteAsync(bytes, context.RequestAborted).ConfigureAwait(false);
        }
    }

    /// <summary>Writes a registry-style JSON error (<c>application/json</c>).</summary>
    public static Task WriteRegistryErrorAsync(HttpContext context, int status, string code, string message)
        => WriteBodyAsync(context, status, "application/json", RegistryErrorJson(code, message));

    /// <summary>Sends the upstream request and, on connection failure, answers 502 instead of throwing.</summary>
    public static async Task<HttpResponseMessage?> SendUpstreamAsync(
        HttpClient client, HttpRequestMessage request, HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted)
                .ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            if (!context.Response.HasStarted)
            {
                await WriteBodyAsync(context, StatusCodes.Status502BadGateway, "text/plain", "upstream error: " + ex.Message)
                    .ConfigureAwait(false);
            }

            return null;
        }
    }

    /// <summary>Writes at most <paramref name="count"/> body bytes, flushes, then aborts the connection
    /// (the client sees a body shorter than its Content-Length, i.e. a premature end / reset).</summary>
    public static async Task SendPrefixThenAbortAsync(HttpContext context, Stream body, long count)
    {
        var buffer = new byte[16384];
        var remaining = count;
        while (remaining > 0)
        {
            var read = await body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, remaining)), context.RequestAborted)
                .ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), context.RequestAborted).ConfigureAwait(false);
            remaining -= read;
        }

        await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);

        // Give the transport a moment to put the prefix on the wire before tearing the connection down.
        await Task.Delay(50, context.RequestAborted).ConfigureAwait(false);
        context.Abort();
    }

    /// <summary>Whether an exception is the normal consequence of the client going away mid-response.</summary>
    public static bool IsClientGone(Exception exception, HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.RequestAborted.IsCancellationRequested
            && exception is OperationCanceledException or IOException or ObjectDisposedException;
    }

    private static string JsonEscape(string value)
    {
        var sb = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case < ' ': sb.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture)); break;
                default: sb.Append(c); break;
            }
        }

        return sb.ToString();
    }
}
