using System.Net;
using System.Net.Http.Headers;
using System.Text;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using Xunit;
using static OpenLm.Mirror.IntegrationTests.Emulators.EmulatorTestHelpers;

namespace OpenLm.Mirror.IntegrationTests.Emulators;

[Trait("Category", "Integration")]
public sealed class EcrPublicEmulatorTests : IClassFixture<SeededRegistryFixture>, IDisposable
{
    private const string DeniedBody = "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"Your Authorization Token is invalid.\"}]}";
    private const string ThrottledBody = "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"Rate exceeded\"}]}";

    private readonly SeededRegistryFixture _fixture;
    private readonly HttpClient _client = RegistrySeeder.CreateClient();

    public EcrPublicEmulatorTests(SeededRegistryFixture fixture)
    {
        _fixture = fixture;
    }

    private SeededImage Image => _fixture.Image;

    public void Dispose() => _client.Dispose();

    private async Task<EcrPublicEmulator> StartAsync(EcrPublicEmulatorOptions? options = null)
    {
        var emulator = new EcrPublicEmulator(_fixture.Upstream, options);
        await emulator.StartAsync();
        return emulator;
    }

    private static Uri ManifestUri(EcrPublicEmulator ecr, string reference)
        => new(ecr.BaseAddress, $"v2/{SeededRegistryFixture.Repository}/manifests/{reference}");

    private static Uri BlobUri(EcrPublicEmulator ecr, string digest)
        => new(ecr.BaseAddress, $"v2/{SeededRegistryFixture.Repository}/blobs/{digest}");

    private async Task<Uri> GetCdnLocationAsync(EcrPublicEmulator ecr, string token, string digest)
    {
        using var request = Request(HttpMethod.Get, BlobUri(ecr, digest), token);
        using var response = await _client.SendAsync(request);
        Assert.Equal(HttpStatusCode.TemporaryRedirect, response.StatusCode);
        return response.Headers.Location ?? throw new InvalidOperationException("no Location");
    }

    [Fact]
    public async Task EcrPublicEmulator_V2WithoutToken_Returns401WithExactChallenge()
    {
        await using var ecr = await StartAsync();
        var expected = $"Bearer realm=\"http://{ecr.RegistryHost}/token/\",service=\"public.ecr.aws\",scope=\"aws\"";
        Assert.StartsWith("127.0.0.1:", ecr.RegistryHost, StringComparison.Ordinal);
        Assert.Equal(expected, ecr.Challenge);

        foreach (var uri in new[] { new Uri(ecr.BaseAddress, "v2/"), ManifestUri(ecr, Image.Tag), BlobUri(ecr, Image.LayerDigest) })
        {
            using var response = await _client.SendAsync(Request(HttpMethod.Get, uri));
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal(expected, RawHeader(response, "WWW-Authenticate"));
        }

        using var unknownToken = await _client.SendAsync(Request(HttpMethod.Get, new Uri(ecr.BaseAddress, "v2/"), bearer: "not-a-token"));
        Assert.Equal(HttpStatusCode.Unauthorized, unknownToken.StatusCode);
        Assert.Equal(expected, RawHeader(unknownToken, "WWW-Authenticate"));
        Assert.Equal(4, ecr.Unauthorized401Count);
        Assert.Equal(0, ecr.RedirectsIssued);
    }

