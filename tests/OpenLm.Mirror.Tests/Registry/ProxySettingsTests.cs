using System.Net;
using System.Text;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.Registry;

public sealed class ProxySettingsTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] values) =>
        name => values.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void ProxySettings_Environment_HttpsAndHttpBySchemeLowerCaseWins()
    {
        var proxy = ProxySettings.Create(null, Env(("HTTPS_PROXY", "http://upper:3128"), ("https_proxy", "http://lower:3128"), ("HTTP_PROXY", "proxy.corp:8080")));

        Assert.Equal(new Uri("http://lower:3128/"), proxy.GetProxy(new Uri("https://public.ecr.aws/v2/")));
        Assert.Equal(new Uri("http://proxy.corp:8080/"), proxy.GetProxy(new Uri("http://registry.local:5000/v2/")));
    }

    [Theory]
    [InlineData("registry.local", "https://registry.local/v2/", true)]
    [InlineData(".corp.example", "https://harbor.corp.example/v2/", true)]
    [InlineData("corp.example", "https://harbor.corp.example/v2/", true)]
    [InlineData("corp.example", "https://notcorp.example/v2/", false)]
    [InlineData("registry.local:5000", "http://registry.local:5000/v2/", true)]
    [InlineData("registry.local:5000", "https://registry.local/v2/", false)]
    [InlineData("127.0.0.1", "http://127.0.0.1:5000/v2/", true)]
    [InlineData("*", "https://public.ecr.aws/v2/", true)]
    [InlineData("", "http://127.0.0.1:5000/v2/", false)]
    public void ProxySettings_NoProxy_MatchesHostsDomainsPortsAndNeverSkipsLoopbackByItself(string noProxy, string url, bool bypassed)
    {
        var proxy = ProxySettings.Create(null, Env(("HTTPS_PROXY", "http://proxy:3128"), ("HTTP_PROXY", "http://proxy:3128"), ("no_proxy", noProxy)));

        Assert.Equal(bypassed, proxy.GetProxy(new Uri(url)) is null);
    }

    [Fact]
    public void ProxySettings_ExplicitUrlWithCredentials_WinsOverEnvironmentAndNeverShowsThePassword()
    {
        var proxy = ProxySettings.Create("http://alice:s3cret@proxy.corp:3128", Env(("HTTPS_PROXY", "http://other:1")));

        Assert.Equal(new Uri("http://proxy.corp:3128/"), proxy.GetProxy(new Uri("https://public.ecr.aws/v2/")));
        var credential = proxy.Credentials!.GetCredential(new Uri("http://proxy.corp:3128/"), "Basic")!;
        Assert.Equal(("alice", "s3cret"), (credential.UserName, credential.Password));
        Assert.DoesNotContain("s3cret", proxy.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ProxySettings_BadUrl_IsAnInputErrorWithoutTheCredentials()
    {
        var ex = Assert.Throws<InputException>(() => ProxySettings.Create("ftp://bob:hunter2@proxy:21"));
        Assert.Contains("not an http:// or https:// proxy URL", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RegistryConnector_Proxy_SendsRequestsForAnUnresolvableHostThroughTheLoopbackProxy()
    {
        // Given a loopback "proxy" (a raw socket) that records the request line and answers 404 itself
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var seen = new List<string>();
        var serve = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            var reader = new StreamReader(stream, Encoding.ASCII);
            seen.Add(await reader.ReadLineAsync() ?? string.Empty);
            while (!string.IsNullOrEmpty(await reader.ReadLineAsync()))
            {
            }

            var body = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"unknown\"}]}";
            var head = $"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(head + body));
        });
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true, Proxy = $"http://127.0.0.1:{port}", Retries = 0 });

        // When a manifest of a host that does not resolve is fetched
        var repository = connector.Repository(OpenLm.Mirror.Oci.Reference.Parse("registry.invalid:5000/team/app:1"));
        await Assert.ThrowsAsync<NotFoundException>(() => repository.FetchManifestAsync("1"));
        await serve;

        // Then the request went to the proxy, in absolute form, naming the registry
        Assert.Equal(["GET http://registry.invalid:5000/v2/team/app/manifests/1 HTTP/1.1"], seen);
    }

    [Theory]
    [InlineData(HttpStatusCode.ProxyAuthenticationRequired, "https://registry.corp:5000/v2/", "refused the tunnel (CONNECT) to registry.corp:5000 with 407 Proxy Authentication Required: it requires credentials", Remedy.ProxyCredentials)]
    [InlineData(HttpStatusCode.Unauthorized, "https://registry.corp:5000/v2/", "with 401 Unauthorized: it requires credentials", Remedy.ProxyCredentials)]
    [InlineData(HttpStatusCode.Forbidden, "http://registry.corp:5000/v2/", "refused the request to registry.corp:5000 with 403 Forbidden: the proxy does not allow it", Remedy.None)]
    public void Refused_NamesProxyAndDestinationNeverTheCredentials(HttpStatusCode status, string destination, string expected, Remedy remedy)
    {
        var error = ProxySettings.Refused(new Uri("http://relbot:S3cr3t-pw@proxy.corp:3128/"), new Uri(destination), status, null);

        Assert.Contains("HTTP proxy proxy.corp:3128 ", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("S3cr3t", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("relbot", error.Message, StringComparison.Ordinal);
        Assert.Equal(remedy, error.Remedy);
        Assert.Equal("proxy.corp:3128", error.Subject);
        Assert.Equal(FailureKind.Operational, error.Kind);
    }
}
