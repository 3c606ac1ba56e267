using System.Diagnostics;
using System.Formats.Tar;
using System.Text.Json;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Export;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Registry.Auth;
using OpenLm.Mirror.Signing;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Release;

/// <summary>
/// 40 images in 40 repositories of a real Distribution registry behind the ECR Public emulator with ECR Public's quotas
/// and token lifetime, all scaled 10x faster so a run takes seconds: real ECR Public allows 1 request/s anonymous and
/// 10/s authenticated and hands out tokens that expire; here 10/s anonymous, 100/s authenticated, tokens valid 6 s.
/// The client is given the same scaled quotas as its published defaults for the emulator's host (the real table keys
/// them on <c>public.ecr.aws</c>), so it picks its ceiling the way it would against the real service.
/// </summary>
public sealed class EcrRateFixture : IAsyncLifetime
{
    public const int ImageCount = 40;

    /// <summary>The speed-up over the real service: rates are multiplied by it, the token lifetime divided by it.</summary>
    public const double Scale = 10;

    public const string User = "AWS";
    public const string Password = "ecr-public-login-password";

    public static readonly RegistryQuota ScaledQuota = new(Anonymous: 1 * Scale, Authenticated: 10 * Scale);

    private RegistryProcess? _registry;
    private EcrPublicEmulator? _ecr;

    public TempDir Temp { get; } = new();

    public EcrPublicEmulator Ecr => _ecr!;

    public string ManifestPath => Temp.Sub("platform.yaml");

    /// <summary>A docker config.json with a <c>docker login</c> entry for the emulator host.</summary>
    public string AuthFile => Temp.Sub("config.json");

    public SigningKey Key { get; private set; } = null!;

    public string PublicKeyPath { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _registry = await RegistryProcess.StartAsync();
        using (var http = RegistrySeeder.CreateClient())
        {
            for (var i = 0; i < ImageCount; i++)
            {
                await RegistrySeeder.PushImageAsync(http, _registry.BaseAddress, $"rate/app{i:00}", "1.0", layerSize: 2048, seed: 500 + i);
            }
        }

        _ecr = new EcrPublicEmulator(_registry.BaseAddress, new EcrPublicEmulatorOptions
        {
            BasicUsername = User,
            BasicPassword = Password,
            AllowAnonymousTokens = true,
            RateLimitPerSecond = ScaledQuota.Anonymous,
            AuthenticatedRateLimitPerSecond = ScaledQuota.Authenticated,
            RetryAfterSeconds = null,
        });
        await _ecr.StartAsync();

        var images = string.Join('\n', Enumerable.Range(0, ImageCount).Select(i => $"  - name: app{i:00}\n    tag: \"1.0\""));
        File.WriteAllText(ManifestPath, $"apiVersion: mirror.openlm.io/v1\nkind: Platform\nname: rate-platform\nversion: \"1.0.0\"\nsource: {_ecr.RegistryHost}/rate\nimages:\n{images}\n");
        DockerConfigWriter.Store(AuthFile, _ecr.RegistryHost, new Credential(User, Password));
        var pair = KeyPairGenerator.Generate(Temp.Sub("release"), passphrase: null);
        (Key, PublicKeyPath) = (SigningKey.Load(pair.PrivateKeyPath), pair.PublicKeyPath);
    }

    /// <summary>Options as the CLI builds them (no --rate-limit), with the scaled quota for the emulator host.</summary>
    public RegistryOptions Options(bool withCredentials)
    {
        var options = new RegistryOptions
        {
            PlainHttp = true,
            RetryBaseDelay = TimeSpan.FromMilliseconds(100),
            Credentials = withCredentials ? DockerConfigCredentialProvider.Load(AuthFile) : AnonymousCredentialProvider.Instance,
        };
        options.Quotas[Ecr.RegistryHost] = ScaledQuota;
        return options;
    }

    /// <summary>Waits until both of the emulator's buckets are full again, so one run's requests do not throttle the next.</summary>
    public static Task SettleAsync() => Task.Delay(TimeSpan.FromSeconds(1.2));

    public async Task DisposeAsync()
    {
        Key?.Dispose();
        if (_ecr is not null)
        {
            await _ecr.DisposeAsync();
        }

        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }

        Temp.Dispose();
    }
}

