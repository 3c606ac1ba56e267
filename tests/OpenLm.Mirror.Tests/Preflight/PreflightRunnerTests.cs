using System.Net;
using System.Net.Sockets;
using System.Text;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Preflight;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Registry.Auth;
using OpenLm.Mirror.Tests.Bundle;
using OpenLm.Mirror.Tests.Core;
using Xunit;

namespace OpenLm.Mirror.Tests.Preflight;

/// <summary>
/// <see cref="PreflightRunner"/> against loopback fakes: a bearer-token registry whose blob GETs are redirected to a
/// "CDN" on 127.0.0.2 (as ECR Public sends them to CloudFront), refused credentials, and a port nothing listens on.
/// </summary>
public sealed class PreflightRunnerTests : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private readonly byte[] _config = Encoding.UTF8.GetBytes("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
    private readonly byte[] _layer = new byte[2048];
    private FakeRegistry _registry = null!;
    private LoopbackServer _cdn = null!;

    public Task InitializeAsync()
    {
        Random.Shared.NextBytes(_layer);
        _registry = FakeRegistry.Start(requireToken: true, tokenUser: "ci:right-password");
        _cdn = LoopbackServer.Start(ServeFromCdnAsync, "127.0.0.2");
        Seed(_registry);
        _registry.Intercept = RedirectBlobsAsync;
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _registry.DisposeAsync();
        await _cdn.DisposeAsync();
        _temp.Dispose();
    }

    [Fact]
    public async Task RunAsync_BlobRedirectedToCdn_CdnIsProbedFollowedAndInTheAllowList()
    {
        // Given a release of one image on the registry and the right credentials
        using var connector = Connector(new Credential("ci", "right-password").From("the test's config.json"));

        // When preflight runs over the manifest
        var report = await PreflightRunner.RunAsync(PreflightRequest.FromManifest(Manifest()), connector);

        // Then every check passed, the allow-list is the registry and the CDN host:port, and the CDN saw no credentials
        Assert.True(report.Reachable, string.Join("\n", report.Checks));
        Assert.Equal(new[] { _registry.Authority, _cdn.Authority }.Order(StringComparer.Ordinal), report.AllowList);
        var cdn = Assert.Single(report.Endpoints, e => e.Role == PreflightRole.Cdn);
        Assert.Equal((_cdn.Authority, _registry.Authority), (cdn.Address, cdn.Via));
        var redirect = Assert.Single(report.Checks, c => c.Kind == PreflightCheckKind.Blob && c.Endpoint == _registry.Authority);
        Assert.Contains($"redirected (307) to {_cdn.Authority}", redirect.Detail, StringComparison.Ordinal);
        var served = Assert.Single(report.Checks, c => c.Kind == PreflightCheckKind.Blob && c.Endpoint == _cdn.Authority);
        Assert.Contains("digest verified", served.Detail, StringComparison.Ordinal);
        Assert.Contains(report.Checks, c => c.Kind == PreflightCheckKind.Auth && c.Status == PreflightStatus.Ok && c.Detail.Contains("bearer token", StringComparison.Ordinal) && c.Detail.Contains("user 'ci'", StringComparison.Ordinal));
        Assert.Contains(report.Checks, c => c.Kind == PreflightCheckKind.Dns && c.Endpoint == _cdn.Authority && c.Status == PreflightStatus.Ok);
        Assert.All(_cdn.Requests, r => Assert.Null(r.Authorization));
        Assert.NotEmpty(_cdn.Requests);
    }

    [Fact]
    public async Task RunAsync_WrongPassword_AuthFailsNamingUserAndSourceNeverTheSecret()
    {
        // Given credentials the token endpoint refuses
        using var connector = Connector(new Credential("ci", "wrong-secret").From("the test's config.json"));

        // When preflight runs
        var report = await PreflightRunner.RunAsync(PreflightRequest.FromManifest(Manifest()), connector);

        // Then the auth check failed with the credentials remedy, naming who and where from; manifest and blob were not tried
        Assert.False(report.Reachable);
        var auth = Assert.Single(report.Failures);
        Assert.Equal((PreflightCheckKind.Auth, Remedy.Credentials), (auth.Kind, auth.Remedy));
        Assert.Contains("user 'ci'", auth.Detail, StringComparison.Ordinal);
        Assert.Contains("the test's config.json", auth.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-secret", string.Join("\n", report.Checks.Select(c => c.Detail)), StringComparison.Ordinal);
        Assert.Contains(report.Checks, c => c.Kind == PreflightCheckKind.Manifest && c.Status == PreflightStatus.Skipped);
        Assert.DoesNotContain(report.Endpoints, e => e.Role == PreflightRole.Cdn);
    }

    [Fact]
    public async Task RunAsync_NothingListens_TcpFailsAndLaterChecksAreSkipped()
    {
        // Given a loopback port that was free a moment ago
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        using var connector = Connector(null);

        // When the air-gapped side is checked there
        var report = await PreflightRunner.RunAsync(PreflightRequest.ForTarget($"127.0.0.1:{port}/openlm"), connector);

        // Then DNS passed (an IP address), TCP failed as refused, and auth was skipped
        Assert.False(report.Reachable);
        var tcp = Assert.Single(report.Failures);
        Assert.Equal(PreflightCheckKind.Tcp, tcp.Kind);
        Assert.Contains("connection refused", tcp.Detail, StringComparison.Ordinal);
        Assert.Contains(report.Checks, c => c.Kind == PreflightCheckKind.Auth && c.Status == PreflightStatus.Skipped);
        Assert.Equal([$"127.0.0.1:{port}"], report.AllowList);
    }

    [Fact]
    public async Task RunAsync_ProxyRefusesConnect_ProxyVerdictAdvisesProxyCredentialsAndDnsIsLeftToTheProxy()
    {
        // Given a "proxy" on loopback that answers every CONNECT with 407
        using var stop = new CancellationTokenSource();
        var proxy = new TcpListener(IPAddress.Loopback, 0);
        proxy.Start();
        var port = ((IPEndPoint)proxy.LocalEndpoint).Port;
        var seen = new List<string>();
        var serving = Task.Run(async () =>
        {
            // The TCP check connects and hangs up; the CONNECT comes on a later connection.
            while (!stop.IsCancellationRequested)
            {
                using var client = await proxy.AcceptTcpClientAsync(stop.Token);
                var stream = client.GetStream();
                var buffer = new byte[4096];
                var read = await stream.ReadAsync(buffer, stop.Token);
                if (read == 0)
                {
                    continue;
                }

                lock (seen)
                {
                    seen.Add(Encoding.ASCII.GetString(buffer, 0, read));
                }

                await stream.WriteAsync(Encoding.ASCII.GetBytes("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n"), stop.Token);
            }
        });
        using var connector = new RegistryConnector(new RegistryOptions { Retries = 0, Proxy = $"http://127.0.0.1:{port}" });

        // When an https registry is checked through it (a name only the proxy would resolve)
        var report = await PreflightRunner.RunAsync(PreflightRequest.ForTarget("registry.corp.invalid"), connector);
        await stop.CancelAsync();
        proxy.Stop();
        try
        {
            await serving;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // The fake proxy stops accepting when the test is done.
        }

        // Then the proxy itself was reachable, CONNECT was refused with the proxy-credentials remedy, and both are listed
        Assert.False(report.Reachable);
        var refused = Assert.Single(report.Failures);
        Assert.Equal((PreflightCheckKind.Proxy, Remedy.ProxyCredentials, "registry.corp.invalid:443"), (refused.Kind, refused.Remedy, refused.Endpoint));
        Assert.Contains("407", refused.Detail, StringComparison.Ordinal);
        Assert.Contains(report.Checks, c => c.Kind == PreflightCheckKind.Dns && c.Endpoint == "registry.corp.invalid:443" && c.Status == PreflightStatus.Skipped);
        Assert.Contains(report.Checks, c => c.Kind == PreflightCheckKind.Tcp && c.Endpoint == $"127.0.0.1:{port}" && c.Status == PreflightStatus.Ok);
        Assert.Equal([$"127.0.0.1:{port}", "registry.corp.invalid:443"], report.AllowList);
        Assert.StartsWith("CONNECT registry.corp.invalid:443 HTTP/1.1", Assert.Single(seen), StringComparison.Ordinal);
    }

    private RegistryConnector Connector(Credential? credential) => new(new RegistryOptions
    {
        PlainHttp = true,
        Retries = 0,
        Credentials = credential is null ? AnonymousCredentialProvider.Instance : new StaticCredentialProvider(credential),
    });

    private string Manifest()
    {
        var path = _temp.File("platform.yaml");
        File.WriteAllText(path, $"apiVersion: mirror.openlm.io/v1\nkind: Platform\nname: preflight\nversion: \"1.0.0\"\nsource: {_registry.Authority}/test\nimages:\n  - name: repo\n    tag: \"1.0\"\n");
        return path;
    }

    private void Seed(FakeRegistry registry)
    {
        var config = registry.AddBlob(_config);
        var layer = registry.AddBlob(_layer);
        var manifest = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"," +
            $"\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{config}\",\"size\":{_config.Length}}}," +
            $"\"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"{layer}\",\"size\":{_layer.Length}}}]}}";
        registry.AddManifest("1.0", Encoding.UTF8.GetBytes(manifest), "application/vnd.oci.image.manifest.v1+json");
    }

    /// <summary><c>GET /v2/</c> answers 200 once a token is presented; blob GETs go to the CDN with a presigned-looking URL.</summary>
    private async Task<bool> RedirectBlobsAsync(HttpListenerContext context)
    {
        var path = context.Request.Url!.AbsolutePath;
        var bearer = context.Request.Headers["Authorization"]?.StartsWith("Bearer ", StringComparison.Ordinal) == true;
        if (path == "/v2/" && bearer)
        {
            await Reply.JsonAsync(context, 200, "{}");
            return true;
        }

        const string blobs = $"/v2/{FakeRegistry.Repository}/blobs/";
        if (bearer && path.StartsWith(blobs, StringComparison.Ordinal) && context.Request.HttpMethod == "GET")
        {
            await Reply.StatusAsync(context, 307, new Dictionary<string, string> { ["Location"] = $"{_cdn.BaseAddress}cdn/{path[blobs.Length..]}?X-Signature=abc" });
            return true;
        }

        return false;
    }

    private async Task ServeFromCdnAsync(HttpListenerContext context)
    {
        var digest = context.Request.Url!.AbsolutePath["/cdn/".Length..];
        if (context.Request.Headers["Authorization"] is not null || !_registry.Blobs.TryGetValue(digest, out var blob))
        {
            await Reply.StatusAsync(context, 400);
            return;
        }

        await Reply.BytesAsync(context, 200, blob, "application/octet-stream");
    }
}