    [Fact]
    public async Task EcrPublicEmulator_TokenFlow_GrantsManifestAccess()
    {
        await using var ecr = await StartAsync();
        var token = await GetTokenAsync(_client, ecr.TokenRealm);
        var repoToken = await GetTokenAsync(_client, ecr.TokenRealm, $"repository:{SeededRegistryFixture.Repository}:pull");
        Assert.NotEqual(token, repoToken);
        Assert.Equal(2, ecr.TokenRequests);
        Assert.Equal(["aws", $"repository:{SeededRegistryFixture.Repository}:pull"], ecr.TokenScopes);

        using var ping = await _client.SendAsync(Request(HttpMethod.Get, new Uri(ecr.BaseAddress, "v2/"), token));
        Assert.Equal(HttpStatusCode.OK, ping.StatusCode);

        using var manifest = await _client.SendAsync(Request(HttpMethod.Get, ManifestUri(ecr, Image.Tag), repoToken, Image.ManifestMediaType));
        Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
        var body = await manifest.Content.ReadAsByteArrayAsync();
        Assert.Equal(Image.ManifestDigest, Sha256(body));
        Assert.Equal(Image.ManifestDigest, RawHeader(manifest, "Docker-Content-Digest"));

        using var head = await _client.SendAsync(Request(HttpMethod.Head, ManifestUri(ecr, Image.ManifestDigest), token, Image.ManifestMediaType));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(Image.ManifestDigest, RawHeader(head, "Docker-Content-Digest"));

        using var tags = await _client.SendAsync(Request(HttpMethod.Get, new Uri(ecr.BaseAddress, $"v2/{SeededRegistryFixture.Repository}/tags/list"), token));
        Assert.Equal(HttpStatusCode.OK, tags.StatusCode);
        Assert.Contains("\"1.0\"", await tags.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task EcrPublicEmulator_TokenEndpoint_WithBasicCredentials_RequiresThem()
    {
        await using var ecr = await StartAsync(new EcrPublicEmulatorOptions { BasicUsername = "AWS", BasicPassword = "secret" });
        using var anonymous = await _client.GetAsync(new Uri(ecr.TokenRealm, "?service=public.ecr.aws&scope=aws"));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        var basic = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("AWS:secret")));
        var token = await GetTokenAsync(_client, ecr.TokenRealm, basic: basic);
        Assert.False(string.IsNullOrWhiteSpace(token));
        Assert.Equal(2, ecr.TokenRequests);
    }

    [Fact]
    public async Task EcrPublicEmulator_BlobHead_Returns401()
    {
        await using var ecr = await StartAsync();
        var token = await GetTokenAsync(_client, ecr.TokenRealm);

        using var response = await _client.SendAsync(Request(HttpMethod.Head, BlobUri(ecr, Image.LayerDigest), token));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal(ecr.Challenge, RawHeader(response, "WWW-Authenticate"));
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        Assert.Equal(1, ecr.BlobHead401Count);
    }

    [Fact]
    public async Task EcrPublicEmulator_BlobGet_RedirectsToPresignedCdnUrlOnSecondLoopbackAddress()
    {
        await using var ecr = await StartAsync();
        var token = await GetTokenAsync(_client, ecr.TokenRealm);

        var location = await GetCdnLocationAsync(ecr, token, Image.LayerDigest);

        Assert.True(location.IsAbsoluteUri);
        Assert.Equal("127.0.0.2", location.Host);
        Assert.NotEqual(ecr.BaseAddress.Port, location.Port);
        Assert.Equal(ecr.CdnHost, location.Authority);
        Assert.Contains("X-Amz-Signature=", location.Query, StringComparison.Ordinal);
        Assert.Contains("X-Amz-Expires=", location.Query, StringComparison.Ordinal);
        Assert.Equal(1, ecr.RedirectsIssued);

        using var blob = await _client.SendAsync(Request(HttpMethod.Get, location));
        Assert.Equal(HttpStatusCode.OK, blob.StatusCode);
        Assert.Equal(Image.Layer.LongLength, blob.Content.Headers.ContentLength);
        Assert.Equal(Image.LayerDigest, Sha256(await blob.Content.ReadAsByteArrayAsync()));
        Assert.Equal(0, ecr.CdnAuthorizationViolations);
        Assert.Equal(1, ecr.CdnBlobGets);
    }

