using System.Formats.Tar;
using System.Text;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Export;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Signing;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Release;

/// <summary>
/// One real Distribution registry behind the ECR Public emulator (tokens, 400 DENIED, CDN redirects) behind our
/// <see cref="FaultProxy"/>, seeded with 16 images that are 2-arch indexes; the fault-free resolve + export is the baseline.
/// </summary>
public sealed class FaultMatrixFixture : IAsyncLifetime
{
    /// <summary>The test collection sharing one fixture (the matrix and the export keep-going tests).</summary>
    public const string Collection = "fault-matrix";

    public const int ImageCount = 16;
    private RegistryProcess? _registry;
    private EcrPublicEmulator? _ecr;
    private FaultProxy? _proxy;

    public TempDir Temp { get; } = new();

    public FaultProxy Proxy => _proxy!;

    public EcrPublicEmulator Ecr => _ecr!;

    public string ManifestPath => Temp.Sub("platform.yaml");

    public SigningKey Key { get; private set; } = null!;

    public string PublicKeyPath { get; private set; } = null!;

    public string PrivateKeyPath { get; private set; } = null!;

    /// <summary>Where the fault-free run saved its lock.</summary>
    public string BaselineLockPath => Temp.Sub("baseline-lock.json");

    public string BaselineLock { get; private set; } = null!;

    public byte[] BaselineHead { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _registry = await RegistryProcess.StartAsync();
        using (var http = RegistrySeeder.CreateClient())
        {
            for (var i = 0; i < ImageCount; i++)
            {
                await PushTwoArchIndexAsync(http, _registry.BaseAddress, $"fault/app{i:00}", "1.0", seed: 100 + i);
            }
        }

        _ecr = new EcrPublicEmulator(_registry.BaseAddress);
        await _ecr.StartAsync();
        _proxy = new FaultProxy(_ecr.BaseAddress);
        await _proxy.StartAsync();

        var images = string.Join('\n', Enumerable.Range(0, ImageCount).Select(i => $"  - name: app{i:00}\n    tag: \"1.0\""));
        File.WriteAllText(ManifestPath, $"apiVersion: mirror.openlm.io/v1\nkind: Platform\nname: fault-platform\nversion: \"1.0.0\"\nsource: {_proxy.RegistryHost}/fault\nimages:\n{images}\n");
        var pair = KeyPairGenerator.Generate(Temp.Sub("release"), passphrase: null);
        (Key, PublicKeyPath, PrivateKeyPath) = (SigningKey.Load(pair.PrivateKeyPath), pair.PublicKeyPath, pair.PrivateKeyPath);
        (BaselineLock, BaselineHead, _) = await RunAsync("baseline");
    }

    /// <summary>Resolves and exports the platform through the proxy with fresh clients and a fresh cache.</summary>
    public async Task<(string Lock, byte[] Head, TimeSpan Elapsed)> RunAsync(string name)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var options = new RegistryOptions { PlainHttp = true, RetryBaseDelay = TimeSpan.FromMilliseconds(20), Retries = 4 };
        using var connector = new RegistryConnector(options);
        var lockFile = await Export.Release.ResolveAsync(new ResolveRequest { ManifestPath = ManifestPath }, connector, NullMirrorLog.Instance);
        var lockPath = Temp.Sub(name + "-lock.json");
        lockFile.Save(lockPath);
        var bundle = Temp.Sub(name + ".tar");
        var exporter = new BundleExporter(connector, new CopyOptions { Concurrency = 6, Retry = new RetryPolicy(options.Retries, NullMirrorLog.Instance, options.RetryBaseDelay) }, NullMirrorLog.Instance);
        await exporter.ExportAsync(
            new ExportRequest
            {
                Lock = lockFile,
                OutputPath = bundle,
                CacheDirectory = Temp.Sub(name + "-cache"),
                WriteOptions = new BundleWriteOptions { SourceDateEpoch = DateTimeOffset.FromUnixTimeSeconds(1_780_000_000) },
            },
            Key);
        var verify = await MirrorCli.RunAsync("verify", bundle, "--key", PublicKeyPath);
        Assert.True(verify.ExitCode == 0, verify.ToString());
        return (File.ReadAllText(lockPath), ReadHead(bundle), clock.Elapsed);
    }

    public async Task DisposeAsync()
    {
        Key?.Dispose();
        if (_proxy is not null)
        {
            await _proxy.DisposeAsync();
        }

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

    private static byte[] ReadHead(string bundle)
    {
        using var reader = new TarReader(File.OpenRead(bundle));
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.Name == "openlm-bundle.json")
            {
                using var copy = new MemoryStream();
                entry.DataStream!.CopyTo(copy);
                return copy.ToArray();
            }
        }

        throw new InvalidOperationException($"{bundle} has no openlm-bundle.json");
    }

    private static async Task PushTwoArchIndexAsync(HttpClient http, Uri registry, string repository, string tag, int seed)
    {
        var children = new List<string>();
        foreach (var (arch, offset) in new[] { ("amd64", 0), ("arm64", 1000) })
        {
            var image = await RegistrySeeder.PushImageAsync(http, registry, repository, $"{tag}-{arch}", layerSize: 4096, seed: seed + offset);
            children.Add($"{{\"mediaType\":\"{image.ManifestMediaType}\",\"digest\":\"{image.ManifestDigest}\",\"size\":{image.Manifest.Length},\"platform\":{{\"architecture\":\"{arch}\",\"os\":\"linux\"}}}}");
        }

        const string IndexType = "application/vnd.oci.image.index.v1+json";
        var index = Encoding.UTF8.GetBytes($"{{\"schemaVersion\":2,\"mediaType\":\"{IndexType}\",\"manifests\":[{string.Join(',', children)}]}}");
        await RegistrySeeder.PushManifestAsync(http, registry, repository, tag, index, IndexType);
    }
}

