using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Signing;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Proxy;

/// <summary>
/// A real Distribution registry serving HTTPS (test CA), a plain Distribution behind the ECR Public emulator, and two real
/// tinyproxy processes on loopback: one open, one requiring BasicAuth.
/// </summary>
public sealed class TinyproxyFixture : IAsyncLifetime
{
    public const string ProxyUser = "relengbot";
    public const string ProxyPassword = "Pr0xy-S3cret-4f9a";

    private RegistryProcess? _tlsRegistry;
    private RegistryProcess? _plainRegistry;

    public TempDir Temp { get; } = new();

    public TlsCertificates Tls { get; } = TlsCertificates.Create();

    public RegistryProcess TlsRegistry => _tlsRegistry!;

    public EcrPublicEmulator Ecr { get; private set; } = null!;

    public TinyproxyProcess Open { get; private set; } = null!;

    public TinyproxyProcess Authenticated { get; private set; } = null!;

    public string CaFile => Temp.Sub("ca.pem");

    /// <summary>Two images on the TLS registry.</summary>
    public string TlsManifest => Temp.Sub("tls-platform.yaml");

    /// <summary>Two images behind the ECR Public emulator (plain HTTP, tokens, CDN redirects to 127.0.0.2).</summary>
    public string EcrManifest => Temp.Sub("ecr-platform.yaml");

    public string PrivateKey { get; private set; } = null!;

    public string PublicKey { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Tls.WriteCaCertificate(CaFile);
        _tlsRegistry = await RegistryProcess.StartAsync(tls: Tls);
        var trusting = Tls.CreateTrustingHandler();
        trusting.UseProxy = false;
        using (var https = new HttpClient(trusting))
        {
            await RegistrySeeder.PushImageAsync(https, _tlsRegistry.BaseAddress, "proxied/app0", "1.0", layerSize: 8192, seed: 801);
            await RegistrySeeder.PushImageAsync(https, _tlsRegistry.BaseAddress, "proxied/app1", "1.0", layerSize: 8192, seed: 802);
        }

        _plainRegistry = await RegistryProcess.StartAsync();
        using (var http = RegistrySeeder.CreateClient())
        {
            await RegistrySeeder.PushImageAsync(http, _plainRegistry.BaseAddress, "ecr/app0", "2.0", layerSize: 8192, seed: 811);
            await RegistrySeeder.PushImageAsync(http, _plainRegistry.BaseAddress, "ecr/app1", "2.0", layerSize: 8192, seed: 812);
        }

        Ecr = new EcrPublicEmulator(_plainRegistry.BaseAddress);
        await Ecr.StartAsync();
        Open = await TinyproxyProcess.StartAsync();
        Authenticated = await TinyproxyProcess.StartAsync(ProxyUser, ProxyPassword);

        File.WriteAllText(TlsManifest, Platform("tls-platform", $"{_tlsRegistry.Host}/proxied", "1.0"));
        File.WriteAllText(EcrManifest, Platform("ecr-platform", $"{Ecr.RegistryHost}/ecr", "2.0"));
        var pair = KeyPairGenerator.Generate(Temp.Sub("release"), passphrase: null);
        (PrivateKey, PublicKey) = (pair.PrivateKeyPath, pair.PublicKeyPath);
    }

    public async Task DisposeAsync()
    {
        foreach (var proxy in new[] { Open, Authenticated })
        {
            if (proxy is not null)
            {
                await proxy.DisposeAsync();
            }
        }

        if (Ecr is not null)
        {
            await Ecr.DisposeAsync();
        }

        foreach (var registry in new[] { _tlsRegistry, _plainRegistry })
        {
            if (registry is not null)
            {
                await registry.DisposeAsync();
            }
        }

        Tls.Dispose();
        Temp.Dispose();
    }

    private static string Platform(string name, string source, string tag) =>
        $"apiVersion: mirror.openlm.io/v1\nkind: Platform\nname: {name}\nversion: \"1.0.0\"\nsource: {source}\nimages:\n  - name: app0\n    tag: \"{tag}\"\n  - name: app1\n    tag: \"{tag}\"\n";
}