    [Fact]
    public async Task EcrPublicEmulator_Cdn_RejectsAuthorizationHeader_AndServesWithout()
    {
        await using var ecr = await StartAsync();
        var token = await GetTokenAsync(_client, ecr.TokenRealm);
        var location = await GetCdnLocationAsync(ecr, token, Image.ConfigDigest);

        using var withAuth = await _client.SendAsync(Request(HttpMethod.Get, location, token));
        Assert.Equal(HttpStatusCode.BadRequest, withAuth.StatusCode);
        Assert.Contains("Only one auth mechanism allowed", await withAuth.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(1, ecr.CdnAuthorizationViolations);

        using var withoutAuth = await _client.SendAsync(Request(HttpMethod.Get, location));
        Assert.Equal(HttpStatusCode.OK, withoutAuth.StatusCode);
        Assert.Equal(Image.Config, await withoutAuth.Content.ReadAsByteArrayAsync());
        Assert.Equal(1, ecr.CdnAuthorizationViolations);
    }

    [Fact]
    public async Task EcrPublicEmulator_Cdn_RangeRequest_Returns206()
    {
        await using var ecr = await StartAsync();
        var token = await GetTokenAsync(_client, ecr.TokenRealm);
        var location = await GetCdnLocationAsync(ecr, token, Image.LayerDigest);
        const int offset = 100_000;

        using var request = Request(HttpMethod.Get, location);
        request.Headers.Range = new RangeHeaderValue(offset, null);
        using var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        var length = Image.Layer.Length;
        Assert.Equal($"bytes {offset}-{length - 1}/{length}", RawHeader(response, "Content-Range"));
        Assert.Equal(Image.Layer.AsSpan(offset).ToArray(), await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task EcrPublicEmulator_Cdn_BadOrExpiredSignature_Returns403()
    {
        var clock = new ManualTimeProvider();
        await using var ecr = await StartAsync(new EcrPublicEmulatorOptions { TimeProvider = clock, CdnUrlLifetime = TimeSpan.FromMinutes(5) });
        var token = await GetTokenAsync(_client, ecr.TokenRealm);
        var location = await GetCdnLocationAsync(ecr, token, Image.LayerDigest);

        var forged = new Uri(location.AbsoluteUri.Replace("X-Amz-Signature=", "X-Amz-Signature=0", StringComparison.Ordinal));
        using var bad = await _client.SendAsync(Request(HttpMethod.Get, forged));
        Assert.Equal(HttpStatusCode.Forbidden, bad.StatusCode);

        using var unsigned = await _client.SendAsync(Request(HttpMethod.Get, new Uri(location.GetLeftPart(UriPartial.Path))));
        Assert.Equal(HttpStatusCode.Forbidden, unsigned.StatusCode);

        clock.Advance(TimeSpan.FromMinutes(6));
        using var expired = await _client.SendAsync(Request(HttpMethod.Get, location));
        Assert.Equal(HttpStatusCode.Forbidden, expired.StatusCode);
        Assert.Contains("Request has expired", await expired.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(3, ecr.CdnSignatureFailures);
        Assert.Equal(0, ecr.CdnBlobGets);
    }

    [Fact]
    public async Task EcrPublicEmulator_ExpiredToken_Returns400Denied()
    {
        var clock = new ManualTimeProvider();
        await using var ecr = await StartAsync(new EcrPublicEmulatorOptions { TimeProvider = clock, TokenLifetime = TimeSpan.FromMinutes(10) });
        var token = await GetTokenAsync(_client, ecr.TokenRealm);
        using (var fresh = await _client.SendAsync(Request(HttpMethod.Get, ManifestUri(ecr, Image.Tag), token, Image.ManifestMediaType)))
        {
            Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
        }

        clock.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(1));
        using var expired = await _client.SendAsync(Request(HttpMethod.Get, ManifestUri(ecr, Image.Tag), token, Image.ManifestMediaType));

        Assert.Equal(HttpStatusCode.BadRequest, expired.StatusCode);
        Assert.Equal("application/json", expired.Content.Headers.ContentType?.MediaType);
        Assert.Equal(DeniedBody, await expired.Content.ReadAsStringAsync());
        Assert.Equal(1, ecr.Denied400Count);

        var renewed = await GetTokenAsync(_client, ecr.TokenRealm);
        using var again = await _client.SendAsync(Request(HttpMethod.Get, ManifestUri(ecr, Image.Tag), renewed, Image.ManifestMediaType));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);

        ecr.ExpireAllTokens();
        using var revoked = await _client.SendAsync(Request(HttpMethod.Get, BlobUri(ecr, Image.LayerDigest), renewed));
        Assert.Equal(HttpStatusCode.BadRequest, revoked.StatusCode);
        Assert.Equal(DeniedBody, await revoked.Content.ReadAsStringAsync());
        Assert.Equal(2, ecr.Denied400Count);
        Assert.Equal(0, ecr.RedirectsIssued);
    }

    [Fact]
    public async Task EcrPublicEmulator_PastRateLimit_Returns429WithRetryAfter()
    {
        var clock = new ManualTimeProvider();
        await using var ecr = await StartAsync(new EcrPublicEmulatorOptions { TimeProvider = clock, RateLimitPerSecond = 3, RetryAfterSeconds = 1 });
        var token = await GetTokenAsync(_client, ecr.TokenRealm);
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? throttled = null;
        for (var i = 0; i < 5; i++)
        {
            var response = await _client.SendAsync(Request(HttpMethod.Get, ManifestUri(ecr, Image.Tag), token, Image.ManifestMediaType));
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests && throttled is null)
            {
                throttled = response;
            }
            else
            {
                response.Dispose();
            }
        }

        Assert.Equal(
            [HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests],
            statuses);
        using (throttled)
        {
            Assert.NotNull(throttled);
            Assert.Equal("1", RawHeader(throttled, "Retry-After"));
            Assert.Equal(ThrottledBody, await throttled.Content.ReadAsStringAsync());
        }

        Assert.Equal(2, ecr.Throttled429Count);
        Assert.Equal(1, ecr.TokenRequests); // the token endpoint is not rate limited

        clock.Advance(TimeSpan.FromSeconds(1));
        using var afterWait = await _client.SendAsync(Request(HttpMethod.Get, ManifestUri(ecr, Image.Tag), token, Image.ManifestMediaType));
        Assert.Equal(HttpStatusCode.OK, afterWait.StatusCode);
    }

    [Fact]
    public async Task EcrPublicEmulator_ResetInjection_TruncatesBlobBody()
    {
        await using var ecr = await StartAsync(new EcrPublicEmulatorOptions { ResetEveryNthBlobGet = 1, MaxResets = 1, ResetAfterBytes = 8192 });
        var token = await GetTokenAsync(_client, ecr.TokenRealm);
        var location = await GetCdnLocationAsync(ecr, token, Image.LayerDigest);

        using (var first = await _client.SendAsync(Request(HttpMethod.Get, location), HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal(Image.Layer.LongLength, first.Content.Headers.ContentLength);
            var (bytes, error) = await ReadBodyAsync(first);
            Assert.NotNull(error);
            Assert.True(bytes.Length <= 8192, $"received {bytes.Length} bytes");
            Assert.Equal(Image.Layer.AsSpan(0, bytes.Length).ToArray(), bytes);
        }

        Assert.Equal(1, ecr.ResetsInjected);

        using var second = await _client.SendAsync(Request(HttpMethod.Get, location), HttpCompletionOption.ResponseHeadersRead);
        var (full, secondError) = await ReadBodyAsync(second);
        Assert.Null(secondError);
        Assert.Equal(Image.LayerDigest, Sha256(full));
        Assert.Equal(1, ecr.ResetsInjected);
    }

    [Fact]
    public async Task EcrPublicEmulator_RepeatedResets_WithRangeResume_CompletesBlob()
    {
        await using var ecr = await StartAsync(new EcrPublicEmulatorOptions { ResetEveryNthBlobGet = 1, MaxResets = 3, ResetAfterBytes = 50_000 });
        var token = await GetTokenAsync(_client, ecr.TokenRealm);
        var location = await GetCdnLocationAsync(ecr, token, Image.LayerDigest);
        var received = new List<byte>();
        var attempts = 0;
        while (received.Count < Image.Layer.Length && attempts++ < 10)
        {
            using var request = Request(HttpMethod.Get, location);
            if (received.Count > 0)
            {
                request.Headers.Range = new RangeHeaderValue(received.Count, null);
            }

            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            var (bytes, _) = await ReadBodyAsync(response);
            received.AddRange(bytes);
        }

        Assert.Equal(Image.LayerDigest, Sha256([.. received]));
        Assert.Equal(3, ecr.ResetsInjected);
        Assert.Equal(4, ecr.CdnBlobGets);
        Assert.Equal(0, ecr.CdnAuthorizationViolations);
    }

    [Fact]
    public async Task EcrPublicEmulator_StripManifestDigestHeader_OmitsHeaderOnGetOnly()
    {
        await using var ecr = await StartAsync(new EcrPublicEmulatorOptions { StripManifestDigestHeader = true });
        var token = await GetTokenAsync(_client, ecr.TokenRealm);

        using var get = await _client.SendAsync(Request(HttpMethod.Get, ManifestUri(ecr, Image.Tag), token, Image.ManifestMediaType));
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Null(RawHeader(get, "Docker-Content-Digest"));
        Assert.Equal(Image.Manifest, await get.Content.ReadAsByteArrayAsync());

        using var head = await _client.SendAsync(Request(HttpMethod.Head, ManifestUri(ecr, Image.Tag), token, Image.ManifestMediaType));
        Assert.Equal(Image.ManifestDigest, RawHeader(head, "Docker-Content-Digest"));
    }

    [Fact]
    public async Task EcrPublicEmulator_Push_Returns405()
    {
        await using var ecr = await StartAsync();
        var token = await GetTokenAsync(_client, ecr.TokenRealm);
        using var request = Request(HttpMethod.Post, new Uri(ecr.BaseAddress, $"v2/{SeededRegistryFixture.Repository}/blobs/uploads/"), token);
        request.Content = new ByteArrayContent([]);

        using var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
    }
}
