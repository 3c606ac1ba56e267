using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// A real Debian <c>tinyproxy</c> on a free loopback port with a config, log and pid file of its own (in a private
/// directory under <c>$TMPDIR/openlm-tinyproxy/</c>), optionally requiring BasicAuth. Its log shows every request
/// (<c>Request (file descriptor N): CONNECT host:port HTTP/1.1</c> for TLS tunnels, absolute-form GETs for plain HTTP).
/// </summary>
/// <remarks>
/// Idempotent start: directories left by earlier test runs whose owning test process is gone are cleaned up, and a
/// tinyproxy still running from such a directory (its pid file, its config path on its command line) is killed.
/// Directories of live test processes (another developer's run) are left alone.
/// </remarks>
public sealed class TinyproxyProcess : IAsyncDisposable
{
    public const string Binary = "/usr/bin/tinyproxy";

    private readonly Process _process;

    private TinyproxyProcess(Process process, string directory, int port)
    {
        _process = process;
        Directory = directory;
        Port = port;
    }

    /// <summary>The private directory holding tinyproxy.conf, tinyproxy.log and tinyproxy.pid.</summary>
    public string Directory { get; }

    public int Port { get; }

    /// <summary>The proxy URL without credentials, e.g. <c>http://127.0.0.1:40111</c>.</summary>
    public string Url => $"http://127.0.0.1:{Port}";

    public string LogPath => Path.Combine(Directory, "tinyproxy.log");

    private static string Root => Path.Combine(Path.GetTempPath(), "openlm-tinyproxy");

    /// <summary>The request lines tinyproxy logged so far (method and target), e.g. <c>CONNECT 127.0.0.1:5000</c>.</summary>
    public IReadOnlyList<string> RequestLines()
    {
        const string Marker = "): ";
        var lines = new List<string>();
        using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        while (reader.ReadLine() is { } line)
        {
            if (line.Contains("Request (file descriptor", StringComparison.Ordinal) && line.IndexOf(Marker, StringComparison.Ordinal) is var at and > 0)
            {
                var request = line[(at + Marker.Length)..];
                lines.Add(request.EndsWith(" HTTP/1.1", StringComparison.Ordinal) ? request[..^" HTTP/1.1".Length] : request);
            }
        }

        return lines;
    }

    /// <summary>The whole log (for assertion messages).</summary>
    public string ReadLog()
    {
        using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary>Starts tinyproxy; with <paramref name="user"/> and <paramref name="password"/> it requires BasicAuth.</summary>
    public static async Task<TinyproxyProcess> StartAsync(string? user = null, string? password = null)
    {
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException($"{Binary} is missing: run scripts/install-deps.sh (Debian package tinyproxy).");
        }

        CleanStale();
        Exception? last = null;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var directory = Path.Combine(Root, Guid.NewGuid().ToString("N")[..12]);
            System.IO.Directory.CreateDirectory(directory);
            await File.WriteAllTextAsync(Path.Combine(directory, "owner"), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var port = FreePort();
            var config = Path.Combine(directory, "tinyproxy.conf");
            var text = new StringBuilder()
                .AppendLine($"Port {port}")
                .AppendLine("Listen 127.0.0.1")
                .AppendLine("Timeout 120")
                .AppendLine($"LogFile \"{Path.Combine(directory, "tinyproxy.log")}\"")
                .AppendLine("LogLevel Info")
                .AppendLine($"PidFile \"{Path.Combine(directory, "tinyproxy.pid")}\"")
                .AppendLine("MaxClients 64")
                .AppendLine("Allow 127.0.0.1")
                .AppendLine("DisableViaHeader Yes");
            // No ConnectPort line: tinyproxy then allows CONNECT to every port (the registries listen on random ones).
            if (user is not null)
            {
                text.AppendLine($"BasicAuth {user} {password}");
            }

            await File.WriteAllTextAsync(config, text.ToString());
            var start = new ProcessStartInfo(Binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add("-d");
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(config);
            var process = Process.Start(start)!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var proxy = new TinyproxyProcess(process, directory, port);
            try
            {
                await proxy.WaitListeningAsync();
                return proxy;
            }
            catch (InvalidOperationException ex)
            {
                last = ex;
                await proxy.DisposeAsync();
            }
        }

        throw new InvalidOperationException("tinyproxy did not start", last);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException)
        {
        }
        finally
        {
            _process.Dispose();
            TryDelete(Directory);
        }
    }

    private async Task WaitListeningAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"tinyproxy exited with {_process.ExitCode}: {(File.Exists(LogPath) ? ReadLog() : "(no log)")}");
            }

            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }

        throw new InvalidOperationException($"tinyproxy is not listening on 127.0.0.1:{Port} after 10 s");
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Removes directories (and kills their tinyproxy) left by test processes that no longer run.</summary>
    private static void CleanStale()
    {
        if (!System.IO.Directory.Exists(Root))
        {
            return;
        }

        foreach (var directory in System.IO.Directory.GetDirectories(Root))
        {
            var owner = Path.Combine(directory, "owner");
            if (File.Exists(owner) && int.TryParse(File.ReadAllText(owner).Trim(), out var ownerPid) && IsAlive(ownerPid))
            {
                continue;
            }

            var pidFile = Path.Combine(directory, "tinyproxy.pid");
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid) && IsOurs(pid, directory))
            {
                try
                {
                    using var stale = Process.GetProcessById(pid);
                    stale.Kill();
                    stale.WaitForExit(5000);
                }
                catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
                {
                }
            }

            TryDelete(directory);
        }
    }

    private static bool IsAlive(int pid) => System.IO.Directory.Exists($"/proc/{pid}");

    private static bool IsOurs(int pid, string directory)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Contains(Path.Combine(directory, "tinyproxy.conf"), StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static void TryDelete(string directory)
    {
        try
        {
            System.IO.Directory.Delete(directory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }
}
