using System.Security.Cryptography;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.Tests.Cli;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Cli;

/// <summary>
/// Runbooks rerun: an export whose output already verifies against the same lock and key exits 0 ("already exported")
/// and leaves the file untouched; any other existing file (another key, another lock, not a bundle) is refused with
/// exit 2 naming --force, and --force writes it again.
/// </summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class RerunTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private readonly string _namespace = "rerun" + Guid.NewGuid().ToString("N")[..8];
    private string _lock = null!;
    private string _otherLock = null!;
    private string _key = null!;
    private string _otherKey = null!;

    public async Task InitializeAsync()
    {
        using var http = RegistrySeeder.CreateClient();
        await RegistrySeeder.PushImageAsync(http, registry.BaseUri, $"{_namespace}/app", "1.0", layerSize: 64 * 1024, seed: 41);
        await RegistrySeeder.PushImageAsync(http, registry.BaseUri, $"{_namespace}/app", "2.0", layerSize: 64 * 1024, seed: 42);
        _lock = await LockAsync("1.0");
        _otherLock = await LockAsync("2.0");
        _key = KeyPairGenerator.Generate(_temp.Sub("release"), passphrase: null).PrivateKeyPath;
        _otherKey = KeyPairGenerator.Generate(_temp.Sub("other"), passphrase: null).PrivateKeyPath;
    }

    public Task DisposeAsync()
    {
        _temp.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Export_RerunOverItsOwnBundle_ExitsZeroAlreadyExportedAndRewritesNothing()
    {
        // Given a finished export
        var bundle = _temp.Sub("same.tar");
        var first = await ExportAsync(_lock, _key, bundle);
        Assert.Equal("written", JsonContract.Validate("export", first.Output, 0).GetProperty("status").GetString());
        var before = Snapshot(bundle);

        // When the same command runs again (text, then --json)
        var text = await ExportAsync(_lock, _key, bundle, json: false);
        var rerun = await ExportAsync(_lock, _key, bundle);

        // Then both succeed, say so, and the file is the very same (bytes and modification time)
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("already exported", text.Output, StringComparison.Ordinal);
        Assert.Contains("nothing rewritten", text.Output, StringComparison.Ordinal);
        var report = JsonContract.Validate("export", rerun.Output, 0);
        Assert.Equal("alreadyExported", report.GetProperty("status").GetString());
        Assert.Equal(JsonContract.Validate("export", first.Output, 0).GetProperty("bundleDigest").GetString(), report.GetProperty("bundleDigest").GetString());
        Assert.Equal("verified", report.GetProperty("signature").GetProperty("status").GetString());
        Assert.Equal(0, report.GetProperty("bytesDownloaded").GetInt64());
        Assert.Equal(before, Snapshot(bundle));
    }

    [Theory]
    [InlineData("other-key")]
    [InlineData("other-lock")]
    [InlineData("not-a-bundle")]
    [InlineData("truncated")]
    public async Task Export_OverADifferentExistingFile_ExitsTwoNamingForceAndKeepsTheFile(string what)
    {
        // Given an existing file at -o that is not this export
        var bundle = _temp.Sub($"{what}.tar");
        switch (what)
        {
            case "other-key":
                Assert.Equal(0, (await ExportAsync(_lock, _otherKey, bundle)).ExitCode);
                break;
            case "other-lock":
                Assert.Equal(0, (await ExportAsync(_otherLock, _key, bundle)).ExitCode);
                break;
            case "not-a-bundle":
                File.WriteAllText(bundle, "notes, not a bundle\n");
                break;
            default:
                Assert.Equal(0, (await ExportAsync(_lock, _key, bundle)).ExitCode);
                using (var file = new FileStream(bundle, FileMode.Open))
                {
                    file.SetLength(file.Length - 4096);
                }

                break;
        }

        var before = Snapshot(bundle);

        // When this export runs without --force
        var run = await ExportAsync(_lock, _key, bundle);

        // Then it is refused as usage (exit 2) naming --force and why the file differs, and the file is untouched
        var error = JsonContract.Error("export", run.Output, 2, "usage");
        Assert.Contains("--force", run.Error, StringComparison.Ordinal);
        Assert.Contains("is not this export", run.Error, StringComparison.Ordinal);
        Assert.Contains("--force", error.GetProperty("hint").GetString() + error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(bundle));

        // And with --force the export is written over it
        var forced = await MirrorCli.RunAsync("export", "--plain-http", "--lock", _lock, "--key", _key, "-o", bundle, "--cache", _temp.Sub("cache"), "--force", "--json");
        Assert.Equal("written", JsonContract.Validate("export", forced.Output, 0).GetProperty("status").GetString());
        Assert.Equal("alreadyExported", JsonContract.Validate("export", (await ExportAsync(_lock, _key, bundle)).Output, 0).GetProperty("status").GetString());
    }

    private async Task<string> LockAsync(string tag)
    {
        var manifest = _temp.Sub($"platform-{tag}.yaml");
        File.WriteAllText(manifest, $"""
            apiVersion: mirror.openlm.io/v1
            kind: Platform
            name: openlm-platform
            version: "{tag}"
            source: {registry.Host}/{_namespace}
            images:
              - name: app
                tag: "{tag}"
            """);
        var lockPath = _temp.Sub($"lock-{tag}.json");
        var resolve = await MirrorCli.RunAsync("resolve", "--plain-http", "--manifest", manifest, "-o", lockPath);
        Assert.True(resolve.ExitCode == 0, resolve.ToString());
        return lockPath;
    }

    private Task<CliRun> ExportAsync(string lockPath, string key, string bundle, bool json = true) =>
        MirrorCli.RunAsync(["export", "--plain-http", "--lock", lockPath, "--key", key, "-o", bundle, "--cache", _temp.Sub("cache"), .. json ? new[] { "--json" } : []]);

    private static (string Sha256, DateTime Modified) Snapshot(string path) =>
        (Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))), File.GetLastWriteTimeUtc(path));
}
