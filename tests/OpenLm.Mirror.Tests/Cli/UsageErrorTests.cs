using OpenLm.Mirror.Cli;
using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary>Errors that name the fix: parse errors in the user's words, secrets never echoed, peers' conventions accepted.</summary>
public sealed class UsageErrorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("openlm-usage-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Concurrency_NotANumber_NamesTheFlagWithoutTypeNames()
    {
        var (exit, _, stderr) = await RunAsync("copy", "--concurrency", "abc", "a/b:1", "oci:" + _dir);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("--concurrency: 'abc' is not a whole number", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MistypedFlag_SuggestsTheClosest()
    {
        var (exit, _, stderr) = await RunAsync("copy", "--concurency", "3", "a/b:1", "oci:" + _dir);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("did you mean '--concurrency'?", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MistypedCommand_SuggestsTheClosestAndNothingElse()
    {
        var (exit, _, stderr) = await RunAsync("exprot", "--lock", "l.json");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("did you mean 'export'?", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Required command was not provided", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--password", "s3cret-value")]
    [InlineData("--password=s3cret-value", null)]
    public async Task PasswordArgument_RefusedAndNeverEchoed(string flag, string? value)
    {
        string[] args = value is null ? ["copy", flag, "a/b:1", "oci:x", "--json"] : ["copy", flag, value, "a/b:1", "oci:x", "--json"];

        var (exit, stdout, stderr) = await RunAsync(args);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("--password-stdin", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", stdout + stderr, StringComparison.Ordinal);
        JsonContract.Error("copy", stdout, ExitCodes.Usage, "usage");
    }

    [Fact]
    public async Task DockerTransportPrefix_AcceptedAsARegistryReference()
    {
        // Nothing listens on 127.0.0.1:1: the reference parsed, so the failure is the connection, named once
        var (exit, _, stderr) = await RunAsync("copy", "--plain-http", "--retries", "0", "docker://127.0.0.1:1/team/app:1.0", "oci:" + Path.Combine(_dir, "out"));

        Assert.Equal(ExitCodes.Operational, exit);
        Assert.DoesNotContain("docker:", stderr, StringComparison.Ordinal);
        Assert.Contains("cannot connect to 127.0.0.1:1: connection refused (is a registry listening at 127.0.0.1:1?", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectionRefused_OneErrorLineWithHostAndPortAndACode()
    {
        var (exit, stdout, stderr) = await RunAsync("copy", "--plain-http", "--retries", "0", "127.0.0.1:1/app:1.0", "oci:" + Path.Combine(_dir, "out"), "--json");

        Assert.Equal(ExitCodes.Operational, exit);
        Assert.Single(stderr.Split('\n'), l => l.StartsWith("error: ", StringComparison.Ordinal));
        Assert.DoesNotContain("(Connection refused) (Connection refused)", stderr, StringComparison.Ordinal);
        var error = JsonContract.Error("copy", stdout, 1, "operational");
        Assert.Equal("unreachable", error.GetProperty("code").GetString());
        Assert.Contains("127.0.0.1:1", error.GetProperty("hint").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task LockGivenAsManifest_RecognisedInOneLine()
    {
        var lockPath = Path.Combine(_dir, "lock.json");
        File.WriteAllText(lockPath, """{"schemaVersion": 1, "platform": {"name": "olm", "version": "1"}, "images": [{"reference": "a/b:1", "digest": "sha256:00"}], "charts": [], "blobs": []}""");

        var (exit, _, stderr) = await RunAsync("resolve", "--manifest", lockPath, "-o", Path.Combine(_dir, "out.json"));

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains($"--manifest '{lockPath}' is a lock file", stderr, StringComparison.Ordinal);
        Assert.Contains("--lock", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Resolve_Quiet_KeepsTheErrorAndDropsInformationLines(bool quiet)
    {
        // Given a manifest whose one image is at a loopback port nothing listens on (refused at once)
        var manifest = Path.Combine(_dir, "platform.yaml");
        File.WriteAllText(manifest, """
            apiVersion: mirror.openlm.io/v1
            kind: Platform
            name: olm
            version: "1"
            source: 127.0.0.1:1/openlm
            images:
              - ref: 127.0.0.1:1/openlm/server:1
            """);

        // When resolve runs with and without --quiet (resolve used to ignore --quiet and --verbose)
        string[] args = ["resolve", "--manifest", manifest, "-o", Path.Combine(_dir, "lock.json"), "--plain-http"];
        var (exit, _, stderr) = await RunAsync(quiet ? [.. args, "--quiet"] : args);

        // Then the information line is left out only with --quiet, and the error is printed either way
        Assert.Equal(ExitCodes.Operational, exit);
        Assert.Equal(!quiet, stderr.Contains("resolving 1 images of olm 1", StringComparison.Ordinal));
        Assert.Contains("127.0.0.1:1", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resolve_CacheAndNoCache_IsAUsageErrorBeforeAnyWork()
    {
        var (exit, _, stderr) = await RunAsync("resolve", "--manifest", Path.Combine(_dir, "none.yaml"), "-o", Path.Combine(_dir, "lock.json"), "--cache", Path.Combine(_dir, "c"), "--no-cache");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("--cache DIR or --no-cache, not both", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_dir, "c")));
    }

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, CliConsole.Capture(output, error));
        return (exit, output.ToString(), error.ToString());
    }
}
