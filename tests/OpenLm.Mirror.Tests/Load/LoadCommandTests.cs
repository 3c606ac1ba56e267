using OpenLm.Mirror.Cli;
using OpenLm.Mirror.EngineLoad;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Signing;
using Xunit;

namespace OpenLm.Mirror.Tests.Load;

/// <summary>The load command's refusals, all before any Docker engine is needed.</summary>
public sealed class LoadCommandTests : IDisposable
{
    private readonly LoadTemp _temp = new();

    public void Dispose() => _temp.Dispose();

    private string NoEngine => "unix://" + _temp.File("no-engine.sock");

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, CliConsole.Capture(output, error));
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Load_NoKeyNoOptOut_Exits3()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"));

        var (exit, output, error) = await RunAsync("load", bundle.Path, "--docker-host", NoEngine);

        Assert.Equal(ExitCodes.Integrity, exit);
        Assert.Contains("--key", error, StringComparison.Ordinal);
        Assert.Contains("--insecure-skip-signature", error, StringComparison.Ordinal);
        Assert.Empty(output);
    }

    [Fact]
    public async Task Load_WrongKey_Exits3BeforeContactingTheEngine()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"));
        KeyPairGenerator.Generate(_temp.File("other"), passphrase: null);

        // The engine address leads nowhere: were it contacted first, the exit code would be 1
        var (exit, _, error) = await RunAsync("load", bundle.Path, "--key", _temp.File("other") + ".pub", "--docker-host", NoEngine);

        Assert.Equal(ExitCodes.Integrity, exit);
        Assert.Contains("does not verify", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Load_RightKeyNoEngine_Exits1NamingTheAddress()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"));

        var (exit, _, error) = await RunAsync("load", bundle.Path, "--key", bundle.PublicKeyPath, "--docker-host", NoEngine);

        Assert.Equal(ExitCodes.Operational, exit);
        Assert.Contains($"cannot reach the Docker engine at {NoEngine}", error, StringComparison.Ordinal);
        Assert.Contains("signature verified", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--insecure-skip-signature", "--key", "KEY")]
    [InlineData("--key", "KEY", "--map", "docker.io=x")]
    [InlineData("--key", "KEY", "--platform", "linux")]
    [InlineData("--key", "KEY", "--to", "https://registry.corp")]
    [InlineData("--key", "KEY", "--docker-host", "ssh://engine")]
    [InlineData("--key", "KEY", "--docker-host", "tcp://127.0.0.1")]
    [InlineData("--key", "KEY", "--temp-dir", "/no/such/directory")]
    public async Task Load_BadUsage_Exits2(params string[] options)
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"));
        var args = options.Select(o => o == "KEY" ? bundle.PublicKeyPath : o).ToList();
        if (!args.Contains("--docker-host"))
        {
            args.AddRange(["--docker-host", NoEngine]);
        }

        var (exit, _, error) = await RunAsync(["load", bundle.Path, .. args]);

        Assert.True(exit == ExitCodes.Usage, error);
    }

    [Fact]
    public async Task Load_MissingBundle_Exits2()
    {
        var (exit, _, error) = await RunAsync("load", _temp.File("nope.tar"), "--insecure-skip-signature", "--docker-host", NoEngine);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("does not exist", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("unix:///run/docker.sock", "unix:///run/docker.sock")]
    [InlineData("/run/docker.sock", "unix:///run/docker.sock")]
    [InlineData("tcp://127.0.0.1:2375", "tcp://127.0.0.1:2375")]
    public void DockerHost_Parse_AcceptsSocketsAndTcp(string given, string expected)
    {
        Assert.Equal(expected, DockerHost.Parse(given, _ => null).OriginalString);
    }

    [Fact]
    public void DockerHost_Default_IsDockerHostElseTheStandardSocket()
    {
        Assert.Equal("tcp://127.0.0.1:2375", DockerHost.Default(name => name == "DOCKER_HOST" ? "tcp://127.0.0.1:2375" : null));
        Assert.Equal(DockerHost.DefaultUnixSocket, DockerHost.Default(_ => null));
        Assert.Throws<InputException>(() => DockerHost.Parse("tcp://127.0.0.1:2376", name => name == "DOCKER_TLS_VERIFY" ? "1" : null));
    }
}
