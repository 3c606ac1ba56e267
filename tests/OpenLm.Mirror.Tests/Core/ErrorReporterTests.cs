using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

/// <summary>The CLI's side of the remedy mechanism: typed remedies and settings from the library become flags.</summary>
public sealed class ErrorReporterTests
{
    [Fact]
    public void ErrorReporter_EveryRemedyAndSetting_HasFlagText()
    {
        // Given every remedy and setting the library can name
        // When the CLI is asked for its words
        // Then each but None has some, and each of those names a flag
        foreach (var remedy in Enum.GetValues<Remedy>().Where(r => r != Remedy.None))
        {
            Assert.Contains("-", ErrorReporter.Hint(remedy, "reg.local") ?? string.Empty, StringComparison.Ordinal);
        }

        foreach (var setting in Enum.GetValues<Setting>().Where(s => s != Setting.None))
        {
            Assert.StartsWith("-", ErrorReporter.Flag(setting) ?? string.Empty, StringComparison.Ordinal);
        }

        Assert.Null(ErrorReporter.Hint(Remedy.None));
        Assert.Null(ErrorReporter.Flag(Setting.None));
    }

    [Theory]
    [InlineData(Remedy.ReleaseKey, "--key release.pub")]
    [InlineData(Remedy.ReleaseKeyOrUnsignedOptOut, "--key release.pub; or, only if you accept whatever the file contains, --insecure-skip-signature")]
    [InlineData(Remedy.UnsignedOptOut, "--insecure-skip-signature")]
    [InlineData(Remedy.Platform, "--platform os/arch")]
    [InlineData(Remedy.TempDirectory, "--temp-dir DIR")]
    [InlineData(Remedy.EngineAddress, "is dockerd running? see --docker-host / DOCKER_HOST")]
    public void ErrorReporter_WithRemedy_AppendsTheFlagInParentheses(Remedy remedy, string hint)
    {
        Assert.Equal($"the message ({hint})", ErrorReporter.WithRemedy("the message", remedy));
    }

    [Fact]
    public void ErrorReporter_Describe_AppendsTheRemedyFlags()
    {
        // Given library errors that carry a remedy
        var untrusted = new OperationException("TLS connection to reg.local failed: untrusted root. The certificate is not trusted: trust the CA that issued it.")
        {
            Remedy = Remedy.TrustCaFile,
            Subject = "reg.local",
        };
        var noCredentials = new OperationException("registry reg.local requires authentication and no credentials were found") { Remedy = Remedy.Credentials, Subject = "reg.local" };
        var exists = new InputException("'out.tar' already exists; remove it or allow overwriting") { Remedy = Remedy.Overwrite, Subject = "out.tar" };

        // When the CLI describes them
        // Then the message is kept and the flag that fixes it follows
        Assert.Equal(
            "TLS connection to reg.local failed: untrusted root. The certificate is not trusted: trust the CA that issued it. " +
            "(pass --ca-file with the CA that issued it, or --insecure to skip verification (not recommended); use --plain-http only for a registry that serves plain HTTP)",
            ErrorReporter.Describe(untrusted));
        Assert.EndsWith("(use --username with --password-stdin, or a Docker config.json entry for reg.local)", ErrorReporter.Describe(noCredentials), StringComparison.Ordinal);
        Assert.Equal("'out.tar' already exists; remove it or allow overwriting (use --force)", CliApp.Describe(exists));
    }

    [Fact]
    public void ErrorReporter_Describe_WrapperKeepsTheRemedyOfItsCause()
    {
        // Given an error that quotes a cause carrying a remedy
        var cause = new OperationException("cannot reach the Docker engine at unix:///x.sock: no socket") { Remedy = Remedy.EngineAddress };
        var wrapper = new OperationException($"load failed: {cause.Message}", cause);

        // When the CLI describes the wrapper
        // Then the cause's advice follows the wrapper's message
        Assert.Equal("load failed: cannot reach the Docker engine at unix:///x.sock: no socket (is dockerd running? see --docker-host / DOCKER_HOST)", ErrorReporter.Describe(wrapper));
    }

