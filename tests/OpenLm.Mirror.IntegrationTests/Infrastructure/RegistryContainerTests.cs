using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>Smoke tests of the shared plain registry: the test infrastructure itself works.</summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class SharedRegistryTests(SharedRegistryFixture fixture)
{
    [Fact]
    public async Task RegistryContainer_Start_ServesV2Api()
    {
        using var http = new HttpClient { BaseAddress = fixture.BaseUri };

        using var response = await http.GetAsync("v2/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("registry/2.0", Assert.Single(response.Headers.GetValues("Docker-Distribution-API-Version")));
        Assert.StartsWith("127.0.0.1:", fixture.Host, StringComparison.Ordinal);
    }
}

/// <summary>Smoke tests of registries with their own configuration (auth, TLS, address, restart).</summary>
[Trait("Category", "Integration")]
public sealed class RegistryContainerTests
{
    [Fact]
    public async Task RegistryContainer_WithHtpasswdUser_RejectsAnonymousAndAcceptsBasicAuth()
    {
        await using var registry = await RegistryContainer.StartNewAsync(new RegistryContainerOptions
        {
            Users = [new RegistryUser("alice", "s3cret-pass")],
            Realm = "smoke-realm",
        });
        using var http = new HttpClient { BaseAddress = registry.BaseUri };

        using var anonymous = await http.GetAsync("v2/");
        using var wrong = await SendWithBasicAuthAsync(http, "alice", "wrong");
        using var authorized = await SendWithBasicAuthAsync(http, "alice", "s3cret-pass");

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        var challenge = Assert.Single(anonymous.Headers.WwwAuthenticate);
        Assert.Equal("Basic", challenge.Scheme);
        Assert.Contains("smoke-realm", challenge.Parameter, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.OK, authorized.StatusCode);
    }

    [Fact]
    public async Task RegistryContainer_WithTls_ServesHttpsToClientTrustingTheCa()
    {
        using var pki = TlsCertificates.Create();
        await using var registry = await RegistryContainer.StartNewAsync(new RegistryContainerOptions { Tls = pki.ToRegistryTls() });
        using var http = new HttpClient(pki.CreateTrustingHandler()) { BaseAddress = registry.BaseUri };

        using var response = await http.GetAsync("v2/");

        Assert.Equal("https", registry.BaseUri.Scheme);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task RegistryContainer_WithTls_IsRejectedByClientNotTrustingTheCa()
    {
        using var pki = TlsCertificates.Create();
        using var otherPki = TlsCertificates.Create();
        await using var registry = await RegistryContainer.StartNewAsync(new RegistryContainerOptions { Tls = pki.ToRegistryTls() });
        using var systemTrust = new HttpClient { BaseAddress = registry.BaseUri };
        using var otherCaTrust = new HttpClient(otherPki.CreateTrustingHandler()) { BaseAddress = registry.BaseUri };

        await Assert.ThrowsAsync<HttpRequestException>(() => systemTrust.GetAsync("v2/"));
        await Assert.ThrowsAsync<HttpRequestException>(() => otherCaTrust.GetAsync("v2/"));
    }

    [Fact]
    public async Task RegistryContainer_OnSecondLoopbackAddress_ServesOnlyThere()
    {
        await using var registry = await RegistryContainer.StartNewAsync(new RegistryContainerOptions { BindAddress = "127.0.0.2" });
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        using var response = await http.GetAsync(new Uri(registry.BaseUri, "v2/"));

        Assert.StartsWith("127.0.0.2:", registry.Host, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync(new Uri($"http://127.0.0.1:{registry.Port}/v2/")));
    }

    [Fact]
    public async Task RegistryContainer_Restart_KeepsPushedBlob()
    {
        await using var registry = await RegistryContainer.StartNewAsync();
        using var http = new HttpClient { BaseAddress = registry.BaseUri };
        var blob = RandomNumberGenerator.GetBytes(4096);
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(blob));
        const string repository = "smoke/restart";
        var hostBefore = registry.Host;
        await PushBlobAsync(http, repository, blob, digest);

        await registry.RestartAsync();

        Assert.True(registry.IsRunning);
        Assert.Equal(hostBefore, registry.Host);
        using var response = await http.GetAsync($"v2/{repository}/blobs/{digest}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(blob, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task RegistryContainer_Stop_RefusesConnectionsUntilStartedAgain()
    {
        await using var registry = await RegistryContainer.StartNewAsync();
        using var http = new HttpClient { BaseAddress = registry.BaseUri, Timeout = TimeSpan.FromSeconds(10) };

        await registry.StopAsync();
        var whileStopped = await Record.ExceptionAsync(() => http.GetAsync("v2/"));
        await registry.StartAsync();
        using var afterStart = await http.GetAsync("v2/");

        Assert.IsType<HttpRequestException>(whileStopped);
        Assert.Equal(HttpStatusCode.OK, afterStart.StatusCode);
    }

    private static Task<HttpResponseMessage> SendWithBasicAuthAsync(HttpClient http, string user, string password)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "v2/");
        request.Headers.Authorization = new AuthenticationHeaderValue(
            "Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        return http.SendAsync(request);
    }

    // Monolithic blob upload: POST starts an upload session, PUT ?digest= completes it.
    private static async Task PushBlobAsync(HttpClient http, string repository, byte[] blob, string digest)
    {
        using var start = await http.PostAsync($"v2/{repository}/blobs/uploads/", content: null);
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        var location = start.Headers.Location ?? throw new InvalidOperationException("upload has no Location");
        var uploadUri = location.IsAbsoluteUri ? location : new Uri(http.BaseAddress!, location);
        var put = new UriBuilder(uploadUri);
        put.Query = (string.IsNullOrEmpty(put.Query) ? string.Empty : put.Query.TrimStart('?') + "&")
            + "digest=" + Uri.EscapeDataString(digest);
        using var content = new ByteArrayContent(blob);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");

        using var done = await http.PutAsync(put.Uri, content);

        Assert.Equal(HttpStatusCode.Created, done.StatusCode);
        Assert.Equal(digest, Assert.Single(done.Headers.GetValues("Docker-Content-Digest")));
    }
}
