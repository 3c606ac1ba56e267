using System.Text;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Copy;

/// <summary>Registries that need credentials (htpasswd) or serve TLS with a private CA.</summary>
[Trait("Category", "Integration")]
public sealed class CopyAuthAndTlsTests : IAsyncLifetime
{
    private const string User = "mirror";
    private const string Password = "s3cret-Pa55";
    private readonly TempDir _temp = new();
    private readonly TlsCertificates _certificates = TlsCertificates.Create();
    private RegistryContainer _auth = null!;
    private RegistryContainer _tls = null!;
    private GeneratedPlatform _platform = null!;

    public async Task InitializeAsync()
    {
        _auth = new RegistryContainer(new RegistryContainerOptions { Users = [new RegistryUser(User, Password)] });
        _tls = new RegistryContainer(new RegistryContainerOptions { Tls = _certificates.ToRegistryTls() });
        await Task.WhenAll(_auth.StartAsync(), _tls.StartAsync());
        _platform = SamplePlatform.Small(seed: 31).WriteLayout(_temp.Sub("src"));
    }

    public async Task DisposeAsync()
    {
        await _auth.DisposeAsync();
        await _tls.DisposeAsync();
        _certificates.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task Copy_BasicAuthRegistry_UsesDockerConfigJson()
    {
        // Given a Docker config.json with base64 credentials for the registry
        var configDir = _temp.Sub("docker-config");
        Directory.CreateDirectory(configDir);
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{User}:{Password}"));
        File.WriteAllText(Path.Combine(configDir, "config.json"), "{\"auths\":{\"" + _auth.Host + "\":{\"auth\":\"" + auth + "\"}}}");
        var image = _platform.Images[0];
        var target = $"{_auth.Host}/auth/{image.Reference}";

        // When copying into it with DOCKER_CONFIG pointing there
        var run = await MirrorCli.RunProcessAsync(
            new Dictionary<string, string> { ["DOCKER_CONFIG"] = configDir },
            "copy", "--plain-http", $"oci:{_platform.Directory}:{image.Reference}", target);

        // Then it succeeds with the source digest, and the password never appears in the output
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains(image.Digest, run.Output);
        Assert.DoesNotContain(Password, run.Output + run.Error);
    }

    [Fact]
    public async Task Copy_BasicAuthRegistry_UsernameAndPasswordStdin()
    {
        var image = _platform.Images[1];
        var run = await MirrorCli.RunWithInputAsync(
            Password + "\n",
            "copy", "--plain-http", "--username", User, "--password-stdin", $"oci:{_platform.Directory}:{image.Reference}", $"{_auth.Host}/stdin/{image.Reference}");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains(image.Digest, run.Output);
    }

    [Fact]
    public async Task Copy_BasicAuthRegistryWithoutCredentials_ExitsOneNamingTheRegistry()
    {
        var emptyConfig = _temp.Sub("no-config");
        Directory.CreateDirectory(emptyConfig);
        var image = _platform.Images[0];
        var run = await MirrorCli.RunProcessAsync(
            new Dictionary<string, string> { ["DOCKER_CONFIG"] = emptyConfig },
            "copy", "--plain-http", "--retries", "0", $"oci:{_platform.Directory}:{image.Reference}", $"{_auth.Host}/noauth/{image.Reference}");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains(_auth.Host, run.Error);
        Assert.Contains("credentials", run.Error);
    }

    [Fact]
    public async Task Copy_WrongPassword_ExitsOneWithoutLeakingIt()
    {
        var image = _platform.Images[0];
        var run = await MirrorCli.RunWithInputAsync(
            "wrong-password-123\n",
            "copy", "--plain-http", "--retries", "0", "--username", User, "--password-stdin", $"oci:{_platform.Directory}:{image.Reference}", $"{_auth.Host}/wrong/{image.Reference}");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("401", run.Error);
        Assert.DoesNotContain("wrong-password-123", run.Error + run.Output);
    }

    [Fact]
    public async Task Copy_PrivateCaRegistry_WorksWithCaFile()
    {
        var caFile = _certificates.WriteCaCertificate(_temp.Sub("ca.pem"));
        var image = _platform.Images[2];
        var target = $"{_tls.Host}/tls/{image.Reference}";

        var run = await MirrorCli.RunAsync("copy", "--ca-file", caFile, $"oci:{_platform.Directory}:{image.Reference}", target);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains(image.Digest, run.Output);
    }

    [Fact]
    public async Task Copy_PrivateCaRegistryWithoutCaFile_FailsClearly()
    {
        var image = _platform.Images[2];

        var run = await MirrorCli.RunAsync("copy", "--retries", "0", $"oci:{_platform.Directory}:{image.Reference}", $"{_tls.Host}/tls-no-ca/{image.Reference}");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("--ca-file", run.Error);
        Assert.Contains(_tls.Host, run.Error);
    }
}
