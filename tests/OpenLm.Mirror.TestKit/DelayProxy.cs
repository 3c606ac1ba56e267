using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace OpenLm.Mirror.TestKit;

/// <summary>
/// A loopback TCP proxy that makes a registry look far away: every byte that crosses it, in either direction, arrives
/// half the round-trip time after it was sent, and every new connection costs one round trip before its first byte
/// moves (the TCP handshake a client pays to a remote host). It is a delay line, not a throttle: data read at time t
/// is written at t + RTT/2 however much of it there is, so a request/response costs one RTT and a stream keeps its
/// throughput (up to <see cref="InFlightChunks"/> reads in flight per direction), like <c>tc netem delay</c> on a
/// link without loss. Protocol-blind (TLS passes through), so the client's own connection reuse is what it measures.
/// </summary>
public sealed class DelayProxy : IAsyncDisposable
{
    /// <summary>Reads queued per direction of one connection; with 64 KiB reads, 16 MiB in flight (1.6 GB/s at 20 ms).</summary>
    public const int InFlightChunks = 256;

    private const int ChunkBytes = 64 * 1024;

    private readonly TcpListener _listener;
    private readonly IPEndPoint _upstream;
    private readonly TimeSpan _oneWay;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private int _connections;
    private long _bytes;
    private long _reads;
    private long _windowFull;

    private DelayProxy(TcpListener listener, IPEndPoint upstream, TimeSpan roundTrip)
    {
        _listener = listener;
        _upstream = upstream;
        RoundTrip = roundTrip;
        _oneWay = roundTrip / 2;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>Where clients connect (the chosen port when asked for port 0).</summary>
    public IPEndPoint Listening => (IPEndPoint)_listener.LocalEndpoint;

    public TimeSpan RoundTrip { get; }

    /// <summary>Connections accepted so far (a measure of the client's connection reuse).</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Bytes forwarded so far, both directions.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Socket reads that carried data, both directions (bytes per read tells how full the window's chunks are).</summary>
    public long Reads => Interlocked.Read(ref _reads);

    /// <summary>
    /// Reads that found their direction's window full (<see cref="InFlightChunks"/> chunks in flight) and waited: non-zero
    /// means the proxy, not the link it stands for, limited a stream's throughput.
    /// </summary>
    public long WindowFull => Interlocked.Read(ref _windowFull);

    /// <summary>Starts forwarding <paramref name="listen"/> to <paramref name="upstream"/>, both on loopback.</summary>
    public static DelayProxy Start(IPEndPoint listen, IPEndPoint upstream, TimeSpan roundTrip)
    {
        ArgumentNullException.ThrowIfNull(listen);
        ArgumentNullException.ThrowIfNull(upstream);
        if (!IPAddress.IsLoopback(listen.Address) || !IPAddress.IsLoopback(upstream.Address))
        {
            throw new ArgumentException($"the delay proxy only listens on and forwards to loopback addresses (got {listen} -> {upstream})");
        }

        if (roundTrip < TimeSpan.Zero || roundTrip > TimeSpan.FromSeconds(10))
        {
            throw new ArgumentException($"round trip must be between 0 and 10 s, got {roundTrip.TotalMilliseconds} ms");
        }

        var listener = new TcpListener(listen);
        listener.Start(512);
        return new DelayProxy(listener, upstream, roundTrip);
    }

    /// <summary>Parses <c>20ms</c>, <c>0.05s</c> or a bare number of milliseconds.</summary>
    public static TimeSpan ParseDuration(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        var (number, scale) = t.EndsWith("ms", StringComparison.OrdinalIgnoreCase) ? (t[..^2], 1.0)
            : t.EndsWith('s') ? (t[..^1], 1000.0)
            : (t, 1.0);
        if (!double.TryParse(number, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value) || value < 0 || double.IsInfinity(value))
        {
            throw new ArgumentException($"'{text}' is not a duration (e.g. 20ms, 0.05s)");
        }

        return TimeSpan.FromMilliseconds(value * scale);
    }

    /// <summary>Parses <c>HOST:PORT</c> where HOST is a loopback IP address or <c>localhost</c>.</summary>
    public static IPEndPoint ParseEndpoint(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            throw new ArgumentException($"'{text}' is not HOST:PORT");
        }

        var host = text[..colon].Trim('[', ']');
        var address = host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
            : IPAddress.TryParse(host, out var parsed) ? parsed
            : throw new ArgumentException($"'{host}' is not an IP address (the delay proxy stays on loopback)");
        return new IPEndPoint(address, port);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        try
        {
            await _acceptLoop.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _connections);
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using (client)
        using (var upstream = new Socket(_upstream.AddressFamily, SocketType.Stream, ProtocolType.Tcp))
        {
            client.NoDelay = true;
            upstream.NoDelay = true;
            try
            {
                // The handshake a remote registry costs: the client's first bytes wait in its socket buffer meanwhile.
                await Task.WhenAll(upstream.ConnectAsync(_upstream, _stop.Token).AsTask(), Task.Delay(RoundTrip, _stop.Token)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
                return;
            }

            using var broken = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            var up = PumpAsync(client, upstream, broken);
            var down = PumpAsync(upstream, client, broken);
            await Task.WhenAll(up, down).ConfigureAwait(false);
        }
    }

    /// <summary>One direction: a reader stamps each read with its due time, a writer sends it when due; end of stream is forwarded as a half-close, due like data.</summary>
    private async Task PumpAsync(Socket from, Socket to, CancellationTokenSource broken)
    {
        var line = Channel.CreateBounded<(long Due, byte[]? Buffer, int Count)>(new BoundedChannelOptions(InFlightChunks) { SingleReader = true, SingleWriter = true });
        var writer = WriteAsync(line.Reader, to, broken);
        try
        {
            while (true)
            {
                var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(ChunkBytes);
                var n = await from.ReceiveAsync(buffer.AsMemory(0, ChunkBytes), SocketFlags.None, broken.Token).ConfigureAwait(false);
                var due = Stopwatch.GetTimestamp() + (long)(_oneWay.TotalSeconds * Stopwatch.Frequency);
                if (n == 0)
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                    await line.Writer.WriteAsync((due, null, 0), broken.Token).ConfigureAwait(false);
                    break;
                }

                Interlocked.Add(ref _bytes, n);
                Interlocked.Increment(ref _reads);
                if (!line.Writer.TryWrite((due, buffer, n)))
                {
                    Interlocked.Increment(ref _windowFull);
                    await line.Writer.WriteAsync((due, buffer, n), broken.Token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // A reset on one side resets the whole connection, as it would end to end.
            await broken.CancelAsync().ConfigureAwait(false);
        }
        finally
        {
            line.Writer.TryComplete();
        }

        await writer.ConfigureAwait(false);
    }

    private static async Task WriteAsync(ChannelReader<(long Due, byte[]? Buffer, int Count)> line, Socket to, CancellationTokenSource broken)
    {
        try
        {
            await foreach (var (due, buffer, count) in line.ReadAllAsync(broken.Token).ConfigureAwait(false))
            {
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, broken.Token).ConfigureAwait(false);
                }

                if (buffer is null)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                try
                {
                    await to.SendAsync(buffer.AsMemory(0, count), SocketFlags.None, broken.Token).ConfigureAwait(false);
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            await broken.CancelAsync().ConfigureAwait(false);
        }
        finally
        {
            while (line.TryRead(out var left))
            {
                if (left.Buffer is not null)
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(left.Buffer);
                }
            }
        }
    }
}
