using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Tests.Bundle;
using OpenLm.Mirror.Tests.Cli;
using Xunit;

namespace OpenLm.Mirror.Tests.Preflight;

/// <summary>
/// The preflight command: bad input is exit 2 naming what to give, an unresolvable name (RFC 6761 <c>.invalid</c>: no
/// lookup leaves the machine) is exit 1 naming the host, and the --json report follows its schema.
/// </summary>
public sealed class PreflightCommandTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Preflight_NothingToCheck_Exit2NamingTheThreeInputs()
    {
        var (exit, _, stderr) = await RunAsync("preflight");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("--manifest", stderr, StringComparison.Ordinal);
        Assert.Contains("--lock", stderr, StringComparison.Ordinal);
        Assert.Contains("--to", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preflight_TwoInputs_Exit2()
    {
        var (exit, _, stderr) = await RunAsync("preflight", "--lock", _temp.File("lock.json"), "--to", "registry.corp");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("only one of --manifest, --lock and --to", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preflight_MissingLockFile_Exit2NamingTheFile()
    {
        var path = _temp.File("absent-lock.json");

        var (exit, stdout, _) = await RunAsync("preflight", "--lock", path, "--json");

        Assert.Equal(ExitCodes.Usage, exit);
        var error = JsonContract.Error("preflight", stdout, ExitCodes.Usage, "usage");
        Assert.Contains(path, error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preflight_TargetWithScheme_Exit2()
    {
        var (exit, _, stderr) = await RunAsync("preflight", "--to", "https://registry.corp");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("without a scheme", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preflight_UnresolvableHost_Exit1NamingTheHostAndStillListingIt()
    {
        // Given a target whose name cannot resolve (RFC 6761 reserves .invalid)
        const string host = "airgap-registry.invalid";

        // When preflight checks it with --json
        var (exit, stdout, _) = await RunAsync("preflight", "--to", $"{host}:5000/openlm", "--json");

        // Then exit 1, the DNS verdict names the host, later checks are skipped, and the allow-list still has the line
        Assert.Equal(ExitCodes.Operational, exit);
        var root = JsonContract.Validate("preflight", stdout, ExitCodes.Operational);
        Assert.Equal("preflight-failed", root.GetProperty("error").GetProperty("code").GetString());
        Assert.False(root.GetProperty("reachable").GetBoolean());
        Assert.Equal($"{host}:5000", Assert.Single(root.GetProperty("allowList").EnumerateArray()).GetString());
        var checks = root.GetProperty("checks").EnumerateArray().ToList();
        var dns = Assert.Single(checks, c => c.GetProperty("check").GetString() == "dns");
        Assert.Equal("failed", dns.GetProperty("status").GetString());
        Assert.Contains($"'{host}' does not resolve", dns.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.All(checks.Where(c => c.GetProperty("check").GetString() != "dns"), c => Assert.Equal("skipped", c.GetProperty("status").GetString()));
    }

    [Fact]
    public async Task Preflight_PlainOutput_OneLinePerCheckThenAllowListAndVerdict()
    {
        var (exit, stdout, _) = await RunAsync("preflight", "--to", "registry.invalid");

        Assert.Equal(ExitCodes.Operational, exit);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("failed   dns       registry.invalid:443 ", lines[0], StringComparison.Ordinal);
        Assert.Contains("registry.invalid:443", lines.SkipWhile(l => !l.StartsWith("allow-list", StringComparison.Ordinal)).Skip(1).First(), StringComparison.Ordinal);
        Assert.StartsWith("NOT REACHABLE: 1 of ", lines[^1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preflight_Terminal_AlignedTableWithHeader()
    {
        var (exit, stdout, _) = await RunAsync("preflight", "--progress", "tty", "--to", "registry.invalid");

        Assert.Equal(ExitCodes.Operational, exit);
        var lines = stdout.Split('\n');
        Assert.Matches(@"^ENDPOINT\s+ROLE\s+CHECK\s+VERDICT\s+DETAIL$", lines[0]);
        Assert.Matches(@"^registry\.invalid:443\s+registry\s+dns\s+FAILED\s+host name", lines[1]);
        Assert.Equal(lines[0].IndexOf("CHECK", StringComparison.Ordinal), lines[1].IndexOf("dns", StringComparison.Ordinal));
    }

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, CliConsole.Capture(output, error));
        return (exit, output.ToString(), error.ToString());
    }
}
