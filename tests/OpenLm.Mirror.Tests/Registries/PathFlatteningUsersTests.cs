using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Tests.Load;
using Xunit;

namespace OpenLm.Mirror.Tests.Registries;

/// <summary>
/// Every command that names images under a target takes the import's <c>--max-path-components</c> and hands it to the
/// name mapper: a value no name can fit (the prefix alone is that deep) is refused by the mapper itself, before any
/// engine, registry or socket is touched; the flag without the target it flattens is a usage error.
/// </summary>
public sealed class PathFlatteningUsersTests : IDisposable
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

    [Theory]
    [InlineData("load")]
    [InlineData("serve")]
    [InlineData("inventory")]
    [InlineData("check")]
    [InlineData("values")]
    public async Task Command_MaxPathComponentsNoNameFits_RefusedByTheMapperWithExit2(string command)
    {
        // Given a target prefix of 2 components and a limit of 2 (no image name can fit under it)
        var args = await ArgsAsync(command, "registry.corp/team/apps", "2");

        // When the command runs
        var (exit, _, error) = await RunAsync([.. args]);

        // Then the mapper refused it, naming the prefix and the limit
        Assert.True(exit == ExitCodes.Usage, error);
        Assert.Contains("the target prefix 'team/apps' has 2 path components, but registry.corp takes repositories of at most 2", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("load", "--to")]
    [InlineData("serve", "--to-names")]
    public async Task Command_MaxPathComponentsWithoutTarget_Exits2NamingTheMissingFlag(string command, string needed)
    {
        var args = await ArgsAsync(command, target: null, "3");

        var (exit, _, error) = await RunAsync([.. args]);

        Assert.True(exit == ExitCodes.Usage, error);
        Assert.Contains($"--max-path-components", error, StringComparison.Ordinal);
        Assert.Contains(needed, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_UnknownRegistryKind_Exits2ListingTheKinds()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"));

        var (exit, _, error) = await RunAsync("check", bundle.Path, "--to", "registry.corp/x", "--registry-kind", "gitlub");

        Assert.True(exit == ExitCodes.Usage, error);
        Assert.Contains("--registry-kind must be one of", error, StringComparison.Ordinal);
        Assert.Contains("gitlab", error, StringComparison.Ordinal);
    }

    private async Task<List<string>> ArgsAsync(string command, string? target, string max)
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"));
        var args = command switch
        {
            "load" => new List<string> { "load", bundle.Path, "--key", bundle.PublicKeyPath, "--docker-host", NoEngine },
            "serve" => ["serve", bundle.Path, "--key", bundle.PublicKeyPath, "--addr", "127.0.0.1:0"],
            "inventory" => ["inventory", "--lock", WriteLock(), "-o", _temp.File("receipt.json")],
            "values" => ["values", bundle.Path, "--key", bundle.PublicKeyPath, "-o", _temp.File("values.yaml")],
            _ => [command, bundle.Path, "--key", bundle.PublicKeyPath],
        };
        if (target is not null)
        {
            args.AddRange([command == "serve" ? "--to-names" : "--to", target]);
        }

        args.AddRange(["--max-path-components", max]);
        return args;
    }

    private string WriteLock()
    {
        var path = _temp.File("lock.json");
        File.WriteAllText(path, "{\"lockVersion\":1,\"name\":\"p\",\"version\":\"1\",\"source\":\"public.ecr.aws/r3q3q2f4\",\"images\":[{\"reference\":\"public.ecr.aws/r3q3q2f4/a/b:1\",\"digest\":\"sha256:" + new string('a', 64) + "\",\"sourceDigest\":\"sha256:" + new string('a', 64) + "\",\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}]}");
        return path;
    }
}
