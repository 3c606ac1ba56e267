using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Signing;
using Xunit;
using static OpenLm.Mirror.Tests.Values.ValuesBundleFixture;

namespace OpenLm.Mirror.Tests.Values;

/// <summary>The library facades behind <c>values</c> and <c>check</c>, without the CLI: typed results and remedies.</summary>
public sealed class ValuesWorkflowTests(ValuesBundleFixture bundle) : IClassFixture<ValuesBundleFixture>
{
    private const string Target = "registry.corp:5000/openlm";

    [Fact]
    public async Task ValuesWorkflow_RunAsync_WritesOverridesAndReportsWhatItDid()
    {
        // Given a signed bundle and its key
        var dir = bundle.NewDirectory();
        using var key = VerificationKey.Load(bundle.PublicKey);
        var log = new RemedyRecordingLog();

        // When the values and a containerd tree are asked for
        var result = await ValuesWorkflow.RunAsync(
            new ValuesRequest { BundlePath = bundle.BundlePath, Target = Target, Key = key, ValuesOutput = Path.Combine(dir, "v.yaml"), ContainerdHostsDirectory = Path.Combine(dir, "certs.d") },
            log);

        // Then the result names the verified bundle, each values path and every hosts.toml written; the only warning is
        // about the images containerd cannot redirect (the target prefix renames them), which the result lists too
        Assert.True(result.Head.SignatureChecked);
        Assert.Equal(4, result.ImageUses.Count);
        Assert.False(result.RewroteInPlace);
        Assert.NotEmpty(result.ContainerdHostsFiles);
        Assert.All(result.ContainerdHostsFiles, f => Assert.True(File.Exists(f), f));
        Assert.True(File.Exists(Path.Combine(dir, "v.yaml")));
        Assert.NotEmpty(result.NotRedirected);
        var warning = Assert.Single(log.Lines);
        Assert.StartsWith($"containerd cannot redirect {result.NotRedirected.Count} image(s)", warning.Message, StringComparison.Ordinal);
        Assert.Contains(result.Roots, r => r.IsChart && r.Source.ToString() == Chart);
    }

    [Fact]
    public async Task ValuesWorkflow_RunAsync_WithoutKey_WarnsWithTheReleaseKeyRemedy()
    {
        var log = new RemedyRecordingLog();

        await ValuesWorkflow.RunAsync(new ValuesRequest { BundlePath = bundle.BundlePath, Target = Target, ValuesOutput = Path.Combine(bundle.NewDirectory(), "v.yaml") }, log);

        var (level, message, remedy) = Assert.Single(log.Lines);
        Assert.Equal(LogLevel.Warning, level);
        Assert.StartsWith("signature not checked", message, StringComparison.Ordinal);
        Assert.Equal(Remedy.ReleaseKey, remedy);
    }

    [Fact]
    public async Task ValuesWorkflow_RunAsync_ExistingOutput_RefusedWithOverwriteRemedyBeforeWriting()
    {
        // Given an existing values file and a registries.yaml that does not exist yet
        var dir = bundle.NewDirectory();
        var output = Path.Combine(dir, "v.yaml");
        File.WriteAllText(output, "keep: me\n");
        var request = new ValuesRequest { BundlePath = bundle.BundlePath, Target = Target, ValuesOutput = output, K3sRegistriesOutput = Path.Combine(dir, "r.yaml") };

        // When the workflow runs without overwrite
        var error = await Assert.ThrowsAsync<InputException>(() => ValuesWorkflow.RunAsync(request, NullMirrorLog.Instance));

        // Then it names the file and the remedy, and wrote neither output
        Assert.Equal(Remedy.Overwrite, error.Remedy);
        Assert.Equal($"'{output}'", error.Subject);
        Assert.Equal("keep: me\n", File.ReadAllText(output));
        Assert.False(File.Exists(Path.Combine(dir, "r.yaml")));
    }

    [Fact]
    public async Task ValuesWorkflow_RunAsync_MissingValuesInput_NamesTheSetting()
    {
        var dir = bundle.NewDirectory();
        var input = Path.Combine(dir, "missing.yaml");

        var error = await Assert.ThrowsAsync<InputException>(() => ValuesWorkflow.RunAsync(
            new ValuesRequest { BundlePath = bundle.BundlePath, Target = Target, ValuesInput = input, ValuesOutput = Path.Combine(dir, "v.yaml") },
            NullMirrorLog.Instance));

        Assert.Equal(Setting.ValuesInput, error.Setting);
        Assert.Equal(input, error.Subject);
        Assert.DoesNotContain("--", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ValuesWorkflow_RunAsync_NothingAskedFor_RefusedBeforeReadingTheBundle()
    {
        // The bundle path leads nowhere: were it read first, the error would be about the file
        var error = await Assert.ThrowsAsync<InputException>(() => ValuesWorkflow.RunAsync(
            new ValuesRequest { BundlePath = Path.Combine(bundle.NewDirectory(), "none.tar"), Target = Target },
            NullMirrorLog.Instance));

        Assert.StartsWith("nothing to write", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AirGapBundle_OpenAsync_Collision_RefusedWithNameMapRemedy()
    {
        // Given a rule that sends olm-worker to olm-server's name
        var maps = new[] { $"{Source}/olm-worker=olm-server" };

        // When the bundle is opened for that target
        var error = await Assert.ThrowsAsync<InputException>(() => AirGapBundle.OpenAsync(bundle.BundlePath, Target, maps, null, NullMirrorLog.Instance));

        // Then the collision is refused with the remedy of adding rules
        Assert.Equal(Remedy.NameMapRule, error.Remedy);
        Assert.Contains(Worker, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Values_Cli_MissingValuesInput_NamesTheFlag()
    {
        var dir = bundle.NewDirectory();
        var input = Path.Combine(dir, "missing.yaml");

        var (exit, _, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "--values", input, "-o", Path.Combine(dir, "v.yaml"));

        Assert.Equal(2, exit);
        Assert.Contains($"error: --values: values file '{input}' does not exist", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Values_Cli_NoKey_WarningNamesTheKeyFlag()
    {
        var (exit, _, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "-o", Path.Combine(bundle.NewDirectory(), "v.yaml"));

        Assert.Equal(0, exit);
        Assert.Contains("is the bundle your vendor released (--key release.pub)", stderr, StringComparison.Ordinal);
    }

    private sealed class RemedyRecordingLog : IRemedyLog
    {
        public List<(LogLevel Level, string Message, Remedy Remedy)> Lines { get; } = [];

        public void Write(LogLevel level, string message, Remedy remedy) => Lines.Add((level, message, remedy));

        public void Write(LogLevel level, string message)
        {
            if (level != LogLevel.Debug)
            {
                Lines.Add((level, message, Remedy.None));
            }
        }
    }
}
