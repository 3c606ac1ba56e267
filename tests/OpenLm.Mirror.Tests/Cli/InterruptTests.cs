using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary>
/// SIGINT and SIGTERM sent to the real CLI process while it waits on a registry that never answers: it stops within a
/// second, says what is kept and that a rerun resumes, exits 130 / 143, and (with --json) still prints its one document.
/// </summary>
public sealed class InterruptTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("openlm-interrupt-tests-").FullName;
    private readonly TcpListener _silent = new(IPAddress.Loopback, 0);
    private readonly List<TcpClient> _accepted = [];

    public InterruptTests()
    {
        // A "registry" that accepts connections and never answers.
        _silent.Start();
        _ = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var client = await _silent.AcceptTcpClientAsync();
                    lock (_accepted)
                    {
                        _accepted.Add(client);
                    }
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Listener stopped at the end of the test.
            }
        });
    }

    public void Dispose()
    {
        _silent.Stop();
        lock (_accepted)
        {
            _accepted.ForEach(c => c.Dispose());
        }

        Directory.Delete(_dir, recursive: true);
    }

    [Theory]
    [InlineData("INT", 130, "SIGINT")]
    [InlineData("TERM", 143, "SIGTERM")]
    public async Task Copy_SignalWhileWaitingOnTheRegistry_StopsWithinASecondAndSaysRerunResumes(string signal, int expectedExit, string name)
    {
        var port = ((IPEndPoint)_silent.LocalEndpoint).Port;
        using var process = Start("copy", "--plain-http", $"127.0.0.1:{port}/team/app:1.0", "oci:" + Path.Combine(_dir, "out"), "--json");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await WaitForConnectionAsync();

        var clock = Stopwatch.StartNew();
        using (var kill = Process.Start("kill", $"-{signal} {process.Id}"))
        {
            await kill.WaitForExitAsync();
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await process.WaitForExitAsync(timeout.Token);
        var elapsed = clock.Elapsed;

        var error = await stderr;
        Assert.True(process.ExitCode == expectedExit, $"exit {process.ExitCode}\n{error}");
        Assert.True(elapsed < TimeSpan.FromSeconds(1), $"took {elapsed.TotalMilliseconds:0} ms to stop");
        Assert.Contains($"interrupted ({name})", error, StringComparison.Ordinal);
        Assert.Contains("rerun the same command to resume", error, StringComparison.Ordinal);
        JsonContract.Error("copy", await stdout, expectedExit, "interrupted");
    }

    private async Task WaitForConnectionAsync()
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(20))
        {
            lock (_accepted)
            {
                if (_accepted.Count > 0)
                {
                    return;
                }
            }

            await Task.Delay(50);
        }

        throw new TimeoutException("the CLI never connected to the silent registry");
    }

    private static Process Start(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "openlm-mirror.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start)!;
        process.StandardInput.Close();
        return process;
    }
}
