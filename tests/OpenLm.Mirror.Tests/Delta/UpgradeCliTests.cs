using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Errors;
using Xunit;

namespace OpenLm.Mirror.Tests.Delta;

/// <summary>The upgrade commands' bad input at the CLI: exit codes and messages naming the flag, before anything runs.</summary>
public sealed class UpgradeCliTests(DeltaReleases releases) : IClassFixture<DeltaReleases>
{
    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, CliConsole.Capture(output, error));
        return (exit, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("10M")]
    [InlineData("4 gigs")]
    [InlineData("0")]
    public async Task Export_BadSplitSize_Exit2NamingTheFlag(string size)
    {
        var (exit, _, error) = await RunAsync("export", "--lock", releases.Scratch("no-lock.json"), "--key", releases.Scratch("no.key"), "-o", releases.Scratch("x.tar"), "--split-size", size);
        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains(size.Trim(), error, StringComparison.Ordinal);
        Assert.Contains("--split-size", error, StringComparison.Ordinal);
    }

    [Fact]
    public void ExitCodes_IncompleteTarget_Is4()
    {
        Assert.Equal(4, ExitCodes.Incomplete);
        Assert.Equal(ExitCodes.Incomplete, ExitCodes.For(new IncompleteTargetException("the target is incomplete")));
    }

    [Fact]
    public async Task Verify_Delta_SaysWhatItDidNotCheck()
    {
        var pub = releases.Scratch($"release-{Guid.NewGuid():N}.pub");
        await File.WriteAllTextAsync(pub, releases.Key.ExportPem());
        var (exit, output, error) = await RunAsync("verify", releases.DeltaV2, "--key", pub);
        Assert.True(exit == 0, error);
        Assert.Contains("delta bundle", output, StringComparison.Ordinal);
        Assert.Contains("NOT checked", output, StringComparison.Ordinal);
        Assert.Contains("bundle of openlm-platform 1.0", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Diff_TwoBundles_TableNamesTheChangedAndAddedImages()
    {
        var (exit, output, error) = await RunAsync("diff", releases.FullV1, releases.FullV2);
        Assert.True(exit == 0, error);
        Assert.Contains("changed", output, StringComparison.Ordinal);
        Assert.Contains("added", output, StringComparison.Ordinal);
        Assert.Contains("a delta over OLD carries", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Diff_NotAReleaseFile_Exit2()
    {
        var junk = releases.Scratch($"junk-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(junk, "[1, 2, 3]");
        var (exit, _, error) = await RunAsync("diff", junk, releases.FullV2);
        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains(junk, error, StringComparison.Ordinal);
    }
}
