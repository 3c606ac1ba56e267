using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OpenLm.Mirror.Tests.Core;

/// <summary>One request as the fake server saw it.</summary>
internal sealed record SeenRequest(string Method, string Path, string Query, string? Authorization, string? Range, string? Accept);

/// <summary>
/// A tiny HTTP server on a loopback address (System.Net.HttpListener, no ASP.NET) that hands every request to a
/// test's handler and records what it saw. Only loopback addresses are accepted.
/// </summary>
internal sealed class LoopbackServer : IAsyncDisposable
{
    private readonly HttpListener _listener;
    private readonly Func<HttpListenerContext, Task> _handler;
    private readonly Task _loop;
    private readonly ConcurrentQueue<SeenRequest> _requests = new();

    private LoopbackServer(HttpListener listener, Uri baseAddress, Func<HttpListenerContext, Task> handler)
    {
        _listener = listener;
        BaseAddress = baseAddress;
        _handler = handler;
        _loop = Task.Run(AcceptLoopAsync);
    }

    public Uri BaseAddress { get; }

    /// <summary>host:port, e.g. <c>127.0.0.1:41234</c>.</summary>
    public string Authority => BaseAddress.Authority;

    public IReadOnlyList<SeenRequest> Requests => _requests.ToList();

    /// <summary>Forgets the requests seen so far (a test's setup traffic), so assertions see only what follows.</summary>
    public void ClearRequests() => _requests.Clear();

    public static LoopbackServer Start(Func<HttpListenerContext, Task> handler, string host = "127.0.0.1")
    {
        if (!IPAddress.IsLoopback(IPAddress.Parse(host)))
        {
            throw new ArgumentException($"only loopback addresses, not {host}", nameof(host));
        }

        for (var attempt = 0; ; attempt++)
        {
            var probe = new TcpListener(IPAddress.Parse(host), 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            var listener = new HttpListener();
            var prefix = $"http://{host}:{port}/";
            listener.Prefixes.Add(prefix);
            try
            {
                listener.Start();
                return new LoopbackServer(listener, new Uri(prefix), handler);
            }
            catch (HttpListenerException) when (attempt < 10)
            {
                listener.Close();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        try
        {
            _listener.Close();
        }
        catch (HttpListenerException)
        {
            // Managed HttpListener's Close after Stop binds the port again to remove its prefix; when another test has
            // taken the freed port meanwhile that bind fails with "Address already in use". The listener is stopped.
        }

        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            _ = Task.Run(() => HandleAsync(context));
        }
    }

    private async Task HandleAsync(HttpListenerContext context)
    {
        var request = context.Request;
        _requests.Enqueue(new SeenRequest(
            request.HttpMethod,
            request.Url!.AbsolutePath,
            request.Url.Query,
            request.Headers["Authorization"],
            request.Headers["Range"],
            request.Headers["Accept"]));
        try
        {
            await _handler(context).ConfigureAwait(false);
            if (!Reply.WasReset(context))
            {
                context.Response.Close();
            }
        }
        catch (HttpListenerException)
        {
            // The client went away or the handler aborted the connection on purpose.
        }
        catch (ObjectDisposedException)
        {
        }
        catch (Exception) when (Reply.WasReset(context))
        {
            // The connection was reset on purpose; whatever failed afterwards has nobody to answer.
        }
        catch (Exception ex)
        {
            try
            {
                context.Response.StatusCode = 599;
                var body = Encoding.UTF8.GetBytes("handler failed: " + ex);
                await context.Response.OutputStream.WriteAsync(body).ConfigureAwait(false);
                context.Response.Close();
            }
            catch (Exception inner) when (inner is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
            }
        }
    }
}

/// <summary>Response helpers for handlers.</summary>
internal static class Reply
{
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<HttpListenerContext, object> Resets = new();

    /// <summary>
    /// Resets the TCP connection (RST) without sending a status line: what a registry restart or a load balancer
    /// dropping the connection looks like to the client. <see cref="HttpListenerResponse.Abort"/> cannot do it: before
    /// the headers are out, the managed listener's abort still sends <c>200 OK</c>. So the socket is taken from the
    /// listener's connection (a private field, found by type) and closed with a zero linger time.
    /// </summary>
    public static void Reset(HttpListenerContext context)
    {
        const System.Reflection.BindingFlags Private = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic;
        var connection = context.GetType().GetProperty("Connection", Private)?.GetValue(context)
            ?? throw new InvalidOperationException("this HttpListener has no managed connection to reset");
        var socket = connection.GetType().GetFields(Private).Where(f => f.FieldType == typeof(Socket)).Select(f => f.GetValue(connection)).OfType<Socket>().FirstOrDefault()
            ?? throw new InvalidOperationException("the listener connection holds no socket to reset");
        Resets.AddOrUpdate(context, new object());
        socket.LingerState = new LingerOption(true, 0);
        socket.Close();
    }

    /// <summary>Whether <see cref="Reset"/> closed this request's connection (nothing more may be sent on it).</summary>
    public static bool WasReset(HttpListenerContext context) => Resets.TryGetValue(context, out _);

    public static async Task BytesAsync(HttpListenerContext context, int status, byte[] body, string? contentType = null, IDictionary<string, string>? headers = null)
    {
        var response = context.Response;
        response.StatusCode = status;
        if (contentType is not null)
        {
            response.ContentType = contentType;
        }

        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            response.AddHeader(name, value);
        }

        response.ContentLength64 = body.Length;
        if (context.Request.HttpMethod != "HEAD")
        {
            await response.OutputStream.WriteAsync(body).ConfigureAwait(false);
        }
    }

    public static Task JsonAsync(HttpListenerContext context, int status, string json, IDictionary<string, string>? headers = null) =>
        BytesAsync(context, status, Encoding.UTF8.GetBytes(json), "application/json", headers);

    public static Task ErrorAsync(HttpListenerContext context, int status, string code, string message, IDictionary<string, string>? headers = null) =>
        JsonAsync(context, status, $"{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"{message}\",\"detail\":null}}]}}", headers);

    public static Task StatusAsync(HttpListenerContext context, int status, IDictionary<string, string>? headers = null) =>
        BytesAsync(context, status, [], null, headers);
}
