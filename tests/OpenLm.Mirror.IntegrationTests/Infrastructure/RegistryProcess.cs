using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// A CNCF Distribution registry (<c>docker-registry</c>, 2.8.x) run directly as a child process on
/// <c>127.0.0.1:&lt;OS-assigned port&gt;</c> with filesystem storage in a fresh temp directory. Plain HTTP, no auth,
/// deletes enabled. The port is taken from the registry's own "listening on" log line, so there is no port race.
/// </summary>
public sealed partial class RegistryProcess : IAsyncDisposable
{
    /// <summary>Environment variable that may point at the registry binary.</summary>
    public const string BinaryEnvironmentVariable = "OPENLM_DOCKER_REGISTRY_BIN";

    private const int MaxLogLines = 2000;

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _log;
    private int _disposed;

    private RegistryProcess(Process process, ConcurrentQueue<string> log, string workDirectory, Uri baseAddress)
    {
        _process = process;
        _log = log;
        WorkDirectory = workDirectory;
        BaseAddress = baseAddress;
    }

    /// <summary>Base address, e.g. <c>http://127.0.0.1:38211/</c>.</summary>
    public Uri BaseAddress { get; }

    /// <summary>Host and port, e.g. <c>127.0.0.1:38211</c>.</summary>
    public string Host => BaseAddress.Authority;

    /// <summary>Temp directory holding <c>config.yml</c> and the <c>data</c> storage root; deleted on dispose.</summary>
    public string WorkDirectory { get; }

    /// <summary>Filesystem storage root of the registry.</summary>
    public string StorageDirectory => Path.Combine(WorkDirectory, "data");

    /// <summary>Process id of the registry (for diagnostics).</summary>
    public int ProcessId => _process.Id;

    /// <summary>The last stdout/stderr lines of the registry (for assertion messages).</summary>
    public string RecentLog => string.Join(Environment.NewLine, _log);

    /// <summary>Finds the registry binary: <see cref="BinaryEnvironmentVariable"/>, /usr/bin/docker-registry, or PATH.</summary>
    public static string? FindBinary()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable(BinaryEnvironmentVariable);
        if (!string.IsNullOrEmpty(fromEnvironment) && File.Exists(fromEnvironment))
        {
            return fromEnvironment;
        }