[Trait("Category", "Integration")]
public sealed class EcrRateTests(EcrRateFixture fixture) : IClassFixture<EcrRateFixture>
{
    [Fact]
    public async Task Resolve_CredentialsForEcrPublic_PicksAuthenticatedQuotaAndRunsFasterWithoutThrottling()
    {
        // Given 40 images behind ECR Public's two quotas (10x scaled), and a docker login entry for the registry
        var ecr = fixture.Ecr;
        ecr.Options.TokenLifetime = TimeSpan.FromHours(1);
        await EcrRateFixture.SettleAsync();
        ecr.ResetCounters(); // the other test of the fixture may have run first

        // When the release is resolved anonymously, then with the credentials of the config.json
        var (anonymous, anonymousCeiling) = await ResolveAsync(withCredentials: false);
        var anonymousTokens = (ecr.TokenRequests, ecr.AuthenticatedTokensIssued);
        var anonymous429 = ecr.Throttled429Count;
        await EcrRateFixture.SettleAsync();
        ecr.ResetCounters();
        var (authenticated, authenticatedCeiling) = await ResolveAsync(withCredentials: true);

        // Then the credentials made the client choose the authenticated quota as its ceiling, and exchange them for
        // authenticated tokens at the token endpoint (the anonymous run got anonymous ones)
        Assert.Equal(EcrRateFixture.ScaledQuota.Anonymous, anonymousCeiling);
        Assert.Equal(EcrRateFixture.ScaledQuota.Authenticated, authenticatedCeiling);
        // (one token request per 32 repositories: RegistryClient.PrepareTokensAsync)
        var prepared = (EcrRateFixture.ImageCount + RegistryClient.ScopesPerPreparedToken - 1) / RegistryClient.ScopesPerPreparedToken;
        Assert.True(anonymousTokens.TokenRequests >= prepared && anonymousTokens.TokenRequests < EcrRateFixture.ImageCount && anonymousTokens.AuthenticatedTokensIssued == 0, $"anonymous run: {anonymousTokens}");
        Assert.True(ecr.AuthenticatedTokensIssued >= prepared, $"{ecr.AuthenticatedTokensIssued} authenticated tokens of {ecr.TokenRequests}");
        Assert.Equal(ecr.TokenRequests, ecr.AuthenticatedTokensIssued);

        // And neither run met a storm of 429s: both kept to their quota (a stray refusal at a bucket edge is tolerated)
        Assert.True(anonymous429 <= 3, $"{anonymous429} throttled requests anonymously");
        Assert.True(ecr.Throttled429Count <= 3, $"{ecr.Throttled429Count} throttled requests with credentials");

        // And the anonymous run was paced by its quota (40 pulls, a burst of 10, 10/s: at least 3 s), the authenticated
        // one measurably faster (real service: 40 s against 4 s for the manifests alone)
        Assert.True(anonymous >= TimeSpan.FromSeconds(2.7), $"anonymous resolve took {anonymous}");
        Assert.True(authenticated * 2 < anonymous, $"authenticated {authenticated} vs anonymous {anonymous}");
    }

    [Fact]
    public async Task Export_AnonymousRunOutlastingTheTokenLifetime_CompletesWithoutRateLimitSet()
    {
        // Given anonymous pulls only (1 request/s and tokens living 60 s at ECR Public; 10/s and 6 s here)
        var ecr = fixture.Ecr;
        ecr.Options.TokenLifetime = TimeSpan.FromSeconds(60 / EcrRateFixture.Scale);
        await EcrRateFixture.SettleAsync();
        ecr.ResetCounters();

        // When 40 images are resolved and exported with no --rate-limit (about 160 pulls: 16 s here, 160 s for real)
        var clock = Stopwatch.StartNew();
        var options = fixture.Options(withCredentials: false);
        Assert.Null(options.RateLimit);
        using var connector = new RegistryConnector(options);
        var lockFile = await Export.Release.ResolveAsync(new ResolveRequest { ManifestPath = fixture.ManifestPath }, connector, NullMirrorLog.Instance);
        var bundle = fixture.Temp.Sub("anonymous.tar");
        var exporter = new BundleExporter(connector, new CopyOptions { Concurrency = 4, Retry = new RetryPolicy(options.Retries, NullMirrorLog.Instance, options.RetryBaseDelay) }, NullMirrorLog.Instance);
        await exporter.ExportAsync(
            new ExportRequest { Lock = lockFile, OutputPath = bundle, CacheDirectory = fixture.Temp.Sub("anonymous-cache") },
            fixture.Key);
        clock.Stop();

        // Then it outlasted the token lifetime, had its tokens refused (400 DENIED) and renewed, kept to the quota,
        // and wrote a bundle of all 40 images that verifies
        Assert.True(clock.Elapsed > ecr.Options.TokenLifetime * 2, $"the run took {clock.Elapsed}, not longer than the token lifetime");
        Assert.True(ecr.Denied400Count > 0, "no token expired during the run");
        var prepared = (EcrRateFixture.ImageCount + RegistryClient.ScopesPerPreparedToken - 1) / RegistryClient.ScopesPerPreparedToken;
        Assert.True(ecr.TokenRequests > prepared, $"{ecr.TokenRequests} token requests: tokens were never renewed");
        Assert.True(ecr.Throttled429Count <= 5, $"{ecr.Throttled429Count} throttled requests");
        Assert.Equal(EcrRateFixture.ScaledQuota.Anonymous, connector.Client(ecr.RegistryHost).RateLimiter.Ceiling);
        var verify = await MirrorCli.RunAsync("verify", bundle, "--key", fixture.PublicKeyPath);
        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.Equal(EcrRateFixture.ImageCount, ImageCount(bundle));
    }

    private async Task<(TimeSpan Elapsed, double? Ceiling)> ResolveAsync(bool withCredentials)
    {
        using var connector = new RegistryConnector(fixture.Options(withCredentials));
        var clock = Stopwatch.StartNew();
        var lockFile = await Export.Release.ResolveAsync(new ResolveRequest { ManifestPath = fixture.ManifestPath }, connector, NullMirrorLog.Instance);
        clock.Stop();
        Assert.Equal(EcrRateFixture.ImageCount, lockFile.Images.Count);
        return (clock.Elapsed, connector.Client(fixture.Ecr.RegistryHost).RateLimiter.Ceiling);
    }

    private static int ImageCount(string bundle)
    {
        using var reader = new TarReader(File.OpenRead(bundle));
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.Name == "openlm-bundle.json")
            {
                using var document = JsonDocument.Parse(entry.DataStream!);
                return document.RootElement.GetProperty("images").GetArrayLength();
            }
        }

        throw new InvalidOperationException($"{bundle} has no openlm-bundle.json");
    }
}
