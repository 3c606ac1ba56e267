using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace OpenLm.Mirror.TestKit;

/// <summary><c>delay-proxy --listen HOST:PORT --to HOST:PORT --rtt 20ms</c>: runs a <see cref="DelayProxy"/> until stopped.</summary>
internal static class DelayProxyCommand
{
    internal static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        IPEndPoint? listen = null, to = null;
        TimeSpan? rtt = null;
        try
        {
            for (var i = 0; i < args.Count; i++)
            {
                var arg = args[i];
                string Value() => i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal)
                    ? args[++i]
                    : throw new Program.UsageException($"{arg} needs a value.");
                switch (arg)
                {
                    case "--listen": listen = DelayProxy.ParseEndpoint(Value()); break;
                    case "--to": to = DelayProxy.ParseEndpoint(Value()); break;
                    case "--rtt": rtt = DelayProxy.ParseDuration(Value()); break;
                    case "-h" or "--help": Console.Out.WriteLine(Program.Usage); return 0;
                    default: throw new Program.UsageException($"unknown option '{arg}' for delay-proxy.");
                }
            }

            if (listen is null || to is null || rtt is null)
            {
                throw new Program.UsageException("delay-proxy needs --listen HOST:PORT, --to HOST:PORT and --rtt DURATION.");
            }
        }
        catch (Exception e) when (e is Program.UsageException or ArgumentException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine("Run with --help for usage.");
            return 2;
        }

        DelayProxy proxy;
        try
        {
            proxy = DelayProxy.Start(listen, to, rtt.Value);
        }
        catch (Exception e) when (e is SocketException or ArgumentException)
        {
            Console.Error.WriteLine($"error: cannot listen on {listen}: {e.Message}");
            return e is ArgumentException ? 2 : 1;
        }

        await using (proxy.ConfigureAwait(false))
        {
            using var stopped = new CancellationTokenSource();
            using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stopped.Cancel(); });
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; stopped.Cancel(); };
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"listening {proxy.Listening.Address}:{proxy.Listening.Port} -> {to} rtt {proxy.RoundTrip.TotalMilliseconds}ms"));
            Console.Out.Flush();
            try
            {
                await Task.Delay(Timeout.Infinite, stopped.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            // What the proxy cost and whether its window limited anything: a fair delay line stays far from both.
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"delay-proxy: {proxy.Connections} connections, {proxy.Bytes / 1048576.0:0.0} MiB in {proxy.Reads} reads, window full {proxy.WindowFull} times, {Environment.CpuUsage.TotalTime.TotalSeconds:0.00} s CPU"));
        }

        return 0;
    }
}
