using System.Net;
using System.Net.Sockets;
using System.Text;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary>
/// The plain-HTTP probe after a failed TLS handshake: a port that answers plain HTTP normally serves plain HTTP, but a TLS
/// port that answers with "you sent HTTP to an HTTPS server" (Go's net/http in Distribution, nginx) is a TLS port whose
/// certificate failed, and must not be reported as plain HTTP.
/// </summary>
public sealed class PlainHttpProbeTests
{
    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDocker-Distribution-Api-Version: registry/2.0\r\nContent-Length: 2\r\n\r\n{}", true)]
    [InlineData("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", true)]
    [InlineData("HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n", false)]
    [InlineData("HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 50\r\n\r\n<html>The plain HTTP request was sent to HTTPS port</html>", false)]
    [InlineData("\u0015\u0003\u0001\u0000\u0002\u0002\u0016", false)]
    public async Task AnswersPlainHttp_ReadsTheWholeAnswer(string answer, bool plain)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var serve = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            var buffer = new byte[1024];
            _ = await stream.ReadAsync(buffer);
            await stream.WriteAsync(Encoding.Latin1.GetBytes(answer));
        });

        var result = await TransportDiagnosis.AnswersPlainHttpAsync("127.0.0.1", port, CancellationToken.None);
        await serve;

        Assert.Equal(plain, result);
    }
}
