using System.Diagnostics;
using OpenLm.Mirror.IntegrationTests.Support;

namespace OpenLm.Mirror.IntegrationTests.Serve;

/// <summary>
/// A containerd of the test's own: its socket, root and state under one temporary directory, the CRI and the
/// snapshotters that need kernel support disabled, no metrics or debug listener (nothing but a unix socket). Needs root
/// and <c>/usr/bin/containerd</c> (scripts/install-deps.sh installs it). Stopped and removed on dispose.
/// </summary>
public sealed class PrivateContainerd : IAsyncDisposable
{
    private readonly Process _process;
    private readonly TempDir _dir;

    private PrivateContainerd(Process process, TempDir dir, string socket)
    {
        _process = process;
        _dir = dir;
        Socket = socket;
    }

    /// <summary>Its gRPC socket (for <c>ctr -a</c>).</summary>
    public string Socket { get; }

    /// <summary>Why a private containerd cannot run here, or null when it can.</summary>
    public static string? Unavailable()
    {
        if (!File.Exists("/usr/bin/containerd") || !File.Exists("/usr/bin/ctr"))
        {
            return "containerd/ctr are not installed (scripts/install-deps.sh installs them)";
        }

        return Environment.IsPrivilegedProcess ? null : "a private containerd needs root";
    }

    public static async Task<PrivateContainerd> StartAsync()
    {
        var dir = new TempDir();
        var socket = dir.Sub("c.sock");
        var config = dir.Sub("config.toml");
        await File.WriteAllTextAsync(config, $"""
            version = 2
            root = "{dir.Sub("root")}"
            state = "{dir.Sub("state")}"
            disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

            [grpc]
              address = "{socket}"

            [ttrpc]
              address = "{socket}.ttrpc"

            [debug]
              address = ""

            [metrics]
              address = ""
            """);
        var start = new ProcessStartInfo("/usr/bin/containerd") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("--config");
        start.ArgumentList.Add(config);
        var process = Process.Start(start)!;
        var log = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        process.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var containerd = new PrivateContainerd(process, dir, socket);
        for (var i = 0; i < 100; i++)
        {
            if (process.HasExited)
            {
                break;
            }

            if (File.Exists(socket) && (await Tools.RunAsync("ctr", "-a", socket, "version")).ExitCode == 0)
            {
                return containerd;
            }

            await Task.Delay(100);
        }

        await containerd.DisposeAsync();
        lock (log)
        {
            throw new InvalidOperationException($"private containerd did not start:\n{log}");
        }
    }

    /// <summary>Runs <c>ctr -a SOCKET -n openlm-test ARGS</c>.</summary>
    public Task<(int ExitCode, byte[] Output, string Error)> CtrAsync(params string[] args) =>
        Tools.RunAsync("ctr", ["-a", Socket, "-n", "openlm-test", .. args]);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        _dir.Dispose();
    }
}
