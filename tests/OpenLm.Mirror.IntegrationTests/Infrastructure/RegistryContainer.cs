using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Containers;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// A real CNCF Distribution registry (image <c>openlm-mirror/registry:2.8</c>) in a container on
/// the project's private Docker engine, listening on a free loopback port.
/// </summary>
/// <remarks>
/// The engine has no bridge network, so the container uses host networking and the registry is
/// told where to listen through <c>REGISTRY_HTTP_ADDR</c>; port bindings would not work.
/// Storage lives in the container's own filesystem: <see cref="StopAsync"/> / <see cref="StartAsync"/>
/// / <see cref="RestartAsync"/> keep the same container and therefore the pushed content;
/// <see cref="DisposeAsync"/> removes the container and its content.
/// </remarks>
public sealed class RegistryContainer : IAsyncDisposable
{
    /// <summary>The image built by <c>scripts/build-registry-image.sh</c>.</summary>
    public const string DefaultImage = "openlm-mirror/registry:2.8";

    /// <summary>The private engine started by <c>scripts/start-docker.sh</c>.</summary>
    public const string DefaultDockerHost = "unix:///run/openlm-mirror/docker.sock";

    /// <summary>The engine is Docker 20.10; newer client API versions are refused.</summary>
    public const string DefaultDockerApiVersion = "1.41";

    /// <summary>Label put on every registry container (used by start-docker.sh to clean up leftovers).</summary>
    public const string ContainerLabel = "org.openlm-mirror.test";

    private const string ConfigDirectory = "/etc/docker/registry";
    private const int MaxPortAttempts = 3;

    private readonly SemaphoreSlim _lock = new(1, 1);
    private IContainer? _container;
    private bool _running;
    private bool _disposed;

    static RegistryContainer() => ConfigureDockerEnvironment();

    /// <summary>Creates the fixture; nothing runs until <see cref="StartAsync"/>.</summary>
    public RegistryContainer(RegistryContainerOptions? options = null)
    {
        Options = options ?? new RegistryContainerOptions();
        if (!IPAddress.TryParse(Options.BindAddress, out var address)
            || address.AddressFamily != AddressFamily.InterNetwork
            || !IPAddress.IsLoopback(address))
        {
            throw new ArgumentException(
                $"BindAddress must be an IPv4 loopback address (127.0.0.0/8), got '{Options.BindAddress}'.",
                nameof(options));
        }

        BindAddress = address;
    }

    /// <summary>The options this registry was created with.</summary>
    public RegistryContainerOptions Options { get; }

    /// <summary>The loopback address the registry listens on.</summary>
    public IPAddress BindAddress { get; }

    /// <summary>The port the registry listens on (0 before the first start).</summary>
    public int Port { get; private set; }

    /// <summary>"address:port", e.g. <c>127.0.0.1:40123</c>: the registry host as it appears in image references.</summary>
    public string Host => $"{BindAddress}:{Port}";

    /// <summary><c>http://Host/</c>, or <c>https://Host/</c> when TLS is configured.</summary>
    public Uri BaseUri => new($"{(IsTls ? "https" : "http")}://{Host}/");

    /// <summary>True when the registry serves HTTPS.</summary>
    public bool IsTls => Options.Tls is not null;

    /// <summary>True when the registry requires basic auth.</summary>
    public bool RequiresAuth => Options.Users.Count > 0;

    /// <summary>True between a completed start and the next stop.</summary>
    public bool IsRunning => _running;

    /// <summary>The Docker container id (for diagnostics).</summary>
    public string ContainerId => _container?.Id ?? throw new InvalidOperationException("The registry has not been started.");

