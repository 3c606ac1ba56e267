using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Errors;
using Xunit;

namespace OpenLm.Mirror.Tests.Load;

/// <summary>
/// <c>load</c> and <c>node-archive</c> take a split bundle by its base name (<c>NAME</c> for <c>NAME.001</c>, …), as
/// verify, import and values do; a name that is neither a file nor the base of parts is still refused with exit 2.
/// </summary>
public sealed class SplitBundleBaseNameTests : IDisposable
{
    private readonly LoadTemp _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Load_SplitBundleByBaseName_PassesTheFileCheckAndTheSignatureAndReachesTheEngine()
    {
        // Given a bundle rewritten as parts NAME.001, NAME.002, … and no single file NAME
        var (baseName, key) = await SplitAsync();
        Assert.False(File.Exists(baseName));
        var engine = "unix://" + _temp.File("no-engine.sock");

        // When load is given the base name
        var (exit, _, error) = await RunAsync("load", baseName, "--key", key, "--docker-host", engine);

        // Then the parts were read and verified (a missing or unsigned bundle would exit 2 or 3): only the engine is missing
        Assert.Equal(ExitCodes.Operational, exit);
        Assert.Contains($"cannot reach the Docker engine at {engine}", error, StringComparison.Ordinal);
        Assert.DoesNotContain("does not exist", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NodeArchive_SplitBundleByBaseName_WritesTheArchive()
    {
        // Given a bundle rewritten as parts
        var (baseName, key) = await SplitAsync();
        var output = _temp.File("images.tar.zst");

        // When node-archive is given the base name
        var (exit, _, error) = await RunAsync("node-archive", baseName, "--key", key, "-o", output);

        // Then the archive is written from the parts
        Assert.True(exit == ExitCodes.Success, error);
        Assert.True(new FileInfo(output).Length > 0);
    }

    [Theory]
    [InlineData("load")]
    [InlineData("node-archive")]
    public async Task MissingName_NeitherFileNorParts_Exits2NamingIt(string command)
    {
        // Given a name with no file and no NAME.001 next to it
        var missing = _temp.File("absent.tar");
        string[] args = command == "load"
            ? ["load", missing, "--insecure-skip-signature", "--docker-host", "unix://" + _temp.File("no-engine.sock")]
            : ["node-archive", missing, "--insecure-skip-signature", "-o", _temp.File("out.tar.zst")];

        // When the command runs
        var (exit, _, error) = await RunAsync(args);

        // Then it is refused as bad input, naming the path
        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains($"bundle '{missing}' does not exist", error, StringComparison.Ordinal);
    }

    private async Task<(string BaseName, string PublicKey)> SplitAsync()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"));
        var baseName = _temp.File("split.tar");
        var partSize = Math.Max(new FileInfo(bundle.Path).Length / 3, 16 * 1024);
        var written = await BundleSplitter.RewriteAsync(bundle.Path, bundle.Key, baseName, partSize, overwrite: false);
        Assert.True(written.PartPaths.Count > 1, "the sample bundle must split into several parts");
        return (baseName, bundle.PublicKeyPath);
    }

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, CliConsole.Capture(output, error));
        return (exit, output.ToString(), error.ToString());
    }
}