/// <summary>
/// The fault matrix: each row resolves and exports all 16 images through one kind of fault and must produce exactly the
/// fault-free lock and <c>openlm-bundle.json</c> (faults are drawn from a seeded hash of each request, so rows are repeatable).
/// </summary>
[CollectionDefinition(FaultMatrixFixture.Collection)]
public sealed class FaultMatrixCollection : ICollectionFixture<FaultMatrixFixture>;

[Trait("Category", "Integration")]
[Collection(FaultMatrixFixture.Collection)]
public sealed class FaultMatrixTests(FaultMatrixFixture fixture)
{
    public static TheoryData<string> Rows => ["429 Retry-After", "429", "503", "token expiry", "resets", "latency"];

    [Theory]
    [MemberData(nameof(Rows))]
    public async Task ResolveExport_UnderFault_SameLockAndBundleHeadAsFaultFree(string row)
    {
        // Given the proxy injecting one kind of fault
        var faults = fixture.Proxy.Options;
        faults.Clear();
        fixture.Proxy.Reset();
        switch (row)
        {
            case "429 Retry-After":
                (faults.FailStatus, faults.FailProbability, faults.RetryAfterSeconds) = (429, 0.5, 1);
                break;
            case "429":
                (faults.FailStatus, faults.FailProbability) = (429, 0.5);
                break;
            case "503":
                (faults.FailStatus, faults.FailProbability) = (503, 0.5);
                break;
            case "token expiry":
                faults.ExpireTokenEveryNth = 7;
                break;
            case "resets":
                faults.ResetProbability = 0.5;
                fixture.Ecr.Options.ResetProbability = 0.5;
                break;
            case "latency":
                faults.Latency = TimeSpan.FromMilliseconds(50);
                break;
        }

        try
        {
            // When the release is resolved and exported through it
            var (lockJson, head, _) = await fixture.RunAsync("row-" + row.Replace(' ', '-'));

            // Then faults really happened, and the result is byte-identical to the fault-free run
            var injected = row switch
            {
                "token expiry" => fixture.Proxy.ExpiredTokens,
                "resets" => fixture.Proxy.Resets + fixture.Ecr.ResetsInjected,
                "latency" => fixture.Proxy.Requests,
                _ => fixture.Proxy.FailedResponses,
            };
            Assert.True(injected > 10, $"only {injected} faults injected in row {row}");
            if (row == "token expiry")
            {
                // The issue's row: expiry hits token requests and a repository's first (token-less) request too. With
                // tokens prepared for all repositories at once, a repository's first request carries one: token-less
                // requests are then the challenge probe alone, too few for every 7th of them to be refused.
                var tokenLess = fixture.Proxy.RequestsWithoutToken;
                Assert.True(fixture.Proxy.ExpiredTokenRequests > 0 && (fixture.Proxy.ExpiredWithoutToken > 0 || tokenLess < fixture.Proxy.Options.ExpireTokenEveryNth), $"{fixture.Proxy.ExpiredTokenRequests} token requests and {fixture.Proxy.ExpiredWithoutToken} of {tokenLess} token-less requests refused");
            }

            Assert.Equal(FaultMatrixFixture.ImageCount, System.Text.Json.JsonDocument.Parse(lockJson).RootElement.GetProperty("images").GetArrayLength());
            Assert.Equal(fixture.BaselineLock, lockJson);
            Assert.Equal(Encoding.UTF8.GetString(fixture.BaselineHead), Encoding.UTF8.GetString(head));
        }
        finally
        {
            faults.Clear();
            fixture.Ecr.Options.ResetProbability = 0;
        }
    }

    [Fact]
    public async Task Resolve_RegistryNeverRecovers_FailsWithinTimeoutListingEveryImageWithItsErrorCodeAndWritesNoLock()
    {
        // Given a registry answering 503 to everything
        var faults = fixture.Proxy.Options;
        faults.Clear();
        fixture.Proxy.Reset();
        (faults.FailStatus, faults.FailProbability) = (503, 1.0);
        var lockPath = fixture.Temp.Sub("never-lock.json");
        try
        {
            // When resolve runs with a short time budget
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var run = await MirrorCli.RunAsync("resolve", "--plain-http", "--manifest", fixture.ManifestPath, "-o", lockPath, "--retries", "1", "--timeout", "4s");

            // Then it gives up near the budget with exit 1, names all 16 images with the registry's code, and writes nothing
            Assert.True(run.ExitCode == 1, run.ToString());
            Assert.Contains($"{FaultMatrixFixture.ImageCount} of {FaultMatrixFixture.ImageCount} images could not be resolved", run.Error, StringComparison.Ordinal);
            for (var i = 0; i < FaultMatrixFixture.ImageCount; i++)
            {
                Assert.Contains($"[UNAVAILABLE] {fixture.Proxy.RegistryHost}/fault/app{i:00}:1.0", run.Error, StringComparison.Ordinal);
            }

            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
            Assert.False(File.Exists(lockPath));
        }
        finally
        {
            faults.Clear();
        }
    }
}