    [Fact]
    public void ErrorReporter_Describe_PrefixesTheFlagOfTheSetting()
    {
        // Given a malformed name-mapping rule, refused by the library
        var error = Assert.Throws<InputException>(() => NameMapRule.Parse("docker.io/bitnami"));

        // When the CLI describes it
        var text = ErrorReporter.Describe(error);

        // Then the flag the rule came from leads, and the library text follows
        Assert.Equal(Setting.NameMap, error.Setting);
        Assert.Equal("docker.io/bitnami", error.Subject);
        Assert.StartsWith("--map: invalid name-mapping rule 'docker.io/bitnami': expected FROM=TO", text, StringComparison.Ordinal);
    }

    [Fact]
    public void ErrorReporter_Describe_CollisionNamesTheMapFlag()
    {
        // Given two images that a rule sends to one name
        var mapper = TargetNameMapper.Create("reg.local", ["quay.io/a=x", "quay.io/b=x"]);
        var error = Assert.Throws<InputException>(() => mapper.MapAll([Reference.Parse("quay.io/a/one:1"), Reference.Parse("quay.io/b/one:1")]));

        // When the CLI describes the collision
        // Then it ends with the flag that adds rules
        Assert.Equal(Remedy.NameMapRule, error.Remedy);
        Assert.EndsWith("Add name-mapping rules to give them distinct names. (--map FROM=TO)", ErrorReporter.Describe(error), StringComparison.Ordinal);
    }

    [Fact]
    public void ErrorReporter_Describe_NamesTheFlagOfARefusedSetter()
    {
        // Given values the option setters refuse
        var concurrency = Assert.Throws<ArgumentOutOfRangeException>(() => new CopyOptions { Concurrency = 0 });
        var retries = Assert.Throws<ArgumentOutOfRangeException>(() => new RegistryOptions { Retries = 101 });
        var rate = Assert.Throws<ArgumentOutOfRangeException>(() => new RegistryOptions { RateLimit = -2 });

        // When the CLI describes them
        // Then the flag, the library's rule and the value are named, and it is a usage error
        Assert.Equal("--concurrency must be between 1 and 256 (got 0)", ErrorReporter.Describe(concurrency));
        Assert.Equal("--retries must be between 0 and 100 (got 101)", ErrorReporter.Describe(retries));
        Assert.Equal("--rate-limit must be a positive number of requests per second (got -2)", ErrorReporter.Describe(rate));
        Assert.Equal(ExitCodes.Usage, ExitCodes.For(concurrency));
    }

    [Fact]
    public void ErrorReporter_Describe_LeavesOtherArgumentErrorsAlone()
    {
        // Given an out-of-range error from a parameter that no flag sets
        var other = new ArgumentOutOfRangeException("attempts", 3, "too many");

        // When it is described
        // Then the runtime's own text is kept
        Assert.Equal(other.Message, ErrorReporter.Describe(other));
    }

    [Fact]
    public void ConsoleLog_WarningWithRemedy_NamesTheFlag()
    {
        // Given the CLI's log
        using var error = new StringWriter();
        IMirrorLog log = new ConsoleLog(error, verbose: false);

        // When the library warns with a remedy
        log.Warn("signature not checked: no release key given", Remedy.ReleaseKey);

        // Then the line ends with the flag
        Assert.Equal("warning: signature not checked: no release key given (--key release.pub)", error.ToString().TrimEnd());
    }

    [Fact]
    public void RemedyLog_PlainLog_GetsTheMessageAlone()
    {
        // Given a log that knows nothing of remedies
        var log = new RecordingLog();

        // When the library warns with a remedy
        log.Warn("the signature is not checked", Remedy.UnsignedOptOut);

        // Then the message arrives unchanged, as a warning
        Assert.Equal([(LogLevel.Warning, "the signature is not checked")], log.Lines);
    }

    private sealed class RecordingLog : IMirrorLog
    {
        public List<(LogLevel, string)> Lines { get; } = [];

        public void Write(LogLevel level, string message) => Lines.Add((level, message));
    }
}