/// <summary>
/// resolve and export through a real HTTP proxy (Debian tinyproxy): with <c>--proxy</c> and with <c>HTTPS_PROXY</c>,
/// TLS through <c>CONNECT</c> (proven by tinyproxy's own log), proxy BasicAuth whose secret never shows, and a wrong
/// proxy credential reported naming the proxy (exit 1).
/// </summary>
[Trait("Category", "Integration")]
public sealed class TinyproxyTests(TinyproxyFixture fixture) : IClassFixture<TinyproxyFixture>
{
    private static readonly Dictionary<string, string> NoProxyEnvironment = new()
    {
        ["HTTPS_PROXY"] = string.Empty, ["https_proxy"] = string.Empty, ["HTTP_PROXY"] = string.Empty,
        ["http_proxy"] = string.Empty, ["NO_PROXY"] = string.Empty, ["no_proxy"] = string.Empty,
    };

    [Fact]
    public async Task ResolveExport_ProxyFlag_TlsRegistry_TunnelsThroughConnectAndBundleVerifies()
    {
        var proxy = fixture.Open;
        var before = proxy.RequestLines().Count;
        var lockPath = fixture.Temp.Sub("flag-lock.json");
        var bundle = fixture.Temp.Sub("flag.tar");

        // When the TLS release is resolved and exported with --proxy
        var resolve = await MirrorCli.RunAsync("resolve", "--ca-file", fixture.CaFile, "--proxy", proxy.Url, "--manifest", fixture.TlsManifest, "-o", lockPath);
        Assert.True(resolve.ExitCode == 0, resolve.ToString());
        var afterResolve = proxy.RequestLines().Count;
        var export = await MirrorCli.RunAsync("export", "--ca-file", fixture.CaFile, "--proxy", proxy.Url, "--lock", lockPath, "--key", fixture.PrivateKey, "-o", bundle, "--cache", fixture.Temp.Sub("flag-cache"));
        Assert.True(export.ExitCode == 0, export.ToString());

        // Then both went through the proxy, as CONNECT tunnels to the registry and nothing else
        var lines = proxy.RequestLines();
        var resolveLines = lines.Skip(before).Take(afterResolve - before).ToList();
        var exportLines = lines.Skip(afterResolve).ToList();
        var tunnel = $"CONNECT {fixture.TlsRegistry.Host}";
        Assert.True(resolveLines.Count > 0 && resolveLines.All(l => l == tunnel), proxy.ReadLog());
        Assert.True(exportLines.Count > 0 && exportLines.All(l => l == tunnel), proxy.ReadLog());
        var verify = await MirrorCli.RunAsync("verify", bundle, "--key", fixture.PublicKey);
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }

    [Fact]
    public async Task Resolve_HttpsProxyEnvironment_TlsRegistry_TunnelsThroughConnect()
    {
        var proxy = fixture.Open;
        var before = proxy.RequestLines().Count;
        var environment = new Dictionary<string, string>(NoProxyEnvironment) { ["HTTPS_PROXY"] = proxy.Url };

        // When resolve runs with only HTTPS_PROXY set (a separate process: its own environment)
        var run = await MirrorCli.RunProcessAsync(environment, "resolve", "--ca-file", fixture.CaFile, "--manifest", fixture.TlsManifest, "-o", fixture.Temp.Sub("env-lock.json"));

        // Then it succeeded and every request was tunnelled through the proxy
        Assert.True(run.ExitCode == 0, run.ToString());
        var lines = proxy.RequestLines().Skip(before).ToList();
        Assert.True(lines.Count > 0 && lines.All(l => l == $"CONNECT {fixture.TlsRegistry.Host}"), proxy.ReadLog());
    }

    [Fact]
    public async Task Resolve_HttpProxyEnvironmentOnly_TlsRegistryNotProxied()
    {
        var proxy = fixture.Open;
        var before = proxy.RequestLines().Count;
        var environment = new Dictionary<string, string>(NoProxyEnvironment) { ["http_proxy"] = proxy.Url };

        // When only http_proxy is set, an https registry is reached directly (curl's rule)
        var run = await MirrorCli.RunProcessAsync(environment, "resolve", "--ca-file", fixture.CaFile, "--manifest", fixture.TlsManifest, "-o", fixture.Temp.Sub("httponly-lock.json"));

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(before, proxy.RequestLines().Count);
    }

