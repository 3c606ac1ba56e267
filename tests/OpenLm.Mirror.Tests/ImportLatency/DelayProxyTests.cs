using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.Tests.ImportLatency;

/// <summary>
/// The TestKit delay proxy the latency bench and tests put in front of a registry: one round trip per message exchange
/// and per new connection, never per byte, bytes and half-closes passed through unchanged.
/// </summary>
public sealed class DelayProxyTests : IAsyncLifetime
{
    private static readonly TimeSpan Rtt = TimeSpan.FromMilliseconds(100);
    private TcpListener _echo = null!;
    private Task _echoLoop = null!;
    private DelayProxy _proxy = null!;

    public Task InitializeAsync()
    {
        // An upstream that echoes every byte back and half-closes when its client does.
        _echo = new TcpListener(IPAddress.Loopback, 0);
        _echo.Start();
        _echoLoop = EchoLoopAsync(_echo);
        _proxy = DelayProxy.Start(new IPEndPoint(IPAddress.Loopback, 0), (IPEndPoint)_echo.LocalEndpoint, Rtt);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync();
        _echo.Stop();
        await _echoLoop.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    [Fact]
    public async Task DelayProxy_Exchange_OneRoundTripPerMessageAndOneMorePerConnection()
    {
        // Given a connection through the proxy
        using var client = new TcpClient();
        var clock = Stopwatch.StartNew();
        await client.ConnectAsync(_proxy.Listening);
        var stream = client.GetStream();

        // When a first message and then a second one are echoed
        var first = await EchoAsync(stream, 1);
        var second = await EchoAsync(stream, 2);

        // Then the first costs the connection's round trip and its own, the second only its own (upper bounds loose:
        // a shared CI machine can stall a thread pool for a second)
        Assert.InRange(first.TotalMilliseconds, 2 * Rtt.TotalMilliseconds - 5, 2 * Rtt.TotalMilliseconds + 3000);
        Assert.InRange(second.TotalMilliseconds, Rtt.TotalMilliseconds - 5, Rtt.TotalMilliseconds + 3000);
        Assert.Equal(1, _proxy.Connections);
        Assert.True(clock.Elapsed >= 3 * Rtt - TimeSpan.FromMilliseconds(10));
    }

    [Fact]
    public async Task DelayProxy_Stream_DelayIsPerExchangeNotPerChunk()
    {
        // Given 32 MiB of distinct bytes, far more than one 64 KiB read (512 of them)
        var payload = new byte[32 << 20];
        new Random(7).NextBytes(payload);
        using var client = new TcpClient();
        await client.ConnectAsync(_proxy.Listening);
        var stream = client.GetStream();

        // When they are sent through the proxy, the sending side half-closed, and everything echoed back is read
        var clock = Stopwatch.StartNew();
        var send = Task.Run(async () =>
        {
            await stream.WriteAsync(payload);
            client.Client.Shutdown(SocketShutdown.Send);
        });
        using var received = new MemoryStream();
        await stream.CopyToAsync(received);
        await send;

        // Then every byte came back in order, and the whole stream took a few round trips, not one per read (51 s)
        Assert.Equal(payload.Length, received.Length);
        Assert.True(payload.AsSpan().SequenceEqual(received.GetBuffer().AsSpan(0, (int)received.Length)), "the bytes changed on the way");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"32 MiB took {clock.Elapsed.TotalSeconds:0.0}s at {Rtt.TotalMilliseconds} ms");

        // And the proxy counted what it forwarded, both ways, in at least one read per 64 KiB each way
        Assert.Equal(2L * payload.Length, _proxy.Bytes);
        Assert.InRange(_proxy.Reads, 2L * payload.Length / (64 << 10), 2L * payload.Length);
    }

    [Theory]
    [InlineData("20ms", 20)]
    [InlineData("0.05s", 50)]
    [InlineData("7", 7)]
    public void DelayProxy_ParseDuration_MillisecondsSecondsOrBareNumber(string text, double milliseconds) =>
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), DelayProxy.ParseDuration(text));

    [Theory]
    [InlineData("fast")]
    [InlineData("-5ms")]
    [InlineData("")]
    public void DelayProxy_ParseDuration_NotADuration_NamesTheText(string text)
    {
        var error = Assert.Throws<ArgumentException>(() => DelayProxy.ParseDuration(text));
        Assert.Contains($"'{text}'", error.Message);
    }

    [Fact]
    public void DelayProxy_Start_NonLoopbackUpstream_Refused()
    {
        var error = Assert.Throws<ArgumentException>(() => DelayProxy.Start(new IPEndPoint(IPAddress.Loopback, 0), new IPEndPoint(IPAddress.Parse("192.0.2.1"), 5000), Rtt));
        Assert.Contains("loopback", error.Message);
    }

    [Theory]
    [InlineData("delay-proxy|--listen|127.0.0.1:0|--to|127.0.0.1:5000")]
    [InlineData("delay-proxy|--listen|127.0.0.1:0|--to|127.0.0.1:5000|--rtt|soon")]
    [InlineData("delay-proxy|--listen|example.com:80|--to|127.0.0.1:5000|--rtt|20ms")]
    [InlineData("delay-proxy|--listen|127.0.0.1:0|--to|127.0.0.1|--rtt|20ms")]
    [InlineData("delay-proxy|--listen|127.0.0.1:0|--to|192.0.2.1:5000|--rtt|20ms")]
    [InlineData("delay-proxy|--rtt")]
    [InlineData("delay-proxy|--frobnicate")]
    public async Task DelayProxyCommand_BadUsage_ExitsWith2(string joinedArgs) =>
        Assert.Equal(2, await OpenLm.Mirror.TestKit.Program.Main(joinedArgs.Split('|')));

    private static async Task<TimeSpan> EchoAsync(NetworkStream stream, byte value)
    {
        var clock = Stopwatch.StartNew();
        await stream.WriteAsync(new[] { value });
        var answer = new byte[1];
        Assert.Equal(1, await stream.ReadAsync(answer));
        Assert.Equal(value, answer[0]);
        return clock.Elapsed;
    }

    private static async Task EchoLoopAsync(TcpListener listener)
    {
        while (true)
        {
            var socket = await listener.AcceptSocketAsync();
            _ = Task.Run(async () =>
            {
                using (socket)
                {
                    var buffer = new byte[81920];
                    int n;
                    while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None)) > 0)
                    {
                        await socket.SendAsync(buffer.AsMemory(0, n), SocketFlags.None);
                    }

                    socket.Shutdown(SocketShutdown.Send);
                }
            });
        }
    }
}
