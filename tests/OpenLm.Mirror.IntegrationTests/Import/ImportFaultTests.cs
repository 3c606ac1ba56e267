using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Import;

/// <summary>Targets that need credentials, serve a private CA, or go down in the middle of an import.</summary>
[Trait("Category", "Integration")]
public sealed class ImportFaultTests : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private readonly TlsCertificates _certificates = TlsCertificates.Create();
    private RegistryContainer _auth = null!;
    private RegistryContainer _tls = null!;
    private RegistryContainer _flaky = null!;
    private TestBundle _bundle = null!;

    public async Task InitializeAsync()
    {
        _auth = new RegistryContainer(new RegistryContainerOptions { Users = [new RegistryUser("ops", "import-pass-1")] });
        _tls = new RegistryContainer(new RegistryContainerOptions { Tls = _certificates.ToRegistryTls() });
        _flaky = new RegistryContainer();
        await Task.WhenAll(_auth.StartAsync(), _tls.StartAsync(), _flaky.StartAsync());
        _bundle = await TestBundle.CreateAsync(_temp.Sub("b"), seed: 51);
    }

    public async Task DisposeAsync()
    {
        await Task.WhenAll(_auth.DisposeAsync().AsTask(), _tls.DisposeAsync().AsTask(), _flaky.DisposeAsync().AsTask());
        _certificates.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task Import_TargetNeedsAuthAndNoneGiven_ExitsOneNamingTheRegistry()
    {
        var emptyConfig = _temp.Sub("empty-docker-config");
        Directory.CreateDirectory(emptyConfig);

        var run = await MirrorCli.RunProcessAsync(
            new Dictionary<string, string> { ["DOCKER_CONFIG"] = emptyConfig },
            "import", _bundle.Path, "--key", _bundle.PublicKey, "--to", $"{_auth.Host}/openlm", "--plain-http", "--retries", "0");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains(_auth.Host, run.Error);
        Assert.Contains("credentials", run.Error);
    }

    [Fact]
    public async Task Import_WithCredentials_Works()
    {
        var run = await MirrorCli.RunWithInputAsync("import-pass-1\n", "import", _bundle.Path, "--key", _bundle.PublicKey, "--to", $"{_auth.Host}/openlm", "--plain-http", "--username", "ops", "--password-stdin");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.DoesNotContain("import-pass-1", run.Output + run.Error);
    }

    [Fact]
    public async Task Import_PrivateCaTarget_WorksWithCaFileAndFailsClearlyWithout()
    {
        var without = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", $"{_tls.Host}/openlm", "--retries", "0");
        Assert.Equal(1, without.ExitCode);
        Assert.Contains("--ca-file", without.Error);

        var caFile = _certificates.WriteCaCertificate(_temp.Sub("ca.pem"));
        var with = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", $"{_tls.Host}/openlm", "--ca-file", caFile);
        Assert.True(with.ExitCode == 0, with.ToString());
        var image = _bundle.Platform.Images[0];
        var certDir = _temp.Sub("skopeo-certs");
        Directory.CreateDirectory(certDir);
        File.Copy(caFile, Path.Combine(certDir, "ca.crt"));
        var (exit, output, error) = await Tools.RunAsync("skopeo", "inspect", "--raw", "--cert-dir", certDir, $"docker://{_tls.Host}/openlm/{image.Repository.Split('/', 2)[1]}:{image.Tag}");
        Assert.True(exit == 0, error);
        Assert.Equal(image.Digest, "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(output)));
    }

    [Fact]
    public async Task Import_RegistryRestartsMidImport_ARerunCompletesWithEveryDigest()
    {
        // Given an import slowed down by a client-side rate limit, and the registry restarted while it runs
        var to = $"{_flaky.Host}/openlm";
        var import = MirrorCli.RunProcessAsync(new Dictionary<string, string>(), "import", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, "--plain-http", "--rate-limit", "20", "--retries", "2");
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        await _flaky.RestartAsync();
        var first = await import;

        // Then the interrupted run either recovered by itself or failed cleanly (exit 1, no half-set tags)...
        Assert.True(first.ExitCode is 0 or 1, first.ToString());

        // ...and a rerun completes with every digest in place
        var rerun = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, "--plain-http");
        Assert.True(rerun.ExitCode == 0, rerun.ToString());
        foreach (var image in _bundle.Platform.Images)
        {
            Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{to}/{image.Repository.Split('/', 2)[1]}:{image.Tag}"));
        }
    }
}
