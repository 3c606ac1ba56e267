using System.Diagnostics;
using System.Net;
using System.Text;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Registry.Auth;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

public sealed class RemoteRepositoryTests
{
    private static readonly byte[] Config = Encoding.UTF8.GetBytes("{\"architecture\":\"amd64\",\"os\":\"linux\"}");
    private static readonly byte[] Layer = TestContent.Random(200_000, 77);

    private static byte[] ManifestBytes() => Encoding.UTF8.GetBytes(
        $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciManifest}\",\"config\":{TestContent.DescriptorJson(MediaTypes.OciConfig, Config)},\"layers\":[{TestContent.DescriptorJson(MediaTypes.OciLayerGzip, Layer)}]}}");

    private static (RegistryConnector Connector, RemoteRepository Repository) Connect(FakeRegistry registry, Action<RegistryOptions>? configure = null)
    {
        var options = new RegistryOptions
        {
            PlainHttp = true,
            RetryBaseDelay = TimeSpan.FromMilliseconds(1),
            ResponseTimeout = TimeSpan.FromSeconds(20),
            IdleTimeout = TimeSpan.FromSeconds(20),
        };
        configure?.Invoke(options);
        var connector = new RegistryConnector(options);
        return (connector, connector.Repository(Reference.Parse($"{registry.Authority}/{FakeRegistry.Repository}:1")));
    }

    private static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    [Fact]
    public async Task RegistryClient_BearerChallenge_FetchesTokenWithServiceAndScopeThenRetries()
    {
        // Given a registry that wants a bearer token
        await using var registry = FakeRegistry.Start(requireToken: true);
        var manifest = ManifestBytes();
        var digest = registry.AddManifest("1", manifest, MediaTypes.OciManifest);
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When a manifest is fetched
        var (descriptor, bytes) = await repository.FetchManifestAsync("1");

        // Then the client answered the challenge at the token endpoint with service and scope, and retried with the token
        Assert.Equal(manifest, bytes);
        Assert.Equal(digest, descriptor.Digest.ToString());
        var token = Assert.Single(registry.TokenRequests);
        Assert.Contains($"service={FakeRegistry.Service}", token.Query, StringComparison.Ordinal);
        Assert.Contains("scope=repository%3Atest%2Frepo%3Apull", token.Query, StringComparison.Ordinal);
        Assert.Null(token.Authorization);
        var calls = registry.RegistryRequests.ToList();
        Assert.Equal(2, calls.Count);
        Assert.Null(calls[0].Authorization);
        Assert.Equal("Bearer tok-1", calls[1].Authorization);
        Assert.Contains(MediaTypes.OciIndex, calls[0].Accept, StringComparison.Ordinal);
        Assert.Contains(MediaTypes.DockerManifest, calls[0].Accept, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RegistryClient_TokenIsCached_SecondRequestMakesNoTokenRequest()
    {
        // Given a client that already obtained a token
        await using var registry = FakeRegistry.Start(requireToken: true);
        registry.AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        var (connector, repository) = Connect(registry);
        using var _ = connector;
        await repository.FetchManifestAsync("1");

        // When another request is made for the same scope
        await repository.FetchManifestAsync("1");

        // Then it carries the cached token straight away
        Assert.Equal(1, repository.Client.TokenRequests);
        Assert.Single(registry.TokenRequests);
        Assert.Equal(3, registry.RegistryRequests.Count());
        Assert.Equal("Bearer tok-1", registry.RegistryRequests.Last().Authorization);
    }

    [Fact]
    public async Task RegistryClient_TokenEndpoint_GetsBasicCredentialsWhenConfigured()
    {
        // Given a registry whose token service wants credentials, and a client that has them
        await using var registry = FakeRegistry.Start(requireToken: true, tokenUser: "alice:s3cret");
        registry.AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        var (connector, repository) = Connect(registry, o => o.Credentials = new StaticCredentialProvider(new Credential("alice", "s3cret")));
        using var _ = connector;

        // When a manifest is fetched
        await repository.FetchManifestAsync("1");

        // Then the token request carried them as Basic auth
        Assert.Equal("Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:s3cret")), Assert.Single(registry.TokenRequests).Authorization);
    }

    [Fact]
    public async Task RegistryClient_TokenRefused_SaysCredentialsAreNeeded()
    {
        // Given a registry whose token service refuses anonymous requests
        await using var registry = FakeRegistry.Start(requireToken: true, tokenUser: "alice:s3cret");
        registry.AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When a manifest is fetched anonymously
        var ex = await Assert.ThrowsAsync<OperationException>(() => repository.FetchManifestAsync("1"));

        // Then the message says credentials are needed, and the CLI names the flags that give them
        Assert.Contains("refused an anonymous token (401)", ex.Message, StringComparison.Ordinal);
        Assert.Equal(Remedy.Credentials, ex.Remedy);
        Assert.Contains("--password-stdin", OpenLm.Mirror.Cli.CliApp.Describe(ex), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RegistryClient_CredentialsRejected_NamesUserButNotPassword()
    {
        // Given a token service that rejects the client's credentials
        await using var registry = FakeRegistry.Start(requireToken: true, tokenUser: "alice:right");
        var (connector, repository) = Connect(registry, o => o.Credentials = new StaticCredentialProvider(new Credential("alice", "wrong-Pa55word")));
        using var _ = connector;

        // When a manifest is fetched
        var ex = await Assert.ThrowsAsync<OperationException>(() => repository.FetchManifestAsync("1"));

        // Then the user is named and the password appears nowhere in the error chain
        Assert.Contains("rejected the credentials for user 'alice' (401)", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-Pa55word", ex.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RegistryClient_Ecr400DeniedInvalidToken_RefreshesTokenAndRetries()
    {
        // Given a client holding a token that the registry then invalidates, answering like ECR (400 DENIED)
        await using var registry = FakeRegistry.Start(requireToken: true);
        registry.AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        var (connector, repository) = Connect(registry);
        using var _ = connector;
        await repository.FetchManifestAsync("1");
        registry.RevokeTokens();
        registry.ExpiredTokenAs400 = true;

        // When the next request is made
        var (_, bytes) = await repository.FetchManifestAsync("1");

        // Then a new token was fetched and the request succeeded with it
        Assert.Equal(ManifestBytes(), bytes);
        Assert.Equal(2, registry.TokensIssued);
        Assert.Equal("Bearer tok-2", registry.RegistryRequests.Last().Authorization);
    }

    [Fact]
    public async Task RegistryClient_Expired401_RefreshesTokenAndRetries()
    {
        // Given a client whose token is revoked, the registry answering 401 with a challenge
        await using var registry = FakeRegistry.Start(requireToken: true);
        registry.AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        var (connector, repository) = Connect(registry);
        using var _ = connector;
        await repository.FetchManifestAsync("1");
        registry.RevokeTokens();

        // When the next request is made
        await repository.FetchManifestAsync("1");

        // Then a fresh token was used
        Assert.Equal(2, registry.TokensIssued);
        Assert.Equal("Bearer tok-2", registry.RegistryRequests.Last().Authorization);
    }

    [Fact]
    public async Task RegistryClient_EveryTokenRefused_GivesUpAfterBoundedRefreshesWith401()
    {
        // Given a registry that refuses every token
        await using var registry = FakeRegistry.Start(requireToken: true);
        registry.Intercept = async context =>
        {
            if (context.Request.Url!.AbsolutePath.StartsWith("/v2/", StringComparison.Ordinal))
            {
                await Reply.ErrorAsync(context, 401, "UNAUTHORIZED", "authentication required", new Dictionary<string, string> { ["WWW-Authenticate"] = registry.Challenge });
                return true;
            }

            return false;
        };
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When a manifest is fetched
        var ex = await Assert.ThrowsAsync<RegistryException>(() => repository.FetchManifestAsync("1"));

        // Then it refreshes the token a bounded number of times (a refusal may be a token expiring at that moment: ECR),
        // then gives up with the 401 instead of looping
        var rounds = Math.Max(2, new RegistryOptions().Retries + 1);
        Assert.Equal(HttpStatusCode.Unauthorized, ex.StatusCode);
        Assert.Contains("UNAUTHORIZED", ex.Message, StringComparison.Ordinal);
        Assert.Equal(rounds, registry.TokensIssued);
        Assert.Equal(rounds + 1, registry.RegistryRequests.Count());
    }

    [Fact]
    public async Task RegistryClient_BasicChallenge_RetriesWithCredentials()
    {
        // Given a registry that asks for Basic auth
        await using var registry = FakeRegistry.Start();
        registry.AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        var expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("bob:pw"));
        registry.Intercept = async context =>
        {
            if (context.Request.Headers["Authorization"] != expected)
            {
                await Reply.ErrorAsync(context, 401, "UNAUTHORIZED", "auth", new Dictionary<string, string> { ["WWW-Authenticate"] = "Basic realm=\"fake\"" });
                return true;
            }

            return false;
        };
        var (connector, repository) = Connect(registry, o => o.Credentials = new StaticCredentialProvider(new Credential("bob", "pw")));
        using var _ = connector;

        // When a manifest is fetched twice
        await repository.FetchManifestAsync("1");
        await repository.FetchManifestAsync("1");

        // Then the retry and later requests carry Basic credentials
        Assert.Equal([null, expected, expected], registry.RegistryRequests.Select(r => r.Authorization));
    }

    [Fact]
    public async Task RegistryClient_BasicChallengeWithoutCredentials_SaysHowToLogIn()
    {
        // Given a registry that asks for Basic auth and a client without credentials
        await using var registry = FakeRegistry.Start();
        registry.Intercept = async context =>
        {
            await Reply.StatusAsync(context, 401, new Dictionary<string, string> { ["WWW-Authenticate"] = "Basic realm=\"fake\"" });
            return true;
        };
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When a manifest is fetched
        var ex = await Assert.ThrowsAsync<OperationException>(() => repository.FetchManifestAsync("1"));

        // Then the message says credentials are needed and how to give them
        Assert.Contains("requires authentication and no credentials were found", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RegistryClient_RedirectToAnotherHost_DropsAuthorization()
    {
        // Given a token-protected registry that redirects blob downloads to a storage host on 127.0.0.2
        var blob = TestContent.Random(5000, 1);
        await using var storage = LoopbackServer.Start(context => Reply.BytesAsync(context, 200, blob, "application/octet-stream"), host: "127.0.0.2");
        await using var registry = FakeRegistry.Start(requireToken: true);
        var digest = registry.AddBlob(blob);
        registry.Intercept = async context =>
        {
            if (context.Request.Url!.AbsolutePath.Contains("/blobs/sha256:", StringComparison.Ordinal) && context.Request.Headers["Authorization"] is not null)
            {
                await Reply.StatusAsync(context, 307, new Dictionary<string, string> { ["Location"] = $"{storage.BaseAddress}cdn/{digest}?X-Amz-Signature=abc" });
                return true;
            }

            return false;
        };
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When the blob is fetched
        await using var stream = await repository.FetchAsync(TestContent.DescriptorOf(MediaTypes.OciLayerGzip, blob));
        var bytes = await ReadAllAsync(stream);

        // Then the registry saw the token but the other host did not
        Assert.Equal(blob, bytes);
        Assert.Equal("Bearer tok-1", registry.RegistryRequests.Last().Authorization);
        var cdn = Assert.Single(storage.Requests);
        Assert.Null(cdn.Authorization);
        Assert.Equal("?X-Amz-Signature=abc", cdn.Query);
    }

    [Fact]
    public async Task RegistryClient_RedirectOnSameHost_KeepsAuthorization()
    {
        // Given a token-protected registry that redirects to another path on itself
        var blob = TestContent.Random(500, 2);
        await using var registry = FakeRegistry.Start(requireToken: true);
        var digest = registry.AddBlob(blob);
        registry.Intercept = async context =>
        {
            if (context.Request.Url!.AbsolutePath == $"/v2/{FakeRegistry.Repository}/blobs/{digest}" && context.Request.Headers["Authorization"] is not null)
            {
                await Reply.StatusAsync(context, 302, new Dictionary<string, string> { ["Location"] = $"/v2/{FakeRegistry.Repository}/moved-blobs/{digest}?moved=1" });
                return true;
            }

            if (context.Request.Url!.Query == "?moved=1")
            {
                await Reply.BytesAsync(context, context.Request.Headers["Authorization"] is null ? 401 : 200, blob);
                return true;
            }

            return false;
        };
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When the blob is fetched
        await using var stream = await repository.FetchAsync(TestContent.DescriptorOf(MediaTypes.OciLayerGzip, blob));

        // Then the redirected request kept the token
        Assert.Equal(blob, await ReadAllAsync(stream));
        Assert.Equal("Bearer tok-1", registry.RegistryRequests.Last().Authorization);
    }

    [Fact]
    public async Task RegistryClient_EndlessRedirects_StopAfterTen()
    {
        // Given a registry that redirects forever
        await using var registry = FakeRegistry.Start();
        registry.Intercept = async context =>
        {
            await Reply.StatusAsync(context, 302, new Dictionary<string, string> { ["Location"] = context.Request.Url!.AbsolutePath + "?again=" + Guid.NewGuid().ToString("N") });
            return true;
        };
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When a manifest is fetched
        var ex = await Assert.ThrowsAsync<OperationException>(() => repository.FetchManifestAsync("1"));

        // Then it stops with a clear message
        Assert.Contains("more than 10 redirects", ex.Message, StringComparison.Ordinal);
        Assert.Equal(11, registry.Requests.Count);
    }

    [Fact]
    public async Task RemoteRepository_ExistsAsync_Head401_FallsBackToGet()
    {
        // Given a registry that (like ECR Public) answers 401 to every blob HEAD, even with a valid token
        var blob = TestContent.Random(1000, 3);
        await using var registry = FakeRegistry.Start(requireToken: true);
        registry.AddBlob(blob);
        registry.Intercept = async context =>
        {
            if (context.Request.HttpMethod == "HEAD" && context.Request.Url!.AbsolutePath.Contains("/blobs/", StringComparison.Ordinal))
            {
                await Reply.ErrorAsync(context, 401, "UNAUTHORIZED", "no", new Dictionary<string, string> { ["WWW-Authenticate"] = registry.Challenge });
                return true;
            }

            return false;
        };
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When an existing and a missing blob are checked
        var present = await repository.ExistsAsync(TestContent.DescriptorOf(MediaTypes.OciLayerGzip, blob));
        var missing = await repository.ExistsAsync(TestContent.DescriptorOf(MediaTypes.OciLayerGzip, [9, 9, 9]));

        // Then GET answered both questions
        Assert.True(present);
        Assert.False(missing);
        Assert.Contains(registry.RegistryRequests, r => r.Method == "GET" && r.Path.Contains("/blobs/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RemoteRepository_ExistsAsync_ManifestAndBlob_UseHead()
    {
        // Given a registry with a manifest and a blob
        await using var registry = FakeRegistry.Start();
        var manifest = ManifestBytes();
        registry.AddManifest("1", manifest, MediaTypes.OciManifest);
        registry.AddBlob(Layer);
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When they and a missing one are checked
        var results = new[]
        {
            await repository.ExistsAsync(TestContent.DescriptorOf(MediaTypes.OciManifest, manifest)),
            await repository.ExistsAsync(TestContent.DescriptorOf(MediaTypes.OciLayerGzip, Layer)),
            await repository.ExistsAsync(TestContent.DescriptorOf(MediaTypes.OciLayerGzip, [1])),
        };

        // Then HEAD alone answered
        Assert.Equal([true, true, false], results);
        Assert.All(registry.Requests, r => Assert.Equal("HEAD", r.Method));
    }

    [Fact]
    public async Task RemoteRepository_FetchManifestAsync_WithoutDigestHeader_ComputesDigest()
    {
        // Given a registry that sends no Docker-Content-Digest (as ECR Public may)
        await using var registry = FakeRegistry.Start();
        var manifest = ManifestBytes();
        var digest = registry.AddManifest("1", manifest, MediaTypes.OciManifest);
        registry.SendDigestHeader = false;
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When the manifest is fetched and resolved
        var (descriptor, bytes) = await repository.FetchManifestAsync("1");
        var resolved = await repository.ResolveAsync("1");

        // Then the digest is computed from the bytes (resolve falls back from HEAD to GET)
        Assert.Equal(digest, descriptor.Digest.ToString());
        Assert.Equal(manifest.Length, descriptor.Size);
        Assert.Equal(MediaTypes.OciManifest, descriptor.MediaType);
        Assert.Equal(manifest, bytes);
        Assert.Equal(digest, resolved.Digest.ToString());
        Assert.Equal(["GET", "HEAD", "GET"], registry.Requests.Select(r => r.Method));
    }

    [Fact]
    public async Task RemoteRepository_ResolveAsync_HeadWithDigest_NeedsNoGet()
    {
        // Given a registry that answers HEAD with digest, length and type
        await using var registry = FakeRegistry.Start();
        var manifest = ManifestBytes();
        var digest = registry.AddManifest("1", manifest, MediaTypes.OciManifest + "; charset=utf-8");
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When the tag is resolved
        var descriptor = await repository.ResolveAsync("1");

        // Then one HEAD was enough
        Assert.Equal(digest, descriptor.Digest.ToString());
        Assert.Equal(MediaTypes.OciManifest, descriptor.MediaType);
        Assert.Equal(manifest.Length, descriptor.Size);
        Assert.Equal("HEAD", Assert.Single(registry.Requests).Method);
    }

    [Fact]
    public async Task RemoteRepository_FetchManifestAsync_WrongDigestHeader_IsIntegrityFailure()
    {
        // Given a registry whose Docker-Content-Digest does not match the bytes
        await using var registry = FakeRegistry.Start();
        registry.AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        registry.DigestHeaderOverride = "sha256:" + new string('0', 64);
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When the manifest is fetched
        var ex = await Assert.ThrowsAsync<IntegrityException>(() => repository.FetchManifestAsync("1"));

        // Then the mismatch is reported with both digests
        Assert.Contains("sha256:" + new string('0', 64), ex.Message, StringComparison.Ordinal);
        Assert.Contains(FakeRegistry.Sha256(ManifestBytes()), ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RemoteRepository_FetchManifestAsync_ByDigestWithOtherContent_IsIntegrityFailure()
    {
        // Given a registry serving other bytes under a digest
        await using var registry = FakeRegistry.Start();
        var wanted = "sha256:" + new string('a', 64);
        registry.Manifests[wanted] = (ManifestBytes(), MediaTypes.OciManifest);
        registry.SendDigestHeader = false;
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When it is fetched by that digest
        var ex = await Assert.ThrowsAsync<IntegrityException>(() => repository.FetchManifestAsync(wanted));

        // Then the content is refused
        Assert.Contains("not the requested digest", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RemoteRepository_FetchManifestAsync_404_NotFoundNamingTheReference()
    {
        // Given a registry without the tag
        await using var registry = FakeRegistry.Start();
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When it is fetched and resolved
        var fetch = await Assert.ThrowsAsync<NotFoundException>(() => repository.FetchManifestAsync("9.9.9"));
        var resolve = await Assert.ThrowsAsync<NotFoundException>(() => repository.ResolveAsync("9.9.9"));

        // Then both name the reference
        Assert.StartsWith($"{registry.Authority}/{FakeRegistry.Repository}:9.9.9: manifest unknown (404)", fetch.Message, StringComparison.Ordinal);
        Assert.StartsWith($"{registry.Authority}/{FakeRegistry.Repository}:9.9.9: manifest unknown (404)", resolve.Message, StringComparison.Ordinal);
        Assert.Contains("MANIFEST_UNKNOWN", fetch.InnerException!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RemoteRepository_ResolveAsync_ByDigest404_UsesAtSign()
    {
        // Given a registry without a manifest
        await using var registry = FakeRegistry.Start();
        var (connector, repository) = Connect(registry);
        using var _ = connector;
        var digest = "sha256:" + new string('b', 64);

        // When it is resolved by digest
        var ex = await Assert.ThrowsAsync<NotFoundException>(() => repository.ResolveAsync(digest));

        // Then the message writes name@digest
        Assert.StartsWith($"{registry.Authority}/{FakeRegistry.Repository}@{digest}:", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RemoteRepository_FetchAsync_MissingBlob_NotFound()
    {
        // Given a registry without a blob
        await using var registry = FakeRegistry.Start();
        var (connector, repository) = Connect(registry);
        using var _ = connector;
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciLayerGzip, [1, 2]);

        // When it is fetched
        var ex = await Assert.ThrowsAsync<NotFoundException>(() => repository.FetchAsync(descriptor));

        // Then the blob is named
        Assert.Contains($"@{descriptor.Digest}: blob unknown (404)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RemoteRepository_ErrorBody_CodesAppearInMessage()
    {
        // Given a registry that denies access with an OCI error body
        await using var registry = FakeRegistry.Start();
        registry.Intercept = async context =>
        {
            await Reply.JsonAsync(context, 403, "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"requested access to the resource is denied\"},{\"code\":\"UNSUPPORTED\"}]}");
            return true;
        };
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When a manifest is fetched
        var ex = await Assert.ThrowsAsync<RegistryException>(() => repository.FetchManifestAsync("1"));

        // Then the codes and messages are in the error
        Assert.Equal(HttpStatusCode.Forbidden, ex.StatusCode);
        Assert.Contains("DENIED: requested access to the resource is denied; UNSUPPORTED", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"GET http://{registry.Authority}/v2/{FakeRegistry.Repository}/manifests/1 returned 403 Forbidden", ex.Message, StringComparison.Ordinal);
        Assert.True(ex.HasCode("DENIED"));
        Assert.False(RetryPolicy.IsTransient(ex, CancellationToken.None));
    }

    [Fact]
    public async Task RemoteRepository_ErrorWithoutBody_DescribesStatus()
    {
        // Given a registry answering 503 with an HTML page
        await using var registry = FakeRegistry.Start();
        registry.Intercept = async context =>
        {
            await Reply.BytesAsync(context, 503, Encoding.UTF8.GetBytes("<html>down</html>"), "text/html");
            return true;
        };
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When a manifest is fetched
        var ex = await Assert.ThrowsAsync<RegistryException>(() => repository.FetchManifestAsync("1"));

        // Then the status is described and the failure counts as transient
        Assert.Contains("returned 503 ServiceUnavailable (no error details in the response)", ex.Message, StringComparison.Ordinal);
        Assert.True(RetryPolicy.IsTransient(ex, CancellationToken.None));
    }

    [Fact]
    public async Task RemoteRepository_429WithRetryAfter_IsRetriedAfterTheWait()
    {
        // Given a registry that rate-limits the first request with Retry-After: 1
        await using var registry = FakeRegistry.Start();
        registry.AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        var limited = 0;
        registry.Intercept = async context =>
        {
            if (Interlocked.Increment(ref limited) == 1)
            {
                await Reply.ErrorAsync(context, 429, "TOOMANYREQUESTS", "slow down", new Dictionary<string, string> { ["Retry-After"] = "1" });
                return true;
            }

            return false;
        };
        var (connector, repository) = Connect(registry, o => o.Retries = 2);
        using var _ = connector;
        var clock = Stopwatch.StartNew();

        // When the fetch runs under the client's retry policy
        var (_, bytes) = await repository.Client.Retry.ExecuteAsync(
            async ct => await repository.FetchManifestAsync("1", ct),
            CancellationToken.None);

        // Then it succeeded on the second attempt, about a second later
        Assert.Equal(ManifestBytes(), bytes);
        Assert.Equal(2, registry.Requests.Count);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(900), $"retried after {clock.Elapsed.TotalMilliseconds} ms");
    }

    [Fact]
    public async Task RegistryClient_429WithRetryAfter_WaitsAsToldWithoutSpendingTheAttemptCap()
    {
        // Given a registry that schedules the first three requests for later (429, Retry-After: 0), and one retry allowed
        await using var registry = FakeRegistry.Start();
        registry.AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        var limited = 0;
        registry.Intercept = async context =>
        {
            if (Interlocked.Increment(ref limited) <= 3)
            {
                await Reply.ErrorAsync(context, 429, "TOOMANYREQUESTS", "slow down", new Dictionary<string, string> { ["Retry-After"] = "0" });
                return true;
            }

            return false;
        };
        var (connector, repository) = Connect(registry, o => o.Retries = 1);
        using var _ = connector;

        // When the manifest is fetched (no operation-level retry around it)
        var (_, bytes) = await repository.FetchManifestAsync("1", CancellationToken.None);

        // Then the three scheduled waits spent no attempt: the fourth request got the manifest
        Assert.Equal(ManifestBytes(), bytes);
        Assert.Equal(4, registry.Requests.Count);
    }

    [Fact]
    public async Task RegistryClient_429WithoutRetryAfter_StillSpendsTheAttemptCap()
    {
        // Given a registry that throttles the first three requests without saying when to come back, and one retry allowed
        await using var registry = FakeRegistry.Start();
        registry.AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        var limited = 0;
        registry.Intercept = async context =>
        {
            if (Interlocked.Increment(ref limited) <= 3)
            {
                await Reply.ErrorAsync(context, 429, "TOOMANYREQUESTS", "slow down");
                return true;
            }

            return false;
        };
        var (connector, repository) = Connect(registry, o => o.Retries = 1);
        using var _ = connector;

        // When the manifest is fetched
        var ex = await Assert.ThrowsAsync<RegistryException>(() => repository.FetchManifestAsync("1", CancellationToken.None));

        // Then it gave up after the one retry with the registry's 429
        Assert.Equal(HttpStatusCode.TooManyRequests, ex.StatusCode);
        Assert.Equal(2, registry.Requests.Count);
    }

    [Fact]
    public async Task RegistryClient_429WithRetryAfterForever_StopsAtTheRequestBudget()
    {
        // Given a registry that always schedules the request a second later, and a request budget of 1.5 s
        await using var registry = FakeRegistry.Start();
        registry.AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        registry.Intercept = async context =>
        {
            await Reply.ErrorAsync(context, 429, "TOOMANYREQUESTS", "slow down", new Dictionary<string, string> { ["Retry-After"] = "1" });
            return true;
        };
        var (connector, repository) = Connect(registry, o =>
        {
            o.Retries = 100;
            o.RequestBudget = TimeSpan.FromSeconds(1.5);
        });
        using var _ = connector;
        var clock = Stopwatch.StartNew();

        // When the manifest is fetched
        var ex = await Assert.ThrowsAsync<RegistryException>(() => repository.FetchManifestAsync("1", CancellationToken.None));

        // Then it waited once (a second wait would pass the budget) and handed back the 429
        Assert.Equal(HttpStatusCode.TooManyRequests, ex.StatusCode);
        Assert.Equal(2, registry.Requests.Count);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(900), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task RemoteRepository_FetchAsync_BodyCutMidway_ResumesWithRange()
    {
        // Given a registry whose first blob response dies after 64 KiB
        await using var registry = FakeRegistry.Start();
        var digest = registry.AddBlob(Layer);
        var cut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        registry.Intercept = async context =>
        {
            if (!context.Request.Url!.AbsolutePath.EndsWith(digest, StringComparison.Ordinal) || context.Request.HttpMethod != "GET")
            {
                return false;
            }

            var range = context.Request.Headers["Range"];
            var response = context.Response;
            if (range is null)
            {
                response.StatusCode = 200;
                response.ContentLength64 = Layer.Length;
                await response.OutputStream.WriteAsync(Layer.AsMemory(0, 65536));
                await response.OutputStream.FlushAsync();
                await cut.Task.WaitAsync(TimeSpan.FromSeconds(20));
                response.Abort();
                return true;
            }

            var from = int.Parse(range["bytes=".Length..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture);
            response.StatusCode = 206;
            response.AddHeader("Content-Range", $"bytes {from}-{Layer.Length - 1}/{Layer.Length}");
            response.ContentLength64 = Layer.Length - from;
            await response.OutputStream.WriteAsync(Layer.AsMemory(from));
            return true;
        };
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When the blob is read: the first 64 KiB, then the connection is cut, then the rest
        await using var stream = await repository.FetchAsync(TestContent.DescriptorOf(MediaTypes.OciLayerGzip, Layer));
        var head = new byte[65536];
        await stream.ReadExactlyAsync(head);
        cut.SetResult();
        var rest = await ReadAllAsync(stream);

        // Then it resumed at byte 65536 and the whole blob verified
        Assert.Equal(Layer, head.Concat(rest).ToArray());
        var gets = registry.Requests.Where(r => r.Method == "GET").ToList();
        Assert.Equal(2, gets.Count);
        Assert.Null(gets[0].Range);
        Assert.Equal("bytes=65536-", gets[1].Range);
    }

    [Fact]
    public async Task RemoteRepository_FetchAsync_ServerIgnoresRange_SkipsWhatItHas()
    {
        // Given a registry that cuts the first response and ignores Range on the second
        await using var registry = FakeRegistry.Start();
        var digest = registry.AddBlob(Layer);
        var cut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = 0;
        registry.Intercept = async context =>
        {
            if (context.Request.HttpMethod != "GET" || !context.Request.Url!.AbsolutePath.EndsWith(digest, StringComparison.Ordinal) || Interlocked.Increment(ref first) != 1)
            {
                return false;
            }

            context.Response.ContentLength64 = Layer.Length;
            await context.Response.OutputStream.WriteAsync(Layer.AsMemory(0, 10_000));
            await context.Response.OutputStream.FlushAsync();
            await cut.Task.WaitAsync(TimeSpan.FromSeconds(20));
            context.Response.Abort();
            return true;
        };
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When the blob is read across the cut
        await using var stream = await repository.FetchAsync(TestContent.DescriptorOf(MediaTypes.OciLayerGzip, Layer));
        var head = new byte[10_000];
        await stream.ReadExactlyAsync(head);
        cut.SetResult();
        var rest = await ReadAllAsync(stream);

        // Then the full 200 answer was skipped forward and the blob verified
        Assert.Equal(Layer, head.Concat(rest).ToArray());
    }

    [Fact]
    public async Task RemoteRepository_FetchAsync_ResumesExhausted_FailsWithIOException()
    {
        // Given a registry that always cuts the body right after the headers, and one resume allowed
        await using var registry = FakeRegistry.Start();
        var digest = registry.AddBlob(Layer);
        registry.Intercept = async context =>
        {
            if (context.Request.HttpMethod != "GET" || !context.Request.Url!.AbsolutePath.EndsWith(digest, StringComparison.Ordinal))
            {
                return false;
            }

            context.Response.ContentLength64 = Layer.Length;
            await context.Response.OutputStream.FlushAsync();

            // Let the headers reach the client before the reset: an RST can discard bytes the peer has not read yet,
            // and a cut before the headers is a different failure (a failed request, not a cut body).
            await Task.Delay(200);
            context.Response.Abort();
            return true;
        };
        var (connector, repository) = Connect(registry, o => o.ResumeAttempts = 1);
        using var _ = connector;

        // When the blob is read
        var ex = await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            await using var stream = await repository.FetchAsync(TestContent.DescriptorOf(MediaTypes.OciLayerGzip, Layer));
            await ReadAllAsync(stream);
        });

        // Then it gives up after the allowed resume, saying so, and the failure is transient for the operation retry
        Assert.Contains("download failed after 1 resumes", ex.Message, StringComparison.Ordinal);
        Assert.True(RetryPolicy.IsTransient(ex, CancellationToken.None));
    }

    [Fact]
    public async Task RemoteRepository_FetchAsync_CutAgainAndAgainButFurtherOnEachTime_IsDeliveredBeyondTheResumeCap()
    {
        // Given a registry whose first three blob responses each deliver half of what was asked, then reset; one resume allowed
        await using var registry = FakeRegistry.Start();
        var digest = registry.AddBlob(Layer);
        var answers = 0;
        registry.Intercept = async context =>
        {
            if (context.Request.HttpMethod != "GET" || !context.Request.Url!.AbsolutePath.EndsWith(digest, StringComparison.Ordinal))
            {
                return false;
            }

            var range = context.Request.Headers["Range"];
            var from = range is null ? 0 : int.Parse(range["bytes=".Length..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture);
            var response = context.Response;
            response.StatusCode = range is null ? 200 : 206;
            if (range is not null)
            {
                response.AddHeader("Content-Range", $"bytes {from}-{Layer.Length - 1}/{Layer.Length}");
            }

            response.ContentLength64 = Layer.Length - from;
            if (Interlocked.Increment(ref answers) > 3)
            {
                await response.OutputStream.WriteAsync(Layer.AsMemory(from));
                return true;
            }

            await response.OutputStream.WriteAsync(Layer.AsMemory(from, (Layer.Length - from) / 2));
            await response.OutputStream.FlushAsync();

            // Let the client read the half before the reset (an RST can discard bytes the peer has not read yet).
            await Task.Delay(300);
            response.Abort();
            return true;
        };
        var (connector, repository) = Connect(registry, o => o.ResumeAttempts = 1);
        using var _ = connector;

        // When the blob is read
        await using var stream = await repository.FetchAsync(TestContent.DescriptorOf(MediaTypes.OciLayerGzip, Layer));
        var bytes = await ReadAllAsync(stream);

        // Then every cut moved it on, so none spent the cap of one resume: three resumes, the blob verified
        Assert.Equal(Layer, bytes);
        Assert.Equal(4, registry.Requests.Count(r => r.Method == "GET" && r.Path.EndsWith(digest, StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData(0, 100_000, 200_000, true)]
    [InlineData(0, 65_536, 10_000_000, true)]
    [InlineData(0, 65_535, 10_000_000, false)]
    [InlineData(1_000, 1_250, 2_000, true)]
    [InlineData(1_000, 1_100, 2_000, false)]
    [InlineData(500, 500, 2_000, false)]
    public void ResumableBlobStream_MadeProgress_IsAQuarterOfWhatWasLeftOr64KiB(long start, long position, long size, bool progress) =>
        Assert.Equal(progress, ResumableBlobStream.MadeProgress(start, position, size));

    [Fact]
    public async Task RegistryClient_FailureStreak_CountsFailuresAcrossRequestsUntilTheRegistryAnswersOne()
    {
        // Given a registry answering 503 to the first three manifest requests
        await using var registry = FakeRegistry.Start();
        registry.AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        var refused = 0;
        registry.Intercept = async context =>
        {
            if (!context.Request.Url!.AbsolutePath.Contains("/manifests/", StringComparison.Ordinal) || Interlocked.Increment(ref refused) > 3)
            {
                return false;
            }

            await Reply.BytesAsync(context, 503, Encoding.UTF8.GetBytes("{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"busy\"}]}"), "application/json");
            return true;
        };
        var (connector, repository) = Connect(registry, o => o.Retries = 2);
        using var _ = connector;

        // When a manifest is fetched with two retries (three refusals: it fails), the streak is three
        await Assert.ThrowsAsync<RegistryException>(() => repository.FetchManifestAsync("1"));
        Assert.Equal(3, repository.Client.FailureStreak);

        // Then the next request's answer ends the streak
        await repository.FetchManifestAsync("1");
        Assert.Equal(0, repository.Client.FailureStreak);
    }

    [Fact]
    public async Task RemoteRepository_FetchAsync_TamperedBlob_IntegrityException()
    {
        // Given a registry serving other bytes under a blob digest
        await using var registry = FakeRegistry.Start();
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciLayerGzip, Layer);
        var tampered = (byte[])Layer.Clone();
        tampered[123] ^= 1;
        registry.Blobs[descriptor.Digest.ToString()] = tampered;
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When the blob is read
        await using var stream = await repository.FetchAsync(descriptor);

        // Then verification fails
        await Assert.ThrowsAsync<IntegrityException>(() => ReadAllAsync(stream));
    }

    [Fact]
    public async Task RemoteRepository_PushAsync_BlobAndManifest_UploadAndTag()
    {
        // Given an empty registry
        await using var registry = FakeRegistry.Start();
        var (connector, repository) = Connect(registry);
        using var _ = connector;
        var manifest = ManifestBytes();
        var manifestDescriptor = TestContent.DescriptorOf(MediaTypes.OciManifest, manifest);

        // When config, layer and manifest are pushed, then tagged
        await repository.PushAsync(TestContent.DescriptorOf(MediaTypes.OciConfig, Config), new MemoryStream(Config));
        await repository.PushAsync(TestContent.DescriptorOf(MediaTypes.OciLayerGzip, Layer), new MemoryStream(Layer));
        await repository.PushAsync(manifestDescriptor, new MemoryStream(manifest));
        await repository.TagAsync(manifestDescriptor, "v1");

        // Then the registry holds everything, with the monolithic upload carrying the digest
        Assert.Equal(Layer, registry.Blobs[FakeRegistry.Sha256(Layer)]);
        Assert.Equal(manifest, registry.Manifests["v1"].Bytes);
        Assert.Equal(MediaTypes.OciManifest, registry.Manifests["v1"].MediaType);
        Assert.Contains(registry.Requests, r => r.Method == "PUT" && r.Query.Contains("digest=sha256%3A", StringComparison.Ordinal) && r.Query.Contains("state=abc", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RemoteRepository_PushAsync_ContentNotMatchingDescriptor_IsIntegrityFailure()
    {
        // Given content that does not match its descriptor
        await using var registry = FakeRegistry.Start();
        var (connector, repository) = Connect(registry);
        using var _ = connector;
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciLayerGzip, Layer);
        var tampered = (byte[])Layer.Clone();
        tampered[^1] ^= 1;

        // When it is pushed
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => repository.PushAsync(descriptor, new MemoryStream(tampered)));

        // Then it fails as an integrity failure (not a retryable network error) and nothing is stored
        Assert.IsType<IntegrityException>(ex);
        Assert.False(RetryPolicy.IsTransient(ex, CancellationToken.None));
        Assert.Empty(registry.Blobs);
    }

    [Fact]
    public async Task RemoteRepository_PushAsync_TokenExpiredDuringUpload_IsRetriedByThePolicy()
    {
        // Given a token registry that refuses the first streamed upload PUT as if the token had just expired
        await using var registry = FakeRegistry.Start(requireToken: true);
        var refusals = 0;
        registry.Intercept = async context =>
        {
            if (context.Request.HttpMethod == "PUT" && Interlocked.Increment(ref refusals) == 1)
            {
                await Reply.ErrorAsync(context, 401, "UNAUTHORIZED", "token expired", new Dictionary<string, string> { ["WWW-Authenticate"] = registry.Challenge });
                return true;
            }

            return false;
        };
        var (connector, repository) = Connect(registry, o => o.Retries = 2);
        using var _ = connector;
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciLayerGzip, Layer);

        // When the blob push runs under the retry policy (the content stream is opened again per attempt)
        await repository.Client.Retry.ExecuteAsync(
            async ct => await repository.PushAsync(descriptor, new MemoryStream(Layer), ct),
            CancellationToken.None);

        // Then the second attempt succeeded with a fresh token
        Assert.Equal(Layer, registry.Blobs[descriptor.Digest.ToString()]);
        Assert.Equal(2, refusals);
        Assert.Equal(2, registry.TokensIssued);
    }

    [Fact]
    public async Task RemoteRepository_MountAsync_CreatedMeansMounted_AcceptedMeansDeclined()
    {
        // Given a registry that mounts one digest and declines another
        await using var registry = FakeRegistry.Start();
        var mountable = TestContent.DescriptorOf(MediaTypes.OciLayerGzip, [1]);
        var other = TestContent.DescriptorOf(MediaTypes.OciLayerGzip, [2]);
        registry.Intercept = async context =>
        {
            if (context.Request.HttpMethod == "POST" && context.Request.QueryString["mount"] == mountable.Digest.ToString())
            {
                Assert.Equal("other/repo", context.Request.QueryString["from"]);
                await Reply.StatusAsync(context, 201);
                return true;
            }

            if (context.Request.HttpMethod == "DELETE")
            {
                await Reply.StatusAsync(context, 204);
                return true;
            }

            return false;
        };
        var (connector, repository) = Connect(registry);
        using var _ = connector;

        // When both are mounted
        var mounted = await repository.MountAsync(mountable, "other/repo");
        var declined = await repository.MountAsync(other, "other/repo");

        // Then the first counts as mounted, the second cancels its upload session
        Assert.True(mounted);
        Assert.False(declined);
        Assert.Equal("DELETE", registry.Requests[^1].Method);
    }

    [Fact]
    public async Task GraphCopier_LayoutToRegistry_AndBack_KeepsDigests()
    {
        // Given a hand-made layout image and an empty registry
        using var dir = new TempDirectory();
        var layout = new HandLayout(dir.Sub("src"));
        var manifest = layout.AddImage(MediaTypes.DockerManifest, MediaTypes.DockerConfig, MediaTypes.DockerLayer, Config, Layer, TestContent.Random(1000, 5));
        layout.Name("app:1", MediaTypes.DockerManifest, manifest);
        await using var registry = FakeRegistry.Start(requireToken: true);
        var (connector, repository) = Connect(registry);
        using var _ = connector;
        var copier = new GraphCopier(new CopyOptions { Retry = repository.Client.Retry });

        // When it is copied to the registry and back into a new layout
        var up = await copier.CopyAsync(OciLayoutStore.Open(layout.Root, create: false), "app:1", repository, "1");
        var back = await new GraphCopier(new CopyOptions()).CopyAsync(repository, "1", OciLayoutStore.Open(dir.Sub("dst"), create: true), "app:1");

        // Then the digests are the same everywhere
        Assert.Equal(TestContent.Sha256(manifest), up.Root.Digest.ToString());
        Assert.Equal(up.Root.Digest, back.Root.Digest);
        Assert.Equal(MediaTypes.DockerManifest, registry.Manifests["1"].MediaType);
        Assert.Equal(3, back.BlobsCopied);
    }
}