    /// <summary>
    /// Points Testcontainers at the private engine when <c>DOCKER_HOST</c> is not set:
    /// <c>DOCKER_HOST=unix:///run/openlm-mirror/docker.sock</c>, <c>DOCKER_API_VERSION=1.41</c>,
    /// <c>TESTCONTAINERS_RYUK_DISABLED=true</c> (no image can be pulled, so no Ryuk).
    /// Must run before the first Testcontainers call: Testcontainers reads the environment once.
    /// Runs automatically (module initializer and this type's static constructor); idempotent.
    /// </summary>
    public static void ConfigureDockerEnvironment()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("DOCKER_HOST")))
        {
            return;
        }

        Environment.SetEnvironmentVariable("DOCKER_HOST", DefaultDockerHost);
        SetIfUnset("DOCKER_API_VERSION", DefaultDockerApiVersion);
        SetIfUnset("TESTCONTAINERS_RYUK_DISABLED", "true");

        static void SetIfUnset(string name, string value)
        {
            if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(name)))
            {
                Environment.SetEnvironmentVariable(name, value);
            }
        }
    }

    /// <summary>Creates and starts a registry, waiting until it accepts connections.</summary>
    public static async Task<RegistryContainer> StartNewAsync(RegistryContainerOptions? options = null, CancellationToken ct = default)
    {
        var registry = new RegistryContainer(options);
        try
        {
            await registry.StartAsync(ct);
            return registry;
        }
        catch
        {
            await registry.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts the registry and waits until it is ready. The first call creates the container on a
    /// free port; after <see cref="StopAsync"/> it starts the same container (same port, same content).
    /// </summary>
    public async Task StartAsync(CancellationToken ct = default)
    {
        await _lock.WaitAsync(ct);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_running)
            {
                return;
            }

            if (_container is null)
            {
                await CreateAndStartAsync(ct);
            }
            else
            {
                await _container.StartAsync(ct);
                await WaitUntilAcceptingConnectionsAsync(ct);
            }

            _running = true;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Stops the registry process; the container and its stored content are kept.</summary>
    public async Task StopAsync(CancellationToken ct = default)
    {
        await _lock.WaitAsync(ct);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_container is not null && _running)
            {
                _running = false;
                await _container.StopAsync(ct);
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Stops and starts the registry (same port, same content), waiting until it is ready again.</summary>
    public async Task RestartAsync(CancellationToken ct = default)
    {
        await StopAsync(ct);
        await StartAsync(ct);
    }

    /// <summary>The registry's log (stdout and stderr) so far, for diagnostics.</summary>
    public async Task<string> GetLogsAsync(CancellationToken ct = default)
    {
        if (_container is null)
        {
            return string.Empty;
        }

        var (stdout, stderr) = await _container.GetLogsAsync(timestampsEnabled: false, ct: ct);
        return stdout + stderr;
    }

    /// <summary>Removes the container and everything stored in it.</summary>
    public async ValueTask DisposeAsync()
    {
        await _lock.WaitAsync();
        try
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _running = false;
            if (_container is not null)
            {
                await _container.DisposeAsync();
                _container = null;
            }
        }
        finally
        {
            _lock.Release();
        }

        _lock.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => $"registry {BaseUri}";

    private async Task CreateAndStartAsync(CancellationToken ct)
    {
        var htpasswd = RequiresAuth ? await CreateHtpasswdAsync(Options.Users, ct) : null;

        // The port is picked in-process and released before the registry binds it, so another
        // process can grab it in between: retry with a new port when that happens.
        for (var attempt = 1; ; attempt++)
        {
            Port = FindFreePort(BindAddress);
            var container = BuildContainer(htpasswd);
            try
            {
                await container.StartAsync(ct);
                _container = container;
                await WaitUntilAcceptingConnectionsAsync(ct);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                _container = null;
                var logs = await TryGetLogsAsync(container);
                await container.DisposeAsync();
                if (attempt < MaxPortAttempts && logs.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
                {
                    continue;
                }

                throw new InvalidOperationException(
                    $"The registry ({Options.Image}) on {Host} did not start: {ex.Message}" +
                    $"{System.Environment.NewLine}Is the engine up and the image built? Run scripts/start-docker.sh and scripts/build-registry-image.sh (or scripts/test.sh)." +
                    $"{System.Environment.NewLine}--- registry log ---{System.Environment.NewLine}{logs}",
                    ex);
            }
        }
    }

    private IContainer BuildContainer(byte[]? htpasswd)
    {
        var builder = new ContainerBuilder(Options.Image)
            .WithLabel(ContainerLabel, "registry")
            .WithCreateParameterModifier(p =>
            {
                // No bridge on this engine: share the host's network (loopback included).
                p.HostConfig ??= new Docker.DotNet.Models.HostConfig();
                p.HostConfig.NetworkMode = "host";
            })
            .WithEnvironment("REGISTRY_HTTP_ADDR", Host)
            .WithWaitStrategy(Wait.ForUnixContainer().UntilMessageIsLogged(
                "listening on", w => w.WithTimeout(Options.StartupTimeout)));

        if (htpasswd is not null)
        {
            builder = builder
                .WithResourceMapping(htpasswd, $"{ConfigDirectory}/htpasswd")
                .WithEnvironment("REGISTRY_AUTH", "htpasswd")
                .WithEnvironment("REGISTRY_AUTH_HTPASSWD_REALM", Options.Realm)
                .WithEnvironment("REGISTRY_AUTH_HTPASSWD_PATH", $"{ConfigDirectory}/htpasswd");
        }

        if (Options.Tls is { } tls)
        {
            builder = builder
                .WithResourceMapping(tls.CertificatePem, $"{ConfigDirectory}/tls/cert.pem")
                .WithResourceMapping(tls.PrivateKeyPem, $"{ConfigDirectory}/tls/key.pem")
                .WithEnvironment("REGISTRY_HTTP_TLS_CERTIFICATE", $"{ConfigDirectory}/tls/cert.pem")
                .WithEnvironment("REGISTRY_HTTP_TLS_KEY", $"{ConfigDirectory}/tls/key.pem");
        }

        foreach (var (name, value) in Options.Environment)
        {
            builder = builder.WithEnvironment(name, value);
        }

        return builder.Build();
    }

    // "listening on" in the log is the Testcontainers wait; after a restart that line is already
    // in the log from the previous run, so readiness is also proven by a TCP connect.
    private async Task WaitUntilAcceptingConnectionsAsync(CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                using var client = new TcpClient(AddressFamily.InterNetwork);
                using var attemptCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
                attemptCts.CancelAfter(TimeSpan.FromSeconds(2));
                await client.ConnectAsync(BindAddress, Port, attemptCts.Token);
                return;
            }
            catch (Exception ex) when (ex is SocketException || (ex is OperationCanceledException && !ct.IsCancellationRequested))
            {
                if (deadline.Elapsed > Options.StartupTimeout)
                {
                    throw new TimeoutException(
                        $"The registry on {Host} did not accept connections within {Options.StartupTimeout.TotalSeconds:0}s." +
                        $"{System.Environment.NewLine}--- registry log ---{System.Environment.NewLine}{await GetLogsAsync(CancellationToken.None)}",
                        ex);
                }

                await Task.Delay(TimeSpan.FromMilliseconds(100), ct);
            }
        }
    }

    private static int FindFreePort(IPAddress address)
    {
        var listener = new TcpListener(address, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

    private static async Task<string> TryGetLogsAsync(IContainer container)
    {
        try
        {
            var (stdout, stderr) = await container.GetLogsAsync(timestampsEnabled: false);
            return stdout + stderr;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return $"(no log: {ex.Message})";
        }
    }

    /// <summary>An htpasswd file with bcrypt entries, made by <c>htpasswd -Bbn</c> (apache2-utils).</summary>
    internal static async Task<byte[]> CreateHtpasswdAsync(IEnumerable<RegistryUser> users, CancellationToken ct)
    {
        var file = new StringBuilder();
        foreach (var user in users)
        {
            if (string.IsNullOrEmpty(user.Username) || user.Username.Contains(':', StringComparison.Ordinal))
            {
                throw new ArgumentException($"Invalid htpasswd user name '{user.Username}'.", nameof(users));
            }

            var start = new ProcessStartInfo("htpasswd")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in new[] { "-Bbn", user.Username, user.Password })
            {
                start.ArgumentList.Add(arg);
            }

            Process process;
            try
            {
                process = Process.Start(start) ?? throw new InvalidOperationException("htpasswd did not start.");
            }
            catch (System.ComponentModel.Win32Exception ex)
            {
                throw new InvalidOperationException("htpasswd not found: install apache2-utils (scripts/install-deps.sh).", ex);
            }

            using (process)
            {
                var stdout = process.StandardOutput.ReadToEndAsync(ct);
                var stderr = process.StandardError.ReadToEndAsync(ct);
                await process.WaitForExitAsync(ct);
                var line = (await stdout).Trim();
                if (process.ExitCode != 0 || !line.StartsWith(user.Username + ":", StringComparison.Ordinal))
                {
                    throw new InvalidOperationException($"htpasswd failed (exit {process.ExitCode}): {await stderr}");
                }

                file.Append(line).Append('\n');
            }
        }

        return Encoding.UTF8.GetBytes(file.ToString());
    }
}

/// <summary>Runs <see cref="RegistryContainer.ConfigureDockerEnvironment"/> when the test assembly
/// loads, so that any Testcontainers use in this assembly finds the private engine.</summary>
internal static class DockerEnvironmentInitializer
{
#pragma warning disable CA2255 // Intended: the environment must be set before Testcontainers reads it.
    [ModuleInitializer]
    internal static void Initialize() => RegistryContainer.ConfigureDockerEnvironment();
#pragma warning restore CA2255
}