    [Fact]
    public async Task ResolveExport_AuthenticatedProxy_EcrEmulatorAndTls_SecretNeverPrinted()
    {
        var proxy = fixture.Authenticated;
        var withCredentials = $"http://{TinyproxyFixture.ProxyUser}:{TinyproxyFixture.ProxyPassword}@127.0.0.1:{proxy.Port}";
        var before = proxy.RequestLines().Count;
        var lockPath = fixture.Temp.Sub("ecr-lock.json");

        // When the ECR release (plain HTTP, CDN redirects) is resolved and exported through the proxy with credentials
        var resolve = await MirrorCli.RunAsync("resolve", "--plain-http", "--proxy", withCredentials, "--manifest", fixture.EcrManifest, "-o", lockPath, "--json");
        var export = await MirrorCli.RunAsync("export", "--plain-http", "--proxy", withCredentials, "--lock", lockPath, "--key", fixture.PrivateKey, "-o", fixture.Temp.Sub("ecr.tar"), "--cache", fixture.Temp.Sub("ecr-cache"), "--json");
        // and the TLS release with the proxy credentials in HTTPS_PROXY
        var environment = new Dictionary<string, string>(NoProxyEnvironment) { ["HTTPS_PROXY"] = withCredentials };
        var tls = await MirrorCli.RunProcessAsync(environment, "resolve", "--ca-file", fixture.CaFile, "--manifest", fixture.TlsManifest, "-o", fixture.Temp.Sub("auth-tls-lock.json"));

        // Then all succeeded through the proxy: absolute-form GETs to the registry and its CDN, CONNECT to the TLS registry
        Assert.True(resolve.ExitCode == 0, resolve.ToString());
        Assert.True(export.ExitCode == 0, export.ToString());
        Assert.True(tls.ExitCode == 0, tls.ToString());
        var lines = proxy.RequestLines().Skip(before).ToList();
        Assert.Contains(lines, l => l.StartsWith($"GET http://{fixture.Ecr.RegistryHost}/v2/", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith($"GET http://{fixture.Ecr.CdnHost}/", StringComparison.Ordinal));
        Assert.Contains($"CONNECT {fixture.TlsRegistry.Host}", lines);
        // and the password appears nowhere in what the runs printed
        foreach (var run in new[] { resolve, export, tls })
        {
            Assert.DoesNotContain(TinyproxyFixture.ProxyPassword, run.Output + run.Error, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("flag-wrong-password")]
    [InlineData("env-no-credentials")]
    public async Task Resolve_WrongProxyCredential_Exit1NamingTheProxyNeverTheSecret(string variant)
    {
        var proxy = fixture.Authenticated;
        const string Wrong = "Wr0ng-Pa55-77c1";
        var lockPath = fixture.Temp.Sub(variant + "-lock.json");

        // When the proxy refuses the credential (a wrong password with --proxy; none at all through HTTPS_PROXY)
        var run = variant == "flag-wrong-password"
            ? await MirrorCli.RunAsync("resolve", "--ca-file", fixture.CaFile, "--proxy", $"http://{TinyproxyFixture.ProxyUser}:{Wrong}@127.0.0.1:{proxy.Port}", "--manifest", fixture.TlsManifest, "-o", lockPath, "--retries", "1")
            : await MirrorCli.RunProcessAsync(new Dictionary<string, string>(NoProxyEnvironment) { ["HTTPS_PROXY"] = proxy.Url }, "resolve", "--ca-file", fixture.CaFile, "--manifest", fixture.TlsManifest, "-o", lockPath, "--retries", "1");

        // Then: exit 1, the message names the proxy and that it wants credentials, never the secret; no lock
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.True(run.Error.Contains($"HTTP proxy 127.0.0.1:{proxy.Port} refused the tunnel (CONNECT) to {fixture.TlsRegistry.Host}", StringComparison.Ordinal), run.ToString());
        Assert.True(run.Error.Contains("requires credentials", StringComparison.Ordinal), run.ToString());
        Assert.True(run.Error.Contains($"--proxy http://USER:PASSWORD@127.0.0.1:{proxy.Port}", StringComparison.Ordinal), run.ToString());
        Assert.DoesNotContain(Wrong, run.Output + run.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(lockPath));
    }
}