        if (File.Exists("/usr/bin/docker-registry"))
        {
            return "/usr/bin/docker-registry";
        }

        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator))
        {
            foreach (var name in new[] { "docker-registry", "registry" })
            {
                var candidate = Path.Combine(directory, name);
                if (directory.Length > 0 && File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    /// <param name="tls">When given, the registry serves HTTPS with this server certificate (clients must trust its CA).</param>
    public static async Task<RegistryProcess> StartAsync(
        string? binaryPath = null, TimeSpan? startupTimeout = null, CancellationToken cancellationToken = default, TlsCertificates? tls = null)
    {
        binaryPath ??= FindBinary()
            ?? throw new InvalidOperationException(
                $"CNCF Distribution registry binary not found (install docker-registry or set {BinaryEnvironmentVariable}).");

        var workDirectory = Path.Combine(Path.GetTempPath(), "openlm-registry-" + Guid.NewGuid().ToString("N"));
        var dataDirectory = Path.Combine(workDirectory, "data");
        Directory.CreateDirectory(dataDirectory);
        var configPath = Path.Combine(workDirectory, "config.yml");
        string? tlsConfig = null;
        if (tls is not null)
        {
            var certificatePath = Path.Combine(workDirectory, "server.crt");
            var keyPath = Path.Combine(workDirectory, "server.key");
            await File.WriteAllTextAsync(certificatePath, tls.ServerCertificatePem, cancellationToken).ConfigureAwait(false);
            await File.WriteAllTextAsync(keyPath, tls.ServerPrivateKeyPem, cancellationToken).ConfigureAwait(false);
            tlsConfig = $"  tls:\n    certificate: '{certificatePath}'\n    key: '{keyPath}'\n";
        }

        await File.WriteAllTextAsync(configPath, BuildConfig(dataDirectory) + tlsConfig, cancellationToken).ConfigureAwait(false);

        var startInfo = new ProcessStartInfo(binaryPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
            WorkingDirectory = workDirectory,
        };
        startInfo.ArgumentList.Add("serve");
        startInfo.ArgumentList.Add(configPath);
        foreach (var key in startInfo.Environment.Keys.Where(k => k.StartsWith("REGISTRY_", StringComparison.Ordinal)).ToList())
        {
            startInfo.Environment.Remove(key); // the registry lets REGISTRY_* variables override the config file
        }

        var log = new ConcurrentQueue<string>();
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(string? line)
        {
            if (line is null)
            {
                return;
            }

            log.Enqueue(line);
            while (log.Count > MaxLogLines && log.TryDequeue(out _))
            {
            }

            var match = ListeningLine().Match(line);
            if (match.Success)
            {
                listening.TrySetResult(match.Groups["address"].Value);
            }
        }

        var process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.Exited += (_, _) => listening.TrySetException(
            new InvalidOperationException("docker-registry exited during startup:" + Environment.NewLine + string.Join(Environment.NewLine, log)));

        if (!process.Start())
        {
            process.Dispose();
            TryDeleteDirectory(workDirectory);
            throw new InvalidOperationException($"Could not start {binaryPath}.");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        try
        {
            var address = await listening.Task.WaitAsync(startupTimeout ?? TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
            var registry = new RegistryProcess(process, log, workDirectory, new Uri((tls is null ? "http://" : "https://") + address + "/"));
            await registry.WaitUntilReadyAsync(tls, cancellationToken).ConfigureAwait(false);
            return registry;
        }
        catch (Exception ex)
        {
            await StopAsync(process).ConfigureAwait(false);
            TryDeleteDirectory(workDirectory);
            if (ex is TimeoutException)
            {
                throw new TimeoutException("docker-registry did not report its address:" + Environment.NewLine + string.Join(Environment.NewLine, log), ex);
            }

            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await StopAsync(_process).ConfigureAwait(false);
        TryDeleteDirectory(WorkDirectory);
    }

    private async Task WaitUntilReadyAsync(TlsCertificates? tls, CancellationToken cancellationToken)
    {
        HttpMessageHandler handler = new SocketsHttpHandler { UseProxy = false };
        if (tls is not null)
        {
            var trusting = tls.CreateTrustingHandler();
            trusting.UseProxy = false;
            handler.Dispose();
            handler = trusting;
        }

        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            try
            {
                using var response = await client.GetAsync(new Uri(BaseAddress, "v2/"), cancellationToken).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
            }

            if (DateTime.UtcNow >= deadline)
            {
                throw new TimeoutException("docker-registry did not answer /v2/:" + Environment.NewLine + RecentLog);
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    private static string BuildConfig(string dataDirectory)
    {
        var secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var sb = new StringBuilder();
        sb.AppendLine("version: 0.1");
        sb.AppendLine("log:");
        sb.AppendLine("  level: info");
        sb.AppendLine("  formatter: text");
        sb.AppendLine("  accesslog:");
        sb.AppendLine("    disabled: true");
        sb.AppendLine("storage:");
        sb.AppendLine("  filesystem:");
        sb.AppendLine("    rootdirectory: '" + dataDirectory.Replace("'", "''", StringComparison.Ordinal) + "'");
        sb.AppendLine("  delete:");
        sb.AppendLine("    enabled: true");
        sb.AppendLine("  maintenance:");
        sb.AppendLine("    uploadpurging:");
        sb.AppendLine("      enabled: false");
        sb.AppendLine("http:");
        sb.AppendLine("  addr: 127.0.0.1:0");
        sb.AppendLine("  secret: " + secret);
        return sb.ToString();
    }

    private static async Task StopAsync(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException or System.ComponentModel.Win32Exception)
        {
            // Already gone, or refused to die in time; nothing more a test helper can do.
        }
        finally
        {
            process.Dispose();
        }
    }

    private static void TryDeleteDirectory(string directory)
    {
        try
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: a leftover temp directory is harmless.
        }
    }

    [GeneratedRegex(@"listening on (?<address>127\.\d+\.\d+\.\d+:\d+)", RegexOptions.CultureInvariant)]
    private static partial Regex ListeningLine();
}
