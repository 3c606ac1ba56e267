using System.Text.Json;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Tests.Cli;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Release;

/// <summary>
/// One plain Distribution registry (behind the ECR Public emulator: tokens, blob GETs redirected to a CDN listener on
/// 127.0.0.2), one Distribution registry serving HTTPS with the test CA, and one real tinyproxy; shared by every test.
/// </summary>
public sealed class PreflightFixture : IAsyncLifetime
{
    private RegistryProcess? _plain;

    public TempDir Temp { get; } = new();

    public TlsCertificates Tls { get; } = TlsCertificates.Create();

    public RegistryProcess TlsRegistry { get; private set; } = null!;

    public EcrPublicEmulator Ecr { get; private set; } = null!;

    public TinyproxyProcess Proxy { get; private set; } = null!;

    public Uri PlainRegistry => _plain!.BaseAddress;

    public string CaFile => Temp.Sub("ca.pem");

    /// <summary>Two images behind the ECR emulator.</summary>
    public string EcrManifest => Temp.Sub("ecr-platform.yaml");

    /// <summary>One image on the TLS registry.</summary>
    public string TlsManifest => Temp.Sub("tls-platform.yaml");

    public async Task InitializeAsync()
    {
        Tls.WriteCaCertificate(CaFile);
        var tls = RegistryProcess.StartAsync(tls: Tls);
        var plain = RegistryProcess.StartAsync();
        var proxy = TinyproxyProcess.StartAsync();
        (TlsRegistry, _plain, Proxy) = (await tls, await plain, await proxy);

        var trusting = Tls.CreateTrustingHandler();
        trusting.UseProxy = false;
        using (var https = new HttpClient(trusting))
        {
            await RegistrySeeder.PushImageAsync(https, TlsRegistry.BaseAddress, "pre/tls", "1.0", layerSize: 4096, seed: 1501);
        }

        using (var http = RegistrySeeder.CreateClient())
        {
            await RegistrySeeder.PushImageAsync(http, _plain.BaseAddress, "pre/app0", "1.0", layerSize: 4096, seed: 1502);
            await RegistrySeeder.PushImageAsync(http, _plain.BaseAddress, "pre/app1", "1.0", layerSize: 4096, seed: 1503);
        }

        Ecr = new EcrPublicEmulator(_plain.BaseAddress);
        await Ecr.StartAsync();
        File.WriteAllText(EcrManifest, Manifest(Ecr.RegistryHost + "/pre", "app0", "app1"));
        File.WriteAllText(TlsManifest, Manifest(TlsRegistry.Host + "/pre", "tls"));
    }

    public static string Manifest(string source, params string[] names) =>
        $"apiVersion: mirror.openlm.io/v1\nkind: Platform\nname: preflight\nversion: \"1.0.0\"\nsource: {source}\nimages:\n"
        + string.Concat(names.Select(n => $"  - name: {n}\n    tag: \"1.0\"\n"));

    public async Task DisposeAsync()
    {
        if (Ecr is not null)
        {
            await Ecr.DisposeAsync();
        }

        foreach (var registry in new[] { TlsRegistry, _plain })
        {
            if (registry is not null)
            {
                await registry.DisposeAsync();
            }
        }

        if (Proxy is not null)
        {
            await Proxy.DisposeAsync();
        }

        Tls.Dispose();
        Temp.Dispose();
    }
}

