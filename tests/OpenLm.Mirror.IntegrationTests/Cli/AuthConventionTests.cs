using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Cli;

/// <summary>The auth conventions of docker, skopeo and podman against a registry that needs a password (htpasswd).</summary>
[Trait("Category", "Integration")]
public sealed class AuthConventionTests : IAsyncLifetime
{
    private const string User = "mirror";
    private const string Password = "s3cret-Pa55";
    private readonly TempDir _temp = new();
    private RegistryContainer _auth = null!;
    private GeneratedPlatform _platform = null!;

    public async Task InitializeAsync()
    {
        _auth = new RegistryContainer(new RegistryContainerOptions { Users = [new RegistryUser(User, Password)] });
        await _auth.StartAsync();
        _platform = SamplePlatform.Small(seed: 41).WriteLayout(_temp.Sub("src"));
    }

    public async Task DisposeAsync()
    {
        await _auth.DisposeAsync();
        _temp.Dispose();
    }

    [Fact]
    public async Task LoginThenCopyWithAuthFile_UsesTheStoredCredentials()
    {
        var authFile = _temp.Sub("auth.json");
        var login = await MirrorCli.RunWithInputAsync(Password + "\n", "login", _auth.Host, "-u", User, "--password-stdin", "--authfile", authFile);
        Assert.True(login.ExitCode == 0, login.ToString());
        var image = _platform.Images[0];

        var copy = await MirrorCli.RunAsync("copy", "--plain-http", "--authfile", authFile, $"oci:{_platform.Directory}:{image.Reference}", $"{_auth.Host}/login/{image.Reference}");

        Assert.True(copy.ExitCode == 0, copy.ToString());
        Assert.DoesNotContain(Password, login.Output + login.Error + copy.Output + copy.Error);
    }

    [Fact]
    public async Task Copy_DestCredsWithPasswordOnStdin_AuthenticatesTheDestinationOnly()
    {
        var image = _platform.Images[1];

        var copy = await MirrorCli.RunWithInputAsync(Password + "\n", "copy", "--plain-http", "--dest-creds", User, $"oci:{_platform.Directory}:{image.Reference}", $"{_auth.Host}/dest/{image.Reference}");

        Assert.True(copy.ExitCode == 0, copy.ToString());
        Assert.Contains(image.Digest, copy.Output);
    }

    [Fact]
    public async Task Copy_DestCredsWrongPassword_Exit1WithoutTheSecret()
    {
        var image = _platform.Images[2];

        var copy = await MirrorCli.RunWithInputAsync("not-the-password\n", "copy", "--plain-http", "--retries", "0", "--dest-creds", User, $"oci:{_platform.Directory}:{image.Reference}", $"{_auth.Host}/wrong/{image.Reference}");

        Assert.True(copy.ExitCode == 1, copy.ToString());
        Assert.DoesNotContain("not-the-password", copy.Output + copy.Error);
    }
}
