using System.Text.Json;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Copy;

/// <summary>
/// Pulling through an emulation of ECR Public's quirks in front of a real registry: bearer challenge with
/// scope="aws", 401 on blob HEAD, 307 to a CDN that refuses Authorization, expired tokens answered with
/// 400 DENIED, 429 with Retry-After, connections reset mid-body, no Docker-Content-Digest on manifests.
/// </summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class EcrPublicCopyTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private GeneratedPlatform _platform = null!;

    public async Task InitializeAsync() =>
        _platform = await SamplePlatform.Small(seed: 21, @namespace: "ecr" + Guid.NewGuid().ToString("N")[..8]).PushAsync(registry.Host, _temp.Sub("gen"));

    public Task DisposeAsync()
    {
        _temp.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Copy_ThroughEcrPublicEmulator_CompletesWithIdenticalDigests()
    {
        // Given the emulator with resets every 2nd CDN blob GET and no Docker-Content-Digest on manifests
        await using var ecr = new EcrPublicEmulator(registry.BaseUri, new EcrPublicEmulatorOptions
        {
            StripManifestDigestHeader = true,
            StripManifestDigestHeaderOnHead = true,
            ResetEveryNthBlobGet = 2,
            ResetAfterBytes = 4096,
        });
        await ecr.StartAsync();
        var layout = _temp.Sub("from-ecr");
        var sources = _platform.Images.Select(i => $"{ecr.RegistryHost}/{i.Reference}").ToArray();

        // When every image is copied from it in one run
        var run = await MirrorCli.RunAsync(["copy", "--plain-http", "--json", .. sources, $"oci:{layout}"]);

        // Then every digest equals the source's, and the CDN never saw an Authorization header
        Assert.True(run.ExitCode == 0, run.ToString());
        using var report = JsonDocument.Parse(run.Output);
        var copied = report.RootElement.GetProperty("images").EnumerateArray().Select(i => i.GetProperty("digest").GetString()).ToList();
        Assert.Equal(_platform.Images.Select(i => i.Digest), copied);
        Assert.Equal(0, ecr.CdnAuthorizationViolations);
        Assert.True(ecr.RedirectsIssued > 0, "blobs should have been redirected to the CDN");
        Assert.True(ecr.ResetsInjected > 0, "the emulator should have cut some blob bodies");

        // And tokens were cached: far fewer token requests than registry requests
        Assert.True(ecr.TokenRequests <= _platform.Images.Count * 2, $"{ecr.TokenRequests} token requests for {ecr.V2Requests} registry requests");
    }

    [Fact]
    public async Task RemoteRepository_ExpiredToken_RefreshesAfterEcrDenied()
    {
        // Given a client that already holds a token
        await using var ecr = new EcrPublicEmulator(registry.BaseUri);
        await ecr.StartAsync();
        var image = _platform.Images[0];
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true });
        var repository = connector.Repository(Reference.Parse($"{ecr.RegistryHost}/{image.Reference}"));
        await repository.FetchManifestAsync(image.Tag);

        // When the token expires server-side (ECR answers 400 DENIED, not 401)
        ecr.ExpireAllTokens();
        var (descriptor, _) = await repository.FetchManifestAsync(image.Tag);

        // Then the client refreshed the token and succeeded
        Assert.Equal(image.Digest, descriptor.Digest.ToString());
        Assert.Equal(1, ecr.Denied400Count);
        Assert.Equal(2, ecr.TokenRequests);
    }

    [Fact]
    public async Task RemoteRepository_ParallelFirstRequests_ShareOneTokenFetch()
    {
        // Given a fresh client and eight requests to one repository at once, none holding a token yet
        await using var ecr = new EcrPublicEmulator(registry.BaseUri);
        await ecr.StartAsync();
        var image = _platform.Images[0];
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true });
        var repository = connector.Repository(Reference.Parse($"{ecr.RegistryHost}/{image.Reference}"));

        // When they all meet the bearer challenge together
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => repository.FetchManifestAsync(image.Tag)));

        // Then one token was fetched and shared
        Assert.All(results, r => Assert.Equal(image.Digest, r.Descriptor.Digest.ToString()));
        Assert.Equal(1, ecr.TokenRequests);
    }

    [Fact]
    public async Task RemoteRepository_BlobHead401_FallsBackToGet()
    {
        await using var ecr = new EcrPublicEmulator(registry.BaseUri);
        await ecr.StartAsync();
        var image = _platform.Images.First(i => i.Kind == SampleImageKind.OciImage);
        var layer = image.Manifests[0].Layers[0];
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true });
        var repository = connector.Repository(Reference.Parse($"{ecr.RegistryHost}/{image.Reference}"));

        var exists = await repository.ExistsAsync(new Descriptor { MediaType = layer.MediaType, Digest = Digest.Parse(layer.Digest), Size = layer.Size });

        Assert.True(exists);
        Assert.True(ecr.BlobHead401Count >= 1);
        Assert.Equal(0, ecr.CdnAuthorizationViolations);
    }

    [Fact]
    public async Task Copy_EcrThrottles_RetriesHonourRetryAfterAndRateLimitAvoidsIt()
    {
        // Given the emulator allowing 4 requests per second
        await using var ecr = new EcrPublicEmulator(registry.BaseUri, new EcrPublicEmulatorOptions { RateLimitPerSecond = 4, RateLimitBurst = 4 });
        await ecr.StartAsync();
        var image = _platform.Images.First(i => i.Kind == SampleImageKind.OciIndex);
        var source = $"{ecr.RegistryHost}/{image.Reference}";

        // When copying without a client-side rate limit, it is throttled but completes
        var throttled = await MirrorCli.RunAsync("copy", "--plain-http", "--retries", "10", source, $"oci:{_temp.Sub("a")}");
        Assert.True(throttled.ExitCode == 0, throttled.ToString());
        Assert.True(ecr.Throttled429Count > 0, "expected 429s without --rate-limit");

        // And with --rate-limit below the server's, it is never throttled
        await Task.Delay(1500);
        ecr.ResetCounters();
        var paced = await MirrorCli.RunAsync("copy", "--plain-http", "--rate-limit", "3", source, $"oci:{_temp.Sub("b")}");
        Assert.True(paced.ExitCode == 0, paced.ToString());
        Assert.Equal(0, ecr.Throttled429Count);
        Assert.Contains(image.Digest, paced.Output);
    }
}