/// <summary>
/// <c>preflight</c> against real registries: the ECR emulator's CDN host is found through a blob redirect and listed;
/// the failure verdicts (a name that does not resolve, an untrusted certificate, refused credentials) exit 1 naming the
/// fix; a real proxy's CONNECT is checked and listed.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PreflightTests(PreflightFixture fixture) : IClassFixture<PreflightFixture>
{
    [Fact]
    public async Task Preflight_EcrEmulatorManifestAndLock_AllowListHasRegistryAndCdnHost()
    {
        // Given a release of two images behind the ECR Public emulator
        var ecr = fixture.Ecr;
        var redirectsBefore = ecr.RedirectsIssued;

        // When preflight checks its manifest
        var run = await MirrorCli.RunAsync("preflight", "--plain-http", "--manifest", fixture.EcrManifest, "--json");

        // Then everything is reachable and the allow-list is the registry and the CDN listener (another address)
        Assert.True(run.ExitCode == 0, run.ToString());
        var root = JsonContract.Validate("preflight", run.Output, 0);
        Assert.Equal(new[] { ecr.RegistryHost, ecr.CdnHost }.Order(StringComparer.Ordinal), AllowList(root));
        var cdn = Assert.Single(root.GetProperty("endpoints").EnumerateArray(), e => e.GetProperty("role").GetString() == "cdn");
        Assert.Equal((ecr.CdnHost, ecr.RegistryHost), (cdn.GetProperty("address").GetString(), cdn.GetProperty("via").GetString()));
        Assert.Contains(Checks(root), c => c.Check == "auth" && c.Status == "ok" && c.Detail.Contains("bearer token", StringComparison.Ordinal));
        Assert.Contains(Checks(root), c => c.Check == "blob" && c.Endpoint == ecr.CdnHost && c.Status == "ok");
        Assert.True(ecr.RedirectsIssued > redirectsBefore, "the blob GET should have been redirected");
        Assert.Equal(0, ecr.CdnAuthorizationViolations);

        // And a lock of the same release gives the same allow-list
        var lockPath = fixture.Temp.Sub("ecr-lock.json");
        var resolve = await MirrorCli.RunAsync("resolve", "--plain-http", "--manifest", fixture.EcrManifest, "-o", lockPath);
        Assert.True(resolve.ExitCode == 0, resolve.ToString());
        var fromLock = await MirrorCli.RunAsync("preflight", "--plain-http", "--lock", lockPath);
        Assert.True(fromLock.ExitCode == 0, fromLock.ToString());
        Assert.Contains($"\n{ecr.CdnHost}\n", fromLock.Output, StringComparison.Ordinal);
        Assert.Contains("reachable: every endpoint", fromLock.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preflight_EcrWrongCredentials_Exit1NamingUserAndSourceNotTheSecret()
    {
        // Given an emulator whose token endpoint requires Basic credentials
        await using var ecr = new EcrPublicEmulator(fixture.PlainRegistry, new EcrPublicEmulatorOptions { BasicUsername = "relengbot", BasicPassword = "R1ght-Pass" });
        await ecr.StartAsync();
        var manifest = fixture.Temp.Sub($"auth-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(manifest, PreflightFixture.Manifest(ecr.RegistryHost + "/pre", "app0"));

        // When preflight presents the wrong password
        var run = await MirrorCli.RunWithInputAsync("Wr0ng-S3cret\n", "preflight", "--plain-http", "--retries", "0", "--manifest", manifest, "--username", "relengbot", "--password-stdin", "--json");

        // Then exit 1: the auth verdict names the user and where the credentials came from, the hint the credential flags
        Assert.True(run.ExitCode == 1, run.ToString());
        var root = JsonContract.Validate("preflight", run.Output, 1);
        var auth = Assert.Single(Checks(root), c => c.Status == "failed");
        Assert.Equal("auth", auth.Check);
        Assert.Contains("user 'relengbot'", auth.Detail, StringComparison.Ordinal);
        Assert.Contains("--username", auth.Detail, StringComparison.Ordinal);
        Assert.Contains("--password-stdin", auth.Hint, StringComparison.Ordinal);
        Assert.DoesNotContain("Wr0ng-S3cret", run.Output + run.Error, StringComparison.Ordinal);

        // And with the right password it passes
        var right = await MirrorCli.RunWithInputAsync("R1ght-Pass\n", "preflight", "--plain-http", "--manifest", manifest, "--username", "relengbot", "--password-stdin");
        Assert.True(right.ExitCode == 0, right.ToString());
    }

    [Fact]
    public async Task Preflight_TlsRegistryWithoutCaFile_Exit1NamingIssuerAndCaFile()
    {
        // When preflight reaches the TLS registry without trusting its CA
        var run = await MirrorCli.RunAsync("preflight", "--manifest", fixture.TlsManifest, "--json");

        // Then exit 1: the TLS verdict names the certificate's issuer and advises --ca-file; nothing after it was tried
        Assert.True(run.ExitCode == 1, run.ToString());
        var root = JsonContract.Validate("preflight", run.Output, 1);
        var tls = Assert.Single(Checks(root), c => c.Status == "failed");
        Assert.Equal(("tls", fixture.TlsRegistry.Host), (tls.Check, tls.Endpoint));
        Assert.Contains("OpenLm.Mirror Test CA", tls.Detail, StringComparison.Ordinal);
        Assert.Contains("not trusted", tls.Detail, StringComparison.Ordinal);
        Assert.Contains("--ca-file", tls.Hint, StringComparison.Ordinal);
        Assert.Contains("--ca-file", root.GetProperty("error").GetProperty("hint").GetString(), StringComparison.Ordinal);
        Assert.Contains(Checks(root), c => c.Check == "manifest" && c.Status == "skipped");

        // And with --ca-file it passes, naming who issued the certificate and that the CA file trusted it
        var trusted = await MirrorCli.RunAsync("preflight", "--manifest", fixture.TlsManifest, "--ca-file", fixture.CaFile, "--json");
        Assert.True(trusted.ExitCode == 0, trusted.ToString());
        var ok = Assert.Single(Checks(JsonContract.Validate("preflight", trusted.Output, 0)), c => c.Check == "tls");
        Assert.Contains("issued by 'CN=OpenLm.Mirror Test CA", ok.Detail, StringComparison.Ordinal);
        Assert.Contains("trusted by the CA file", ok.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preflight_ManifestRegistryDoesNotResolve_Exit1NamingTheHost()
    {
        // Given a manifest whose source registry name cannot resolve (RFC 6761 .invalid: no lookup leaves the machine)
        var manifest = fixture.Temp.Sub("invalid-platform.yaml");
        File.WriteAllText(manifest, PreflightFixture.Manifest("registry.openlm.invalid/r3q3q2f4", "olm-server"));

        // When preflight checks it
        var run = await MirrorCli.RunAsync("preflight", "--manifest", manifest);

        // Then exit 1 naming the host, with the host still on the allow-list
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("host name 'registry.openlm.invalid' does not resolve", run.Output, StringComparison.Ordinal);
        Assert.Contains("\nregistry.openlm.invalid:443\n", run.Output, StringComparison.Ordinal);
        Assert.Contains("error: dns registry.openlm.invalid:443: host name", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preflight_ThroughTinyproxy_ConnectCheckedAndProxyListed()
    {
        // When the TLS registry is checked through a real proxy
        var run = await MirrorCli.RunAsync("preflight", "--manifest", fixture.TlsManifest, "--ca-file", fixture.CaFile, "--proxy", fixture.Proxy.Url, "--json");

        // Then CONNECT through it was checked, the name left to the proxy, and the proxy is on the allow-list
        Assert.True(run.ExitCode == 0, run.ToString());
        var root = JsonContract.Validate("preflight", run.Output, 0);
        var proxyAddress = $"127.0.0.1:{fixture.Proxy.Port}";
        Assert.Equal(new[] { fixture.TlsRegistry.Host, proxyAddress }.Order(StringComparer.Ordinal), AllowList(root));
        var checks = Checks(root);
        Assert.Contains(checks, c => c.Check == "proxy" && c.Endpoint == fixture.TlsRegistry.Host && c.Status == "ok" && c.Detail.StartsWith("CONNECT ", StringComparison.Ordinal));
        Assert.Contains(checks, c => c.Check == "dns" && c.Endpoint == fixture.TlsRegistry.Host && c.Status == "skipped");
        Assert.Contains(checks, c => c.Check == "tcp" && c.Endpoint == proxyAddress && c.Status == "ok");
        Assert.Contains(fixture.Proxy.RequestLines(), l => l.Contains("CONNECT", StringComparison.Ordinal) && l.Contains(fixture.TlsRegistry.Host, StringComparison.Ordinal));
    }

    private static List<string?> AllowList(JsonElement root) => root.GetProperty("allowList").EnumerateArray().Select(e => e.GetString()).ToList();

    private static List<(string Endpoint, string Check, string Status, string Detail, string Hint)> Checks(JsonElement root) =>
        root.GetProperty("checks").EnumerateArray().Select(c => (
            c.GetProperty("endpoint").GetString()!,
            c.GetProperty("check").GetString()!,
            c.GetProperty("status").GetString()!,
            c.GetProperty("detail").GetString()!,
            c.TryGetProperty("hint", out var hint) ? hint.GetString()! : string.Empty)).ToList();
}
