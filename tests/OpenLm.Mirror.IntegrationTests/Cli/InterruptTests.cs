using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestKit;
using Xunit;
using Xunit.Abstractions;

namespace OpenLm.Mirror.IntegrationTests.Cli;

/// <summary>
/// SIGINT and SIGTERM sent to the real CLI process in the middle of its long disk work: export while it writes the
/// bundle (the <c>NAME.partial-*</c> file is growing), load while it spools the bundle's blobs to its temporary
/// directory. It stops within two seconds, says what is kept and that rerunning resumes, exits 130 / 143 and leaves no
/// temporary file; the same export run again completes from the cache without downloading anything.
/// </summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class InterruptTests(SharedRegistryFixture registry, InterruptFixture fixture, ITestOutputHelper output) : IClassFixture<InterruptFixture>
{
    private static readonly TimeSpan StopBudget = TimeSpan.FromSeconds(2);

    [Theory]
    [InlineData("INT", 130, "SIGINT")]
    [InlineData("TERM", 143, "SIGTERM")]
    public async Task Export_SignalWhileTheBundleIsWritten_StopsCleanlyAndTheRerunCompletesFromTheCache(string signal, int expectedExit, string name)
    {
        // Given an export running as its own process, pulled into its cache and now writing the bundle
        var lockPath = await fixture.LockAsync(registry);
        var outDir = Directory.CreateDirectory(fixture.Temp.Sub($"out-{signal}")).FullName;
        var bundle = Path.Combine(outDir, "bundle.tar");
        var cache = fixture.Temp.Sub($"cache-{signal}");
        string[] args = ["export", "--plain-http", "--lock", lockPath, "--key", fixture.Key, "-o", bundle, "--cache", cache, "--progress", "plain"];
        using var process = Start(args);
        var seen = new System.Text.StringBuilder();
        var stderr = ReadAllAsync(process.StandardError, seen);
        _ = process.StandardOutput.ReadToEndAsync();

        // The bundle is written while the pull runs: the write phase is the one after the pull, announced on stderr.
        await WaitUntilAsync(
            process,
            stderr,
            () => Snapshot(seen).Contains("write + fsync: ", StringComparison.Ordinal)
                && Directory.EnumerateFiles(outDir, "bundle.tar.partial-*").Any(f => new FileInfo(f).Length > 1 << 20),
            "the write phase with a growing bundle.tar.partial-* file");

        // When the signal arrives mid-write
        var elapsed = await SignalAndWaitAsync(process, signal);
        output.WriteLine($"SIG{signal}: stopped {elapsed.TotalMilliseconds:0} ms after the signal");

        // Then it stopped promptly, said what is kept and how to go on, and left neither the bundle nor a partial file
        var error = await stderr;
        Assert.True(process.ExitCode == expectedExit, $"exit {process.ExitCode}\n{error}");
        Assert.True(elapsed < StopBudget, $"took {elapsed.TotalMilliseconds:0} ms to stop\n{error}");
        Assert.Contains($"interrupted ({name})", error, StringComparison.Ordinal);
        Assert.Contains("rerun the same command to resume", error, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(outDir));
        Assert.Contains("write + fsync: ", error, StringComparison.Ordinal);
        Assert.Contains($"every blob verified so far is kept in the cache {cache}; no bundle was written", error, StringComparison.Ordinal);

        // And the same command run again completes from the cache: nothing downloaded, a bundle that verifies
        var rerun = await MirrorCli.RunAsync([.. args[..^2], "--json"]);
        Assert.True(rerun.ExitCode == 0, rerun.ToString());
        using var report = JsonDocument.Parse(rerun.Output);
        Assert.Equal(0, report.RootElement.GetProperty("bytesDownloaded").GetInt64());
        Assert.True(report.RootElement.GetProperty("blobsReused").GetInt32() >= 6, rerun.Output);
        var verify = await MirrorCli.RunAsync("verify", bundle, "--key", fixture.Pub);
        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.Equal(["bundle.tar"], Directory.EnumerateFileSystemEntries(outDir).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData("INT", 130, "SIGINT")]
    [InlineData("TERM", 143, "SIGTERM")]
    public async Task Load_SignalWhileSpooling_StopsCleanlyAndRemovesTheSpoolDirectory(string signal, int expectedExit, string name)
    {
        // Given a signed bundle of one image with two large layers, and load spooling it for the real engine
        var bundle = await fixture.LoadBundleAsync();
        var spool = Directory.CreateDirectory(fixture.Temp.Sub($"spool-{signal}")).FullName;
        var dockerHost = Environment.GetEnvironmentVariable("DOCKER_HOST") is { Length: > 0 } host ? host : RegistryContainer.DefaultDockerHost;
        using var process = Start("load", bundle, "--key", fixture.Pub, "--docker-host", dockerHost, "--platform", "linux/amd64", "--temp-dir", spool, "--progress", "plain");
        var stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        await WaitUntilAsync(process, stderr, () => Directory.EnumerateFiles(spool, "*", SearchOption.AllDirectories).Any(f => new FileInfo(f).Length > 1 << 20), "spooled blob bytes");

        // When the signal arrives mid-spool
        var elapsed = await SignalAndWaitAsync(process, signal);
        output.WriteLine($"SIG{signal}: stopped {elapsed.TotalMilliseconds:0} ms after the signal");

        // Then it stopped promptly with the message, and its spool directory is gone
        var error = await stderr;
        Assert.True(process.ExitCode == expectedExit, $"exit {process.ExitCode}\n{error}");
        Assert.True(elapsed < StopBudget, $"took {elapsed.TotalMilliseconds:0} ms to stop\n{error}");
        Assert.Contains($"interrupted ({name})", error, StringComparison.Ordinal);
        Assert.Contains("rerun the same command to resume", error, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(spool));
        Assert.Contains("verify + spool: ", error, StringComparison.Ordinal);
        Assert.Contains("the spool directory was removed", error, StringComparison.Ordinal);
    }

    /// <summary>Everything <paramref name="reader"/> gives until its end, also kept in <paramref name="seen"/> as it comes.</summary>
    private static async Task<string> ReadAllAsync(StreamReader reader, System.Text.StringBuilder seen)
    {
        var buffer = new char[4096];
        int n;
        while ((n = await reader.ReadAsync(buffer)) > 0)
        {
            lock (seen)
            {
                seen.Append(buffer, 0, n);
            }
        }

        return Snapshot(seen);
    }

    private static string Snapshot(System.Text.StringBuilder seen)
    {
        lock (seen)
        {
            return seen.ToString();
        }
    }

    private static async Task WaitUntilAsync(Process process, Task<string> stderr, Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"the CLI exited {process.ExitCode} before {what} appeared:\n{await stderr}");
            }

            if (clock.Elapsed > TimeSpan.FromSeconds(90))
            {
                process.Kill();
                throw new TimeoutException($"no {what} after 90 s:\n{await stderr}");
            }

            await Task.Delay(5);
        }
    }

    private static async Task<TimeSpan> SignalAndWaitAsync(Process process, string signal)
    {
        var clock = Stopwatch.StartNew();
        Assert.Equal(0, (await Tools.RunAsync("kill", $"-{signal}", process.Id.ToString(CultureInfo.InvariantCulture))).ExitCode);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        return clock.Elapsed;
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

/// <summary>What the interrupt tests share: a key pair, three 64 MiB images at the shared registry and their lock, a load bundle.</summary>
public sealed class InterruptFixture : IDisposable
{
    /// <summary>Large enough that writing the bundle (or spooling it) takes a good part of a second on this machine.</summary>
    private const int LayerBytes = 64 << 20;

    private readonly string _namespace = "intr" + Guid.NewGuid().ToString("N")[..8];
    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _lock;
    private string? _loadBundle;

    public InterruptFixture()
    {
        var pair = KeyPairGenerator.Generate(Temp.Sub("release"), passphrase: null);
        (Key, Pub) = (pair.PrivateKeyPath, pair.PublicKeyPath);
    }

    public TempDir Temp { get; } = new();

    public string Key { get; }

    public string Pub { get; }

    public void Dispose()
    {
        _gate.Dispose();
        Temp.Dispose();
    }

    /// <summary>The lock of a three-image release seeded (once) at the shared registry.</summary>
    public async Task<string> LockAsync(SharedRegistryFixture registry)
    {
        await _gate.WaitAsync();
        try
        {
            if (_lock is not null)
            {
                return _lock;
            }

            using var http = RegistrySeeder.CreateClient(TimeSpan.FromMinutes(2));
            for (var i = 1; i <= 3; i++)
            {
                await RegistrySeeder.PushImageAsync(http, registry.BaseUri, $"{_namespace}/big{i}", "1.0", layerSize: LayerBytes, seed: 700 + i);
            }

            var manifest = Temp.Sub("platform.yaml");
            File.WriteAllText(manifest, $"""
                apiVersion: mirror.openlm.io/v1
                kind: Platform
                name: openlm-platform
                version: "1.0.0"
                source: {registry.Host}/{_namespace}
                images:
                  - name: big1
                    tag: "1.0"
                  - name: big2
                    tag: "1.0"
                  - name: big3
                    tag: "1.0"
                """);
            var lockPath = Temp.Sub("lock.json");
            var resolve = await MirrorCli.RunAsync("resolve", "--plain-http", "--manifest", manifest, "-o", lockPath);
            Assert.True(resolve.ExitCode == 0, resolve.ToString());
            return _lock = lockPath;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>A signed bundle (written once) of one linux/amd64 image with two 64 MiB layers.</summary>
    public async Task<string> LoadBundleAsync()
    {
        await _gate.WaitAsync();
        try
        {
            if (_loadBundle is not null)
            {
                return _loadBundle;
            }

            var layoutDir = Temp.Sub("load-layout");
            new SamplePlatform(31, [], [new SampleImageSpec($"{_namespace}/spool", "1.0", SampleImageKind.OciImage, [LayerBytes, LayerBytes])]).WriteLayout(layoutDir);
            var store = OciLayoutStore.Open(layoutDir, create: false);
            var entries = (await store.ReadIndexAsync()).Select(e => e.WithRefName($"public.ecr.aws/{e.RefName}")).ToList();
            await store.ReplaceIndexAsync(entries);
            using var key = SigningKey.Load(Key);
            var bundle = Temp.Sub("load.tar");
            await BundleWriter.WriteAsync(store, new BundleManifest
            {
                Platform = new BundleProduct { Name = "olm", Version = "1.0.0" },
                Source = $"public.ecr.aws/{_namespace}",
            }, key, bundle);
            return _loadBundle = bundle;
        }
        finally
        {
            _gate.Release();
        }
    }
}
