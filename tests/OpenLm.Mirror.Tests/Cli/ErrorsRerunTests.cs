using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.Tests.Values;
using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary>Runbooks rerun steps: an output that would come out byte-identical is no conflict; a different one still is.</summary>
public sealed class ErrorsRerunTests(ValuesBundleFixture bundle) : IClassFixture<ValuesBundleFixture>
{
    private const string Target = "registry.corp:5000/openlm";

    private ValuesRequest Request(string dir, VerificationKey key, bool overwrite = false) => new()
    {
        BundlePath = bundle.BundlePath,
        Target = Target,
        Key = key,
        ValuesOutput = Path.Combine(dir, "v.yaml"),
        K3sRegistriesOutput = Path.Combine(dir, "registries.yaml"),
        ContainerdHostsDirectory = Path.Combine(dir, "certs.d"),
        Overwrite = overwrite,
    };

    [Fact]
    public async Task ValuesWorkflow_Rerun_IdenticalOutputs_SucceedsWithoutOverwrite()
    {
        // Given a first run that wrote values, registries.yaml and a hosts.toml tree
        var dir = bundle.NewDirectory();
        using var key = VerificationKey.Load(bundle.PublicKey);
        var first = await ValuesWorkflow.RunAsync(Request(dir, key), NullMirrorLog.Instance);
        var before = File.ReadAllBytes(Path.Combine(dir, "v.yaml"));

        // When the same command runs again without overwrite
        var second = await ValuesWorkflow.RunAsync(Request(dir, key), NullMirrorLog.Instance);

        // Then it succeeds and the files hold the same bytes
        Assert.Equal(first.ContainerdHostsFiles, second.ContainerdHostsFiles);
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(dir, "v.yaml")));
    }

    [Fact]
    public async Task ValuesWorkflow_Rerun_OneOutputChanged_RefusedNamingOnlyThatFile()
    {
        // Given a first run whose registries.yaml was then edited by hand
        var dir = bundle.NewDirectory();
        using var key = VerificationKey.Load(bundle.PublicKey);
        await ValuesWorkflow.RunAsync(Request(dir, key), NullMirrorLog.Instance);
        var registries = Path.Combine(dir, "registries.yaml");
        File.AppendAllText(registries, "# edited\n");

        // When the same command runs again without overwrite
        var error = await Assert.ThrowsAsync<InputException>(() => ValuesWorkflow.RunAsync(Request(dir, key), NullMirrorLog.Instance));

        // Then only the differing file is named, with the overwrite remedy, and it is kept
        Assert.Equal(Remedy.Overwrite, error.Remedy);
        Assert.Equal($"'{registries}'", error.Subject);
        Assert.EndsWith("# edited\n", File.ReadAllText(registries), StringComparison.Ordinal);
    }
}
