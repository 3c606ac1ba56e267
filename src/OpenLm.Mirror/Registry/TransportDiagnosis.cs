using System.Net;
using System.Net.Sockets;
using System.Text;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Registry;

/// <summary>
/// Names scheme mix-ups between this tool and a registry: TLS spoken to a plain-HTTP port, and plain HTTP spoken to a
/// TLS port. Both otherwise surface as misleading errors (an untrusted certificate; a bare 400).
/// </summary>
internal static class TransportDiagnosis
{
    /// <summary>
    /// Go's net/http server (CNCF Distribution, Harbor, Zot) answers a plain-HTTP request on a TLS listener with a raw
    /// <c>HTTP/1.0 400 Bad Request</c> whose body is this sentence.
    /// </summary>
    public const string GoPlainHttpToTlsBody = "Client sent an HTTP request to an HTTPS server";

    private const int MaxBodyBytes = 4096;
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// For a 400 answer to a plain-HTTP request: the error naming the TLS listener when the body says so, else null
    /// (the response is left readable either way).
    /// </summary>
    public static async Task<OperationException?> PlainHttpToTlsAsync(HttpResponseMessage response, string authority, CancellationToken cancellationToken)
    {
        if (response.StatusCode != HttpStatusCode.BadRequest || response.Content.Headers.ContentLength is > MaxBodyBytes)
        {
            return null;
        }

        string body;
        try
        {
            await response.Content.LoadIntoBufferAsync(MaxBodyBytes, cancellationToken).ConfigureAwait(false);
            body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            return null;
        }

        return body.Contains(GoPlainHttpToTlsBody, StringComparison.OrdinalIgnoreCase)
            ? new OperationException($"the registry at {authority} speaks TLS (HTTPS), but plain HTTP was used to reach it")
            {
                Remedy = Remedy.DropPlainHttp,
                Subject = authority,
            }
            : null;
    }

    /// <summary>
    /// After a failed TLS handshake: whether <paramref name="host"/>:<paramref name="port"/> answers a plain HTTP request
    /// with an HTTP status line, i.e. it serves plain HTTP and the handshake failed for that reason, not the certificate.
    /// </summary>
    public static async Task<bool> AnswersPlainHttpAsync(string host, int port, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ProbeTimeout);
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(host, port, timeout.Token).ConfigureAwait(false);
            var stream = client.GetStream();
            var request = Encoding.ASCII.GetBytes($"GET /v2/ HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
            await stream.WriteAsync(request, timeout.Token).ConfigureAwait(false);
            // Read the (small) answer: a TLS server may answer plain HTTP too, with a 400 saying so (Go's net/http as in
            // Distribution, nginx), and that port speaks TLS — the handshake failed for another reason (the certificate).
            var answer = new byte[4096];
            var read = 0;
            while (read < answer.Length)
            {
                int n;
                try
                {
                    n = await stream.ReadAsync(answer.AsMemory(read), timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && read > 0)
                {
                    break; // a server that keeps the connection open: what it sent so far is the answer
                }

                if (n == 0)
                {
                    break;
                }

                read += n;
                if (read >= 5 && !Encoding.ASCII.GetString(answer, 0, 5).Equals("HTTP/", StringComparison.Ordinal))
                {
                    return false;
                }
            }

            var text = Encoding.ASCII.GetString(answer, 0, read);
            return text.StartsWith("HTTP/", StringComparison.Ordinal) && !SpeaksTls(text);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Whether a plain-HTTP answer says the port is a TLS port (Go's net/http; nginx's "plain HTTP request was sent to HTTPS port").</summary>
    private static bool SpeaksTls(string answer) =>
        answer.Contains(GoPlainHttpToTlsBody, StringComparison.OrdinalIgnoreCase)
        || answer.Contains("plain HTTP request was sent to HTTPS port", StringComparison.OrdinalIgnoreCase);

    /// <summary>The error for a TLS handshake with a port that serves plain HTTP.</summary>
    public static OperationException TlsToPlainHttp(string authority, Exception inner) =>
        new($"the registry at {authority} answered plain HTTP to a TLS (HTTPS) connection", inner)
        {
            Remedy = Remedy.PlainHttp,
            Subject = authority,
        };

    /// <summary>A refused connection: nothing listens at the port, and retrying the same port seconds later rarely helps.</summary>
    public static bool IsConnectionRefused(Exception exception) =>
        exception is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } http
        && FindSocketError(http) == SocketError.ConnectionRefused;

    private static SocketError? FindSocketError(Exception exception)
    {
        for (var e = exception.InnerException; e is not null; e = e.InnerException)
        {
            if (e is SocketException socket)
            {
                return socket.SocketErrorCode;
            }
        }

        return null;
    }
}
