using System.Diagnostics;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Tests.Values;
using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary>Output paths are checked before any work, with one policy: no device, FIFO or directory is ever replaced.</summary>
public sealed class OutputPathTests(ValuesBundleFixture bundle) : IClassFixture<ValuesBundleFixture>
{
    private const string Target = "registry.corp:5000/openlm";

    [Fact]
    public async Task Values_DevNullWithForce_RefusedAndTheDeviceStays()
    {
        var (exit, _, stderr) = await ValuesBundleFixture.RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "-o", "/dev/null", "--force");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("-o: '/dev/null' is a device, not a regular file; it is never replaced", stderr, StringComparison.Ordinal);
        Assert.True(await TestAsync("-c", "/dev/null"), "/dev/null is no longer a character device");
    }

    [Fact]
    public async Task Values_FifoWithForce_RefusedAndTheFifoStays()
    {
        var fifo = Path.Combine(bundle.NewDirectory(), "values.fifo");
        using (var mkfifo = Process.Start("mkfifo", fifo))
        {
            await mkfifo.WaitForExitAsync();
        }

        var (exit, _, stderr) = await ValuesBundleFixture.RunAsync("values", bundle.BundlePath, "--to", Target, "-o", fifo, "--force", "--k3s-registries-out", Path.Combine(Path.GetDirectoryName(fifo)!, "r.yaml"));

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains($"'{fifo}' is a FIFO", stderr, StringComparison.Ordinal);
        Assert.True(await TestAsync("-p", fifo), "the FIFO was replaced");
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(fifo)!, "r.yaml")), "another output was written although one was refused");
    }

    [Fact]
    public async Task Export_ParentIsAFile_RefusedBeforeAnyNetworkRequest()
    {
        // Given a manifest whose source nothing listens on: reaching the network would fail differently
        var dir = bundle.NewDirectory();
        var file = Path.Combine(dir, "not-a-dir");
        File.WriteAllText(file, "x");
        var manifest = Path.Combine(dir, "platform.yaml");
        File.WriteAllText(manifest, "apiVersion: mirror.openlm.io/v1\nkind: Platform\nname: olm\nversion: \"1\"\nsource: 127.0.0.1:1/olm\nimages:\n  - name: a\n    tag: \"1\"\n");

        var (exit, _, stderr) = await ValuesBundleFixture.RunAsync("export", "--plain-http", "--manifest", manifest, "--key", "/nonexistent.key", "-o", Path.Combine(file, "b.tar"));

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains($"cannot write '{Path.Combine(file, "b.tar")}'", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("127.0.0.1:1", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("b.tar", "zstd", "name it")]
    [InlineData("b.tar.zst", "none", "add --compress zstd")]
    public async Task Export_NameDisagreesWithCompression_Refused(string name, string compress, string expected)
    {
        var output = Path.Combine(bundle.NewDirectory(), name);

        var (exit, _, stderr) = await ValuesBundleFixture.RunAsync("export", "--lock", "/nonexistent.json", "--key", "/nonexistent.key", "-o", output, "--compress", compress);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_ReportIsADirectory_RefusedNamingTheFlag()
    {
        var dir = bundle.NewDirectory();

        var (exit, _, stderr) = await ValuesBundleFixture.RunAsync("check", bundle.BundlePath, "--to", "127.0.0.1:1", "-o", dir);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains($"-o: '{dir}' is a directory", stderr, StringComparison.Ordinal);
    }

    private static async Task<bool> TestAsync(string flag, string path)
    {
        using var test = Process.Start("test", [flag, path]);
        await test.WaitForExitAsync();
        return test.ExitCode == 0;
    }
}

/// <summary>A rerun removes the <c>.partial-*</c> files killed runs left beside its output, never one still being written.</summary>
public sealed class StalePartialTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("openlm-partial-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Export_StalePartialsBesideTheOutput_RemovedOneInUseKept()
    {
        var output = Path.Combine(_dir, "b.tar");
        var stale = output + ".partial-0123456789ab";
        var inUse = output + ".partial-ba9876543210";
        var unrelated = Path.Combine(_dir, "other.tar.partial-0123456789ab");
        File.WriteAllBytes(stale, new byte[4096]);
        File.WriteAllBytes(unrelated, [1]);
        using var writer = new FileStream(inUse, FileMode.Create, FileAccess.Write, FileShare.None);

        var (exit, _, stderr) = await ValuesBundleFixture.RunAsync("export", "--lock", Path.Combine(_dir, "missing-lock.json"), "--key", Path.Combine(_dir, "missing.key"), "-o", output);

        Assert.Equal(ExitCodes.Usage, exit); // the key is missing; the clean-up came first
        Assert.False(File.Exists(stale), stderr);
        Assert.Contains($"removed {stale} (4.0 KiB), left by an interrupted run", stderr, StringComparison.Ordinal);
        Assert.True(File.Exists(inUse));
        Assert.True(File.Exists(unrelated));
    }
}
