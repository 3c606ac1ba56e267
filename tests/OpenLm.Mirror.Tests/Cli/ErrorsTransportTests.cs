using System.Net;
using System.Net.Sockets;
using System.Text;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary>Scheme mix-ups and refused connections are named once, with the fix, instead of misleading or repeated errors.</summary>
public sealed class ErrorsTransportTests
{
    /// <summary>A loopback server that answers every connection with <paramref name="answer"/> after reading the request head.</summary>
    private static (TcpListener Listener, int Port, Func<int> Connections) Serve(byte[] answer, CancellationToken stop)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var connections = 0;
        _ = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await listener.AcceptTcpClientAsync(stop);
                }
                catch (Exception)
                {
                    return;
                }

                Interlocked.Increment(ref connections);
                _ = Task.Run(async () =>
                {
                    using (client)
                    {
                        try
                        {
                            var stream = client.GetStream();
                            var buffer = new byte[4096];
                            _ = await stream.ReadAsync(buffer, stop);
                            await stream.WriteAsync(answer, stop);
                        }
                        catch (Exception)
                        {
                            // The client may hang up first (a TLS handshake that gave up).
                        }
                    }
                });
            }
        });
        return (listener, ((IPEndPoint)listener.LocalEndpoint).Port, () => Volatile.Read(ref connections));
    }

    [Fact]
    public async Task RegistryClient_PlainHttpToTlsPort_NamesTheSchemeWithDropPlainHttpOnce()
    {
        // Given a port that answers as Go's net/http does on a TLS listener reached with plain HTTP
        using var stop = new CancellationTokenSource();
        var (listener, port, connections) = Serve(Encoding.ASCII.GetBytes("HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"), stop.Token);
        using var _ = listener;
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true, Retries = 3 });
        var repository = connector.Repository(OpenLm.Mirror.Oci.Reference.Parse($"127.0.0.1:{port}/team/app:1"));

        // When two manifests are fetched with plain HTTP
        var first = await Assert.ThrowsAsync<OperationException>(() => repository.FetchManifestAsync("1"));
        var seen = connections();
        var second = await Assert.ThrowsAsync<OperationException>(() => repository.FetchManifestAsync("2"));
        await stop.CancelAsync();

        // Then the error says it speaks TLS with the drop-plain-http remedy, not "400 BadRequest", and the second
        // fetch failed without contacting the registry again (named once per registry, no retries)
        Assert.Equal(Remedy.DropPlainHttp, first.Remedy);
        Assert.Equal($"127.0.0.1:{port}", first.Subject);
        Assert.Contains("speaks TLS", first.Message, StringComparison.Ordinal);
        Assert.Same(first, second);
        Assert.Equal(seen, connections());
        Assert.Equal(1, seen);
        Assert.Contains("drop --plain-http", ErrorReporter.Hint(first.Remedy, first.Subject), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RegistryClient_TlsToPlainHttpPort_NamesPlainHttpNotTheCertificate()
    {
        // Given a port that serves plain HTTP (a 404 to anything)
        using var stop = new CancellationTokenSource();
        var (listener, port, _) = Serve(Encoding.ASCII.GetBytes("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"), stop.Token);
        using var __ = listener;
        using var connector = new RegistryConnector(new RegistryOptions { Retries = 3 });
        var repository = connector.Repository(OpenLm.Mirror.Oci.Reference.Parse($"127.0.0.1:{port}/team/app:1"));

        // When a manifest is fetched over TLS
        var error = await Assert.ThrowsAsync<OperationException>(() => repository.FetchManifestAsync("1"));
        await stop.CancelAsync();

        // Then the error says it answered plain HTTP, with the plain-http remedy, not "certificate is not trusted"
        Assert.Equal(Remedy.PlainHttp, error.Remedy);
        Assert.Contains("answered plain HTTP", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("not trusted", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RetryPolicy_ConnectionRefused_IsNotRetried()
    {
        // Given the error HttpClient raises when nothing listens at the port
        var refused = new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused (127.0.0.1:1)", new SocketException((int)SocketError.ConnectionRefused));

        // Then it fails fast, while a reset connection is still worth a retry
        Assert.False(RetryPolicy.IsTransient(refused, CancellationToken.None));
        Assert.True(RetryPolicy.IsTransient(new HttpRequestException(HttpRequestError.ConnectionError, "reset", new SocketException((int)SocketError.ConnectionReset)), CancellationToken.None));
    }
}
