using OpenLm.Mirror.Cli;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.Tests.Cli;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Cli;

/// <summary>
/// The --json contract of the commands that talk to a registry, on the real one: resolve, export, import, check
/// (complete, incomplete = exit 4, unreachable = exit 1) and copy, each document validated against docs/schemas.
/// One small release, one pass through the whole flow.
/// </summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class JsonContractTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private readonly string _namespace = "json" + Guid.NewGuid().ToString("N")[..8];
    private string _manifest = null!;
    private string _key = null!;
    private string _pub = null!;

    public async Task InitializeAsync()
    {
        using var http = RegistrySeeder.CreateClient();
        await RegistrySeeder.PushImageAsync(http, registry.BaseUri, $"{_namespace}/olm-server", "1.0", layerSize: 16 * 1024, seed: 1);
        await RegistrySeeder.PushImageAsync(http, registry.BaseUri, $"{_namespace}/olm-worker", "1.0", layerSize: 16 * 1024, seed: 2);
        _manifest = _temp.Sub("platform.yaml");
        File.WriteAllText(_manifest, $"""
            apiVersion: mirror.openlm.io/v1
            kind: Platform
            name: openlm-platform
            version: "1.0.0"
            source: {registry.Host}/{_namespace}
            images:
              - name: olm-server
                tag: "1.0"
              - name: olm-worker
                tag: "1.0"
            """);
        var pair = KeyPairGenerator.Generate(_temp.Sub("release"), passphrase: null);
        (_key, _pub) = (pair.PrivateKeyPath, pair.PublicKeyPath);
    }

    public Task DisposeAsync()
    {
        _temp.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task ReleaseFlow_EveryRegistryCommand_PrintsOneDocumentMatchingItsSchema()
    {
        // resolve and export
        var lockPath = _temp.Sub("lock.json");
        var resolve = await MirrorCli.RunAsync("resolve", "--plain-http", "--manifest", _manifest, "-o", lockPath, "--json");
        Assert.True(resolve.ExitCode == 0, resolve.ToString());
        Assert.Equal(2, JsonContract.Validate("resolve", resolve.Output, 0).GetProperty("images").GetInt32());

        var bundle = _temp.Sub("bundle.tar");
        var export = await MirrorCli.RunAsync("export", "--plain-http", "--lock", lockPath, "--key", _key, "-o", bundle, "--cache", _temp.Sub("cache"), "--json");
        Assert.True(export.ExitCode == 0, export.ToString());
        Assert.Equal("signed", JsonContract.Validate("export", export.Output, 0).GetProperty("signature").GetProperty("status").GetString());

        // import: every image's outcome in a field named status
        var target = $"{registry.Host}/{_namespace}-airgap";
        var import = await MirrorCli.RunAsync("import", bundle, "--key", _pub, "--to", target, "--plain-http", "--json");
        Assert.True(import.ExitCode == 0, import.ToString());
        var imported = JsonContract.Validate("import", import.Output, 0);
        Assert.All(imported.GetProperty("images").EnumerateArray(), i => Assert.Equal("created", i.GetProperty("status").GetString()));
        Assert.Equal("verified", imported.GetProperty("signature").GetProperty("status").GetString());

        // check: complete is 0
        var check = await MirrorCli.RunAsync("check", bundle, "--key", _pub, "--to", target, "--plain-http", "--json");
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.True(JsonContract.Validate("check", check.Output, 0).GetProperty("complete").GetBoolean());

        // check: a prefix nothing was imported to is incomplete, exit 4, with the report and the error
        var empty = await MirrorCli.RunAsync("check", bundle, "--key", _pub, "--to", $"{registry.Host}/{_namespace}-never", "--plain-http", "--json");
        Assert.True(empty.ExitCode == ExitCodes.Incomplete, empty.ToString());
        var incomplete = JsonContract.Validate("check", empty.Output, 4);
        Assert.Equal("target-incomplete", incomplete.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(2, incomplete.GetProperty("summary").GetProperty("missing").GetInt32());

        // copy: one source has the same shape as many
        var copy = await MirrorCli.RunAsync("copy", "--plain-http", $"{registry.Host}/{_namespace}/olm-server:1.0", $"oci:{_temp.Sub("layout")}", "--json");
        Assert.True(copy.ExitCode == 0, copy.ToString());
        var copied = Assert.Single(JsonContract.Validate("copy", copy.Output, 0).GetProperty("images").EnumerateArray());
        Assert.Equal(System.Text.Json.JsonValueKind.Array, copied.GetProperty("imagePlatforms").ValueKind);
        Assert.Equal($"{registry.Host}/{_namespace}/olm-server:1.0", copied.GetProperty("source").GetString());
    }

    [Fact]
    public async Task Check_RegistryUnreachable_Exit1NotIncomplete()
    {
        // Given an exported bundle
        var lockPath = _temp.Sub("u-lock.json");
        Assert.Equal(0, (await MirrorCli.RunAsync("resolve", "--plain-http", "--manifest", _manifest, "-o", lockPath)).ExitCode);
        var bundle = _temp.Sub("u-bundle.tar");
        Assert.Equal(0, (await MirrorCli.RunAsync("export", "--plain-http", "--lock", lockPath, "--key", _key, "-o", bundle, "--cache", _temp.Sub("u-cache"))).ExitCode);

        // When check is pointed at a port nothing listens on
        var run = await MirrorCli.RunAsync("check", bundle, "--key", _pub, "--to", "127.0.0.1:1/x", "--plain-http", "--retries", "0", "--json");

        // Then it is a runtime failure (retry later), not "re-import"
        Assert.True(run.ExitCode == ExitCodes.Operational, run.ToString());
        JsonContract.Error("check", run.Output, 1, "operational");
    }
}
