using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Tests.Values;
using Xunit;
using static OpenLm.Mirror.Tests.Values.ValuesBundleFixture;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary>
/// Every command's --json output, success and failure, against its schema in docs/schemas (the registry-side
/// successes are in the integration tests' JsonContractTests). Runs in process on a signed TestKit bundle.
/// </summary>
public sealed class JsonOutputTests(ValuesBundleFixture bundle) : IClassFixture<ValuesBundleFixture>
{
    private const string Target = "registry.corp:5000/openlm";

    [Fact]
    public async Task Keygen_SuccessThenExistingOutput_BothDocumentsMatchTheSchema()
    {
        var name = Path.Combine(bundle.NewDirectory(), "release");

        var (exit, stdout, stderr) = await RunAsync("keygen", "-o", name, "--json");
        Assert.True(exit == 0, stderr);
        var root = JsonContract.Validate("keygen", stdout, 0);
        Assert.Equal(name + ".pub", root.GetProperty("publicKey").GetString());

        var (again, againOut, _) = await RunAsync("keygen", "-o", name, "--json");
        Assert.NotEqual(0, again);
        Assert.False(string.IsNullOrWhiteSpace(JsonContract.Validate("keygen", againOut, again).GetProperty("error").GetProperty("message").GetString()));
    }

    [Fact]
    public async Task Verify_RightKey_SignatureVerifiedWithKeyId()
    {
        var (exit, stdout, stderr) = await RunAsync("verify", bundle.BundlePath, "--key", bundle.PublicKey, "--json");

        Assert.True(exit == 0, stderr);
        var root = JsonContract.Validate("verify", stdout, 0);
        Assert.Equal("verified", root.GetProperty("signature").GetProperty("status").GetString());
        Assert.StartsWith("sha256:", root.GetProperty("signature").GetProperty("keyId").GetString(), StringComparison.Ordinal);
        Assert.Equal("olm", root.GetProperty("platform").GetProperty("name").GetString());
    }

    [Fact]
    public async Task Verify_WrongKey_IntegrityEnvelopeOnStdoutExit3()
    {
        var (exit, stdout, stderr) = await RunAsync("verify", bundle.BundlePath, "--key", bundle.OtherPublicKey, "--json");

        Assert.Equal(ExitCodes.Integrity, exit);
        var error = JsonContract.Error("verify", stdout, 3, "integrity");
        Assert.Contains(error.GetProperty("message").GetString()!, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inspect_NoKey_SignatureNotCheckedNamesTheClaimedSigner()
    {
        var (exit, stdout, stderr) = await RunAsync("inspect", bundle.BundlePath, "--json");

        Assert.True(exit == 0, stderr);
        var signature = JsonContract.Validate("inspect", stdout, 0).GetProperty("signature");
        Assert.Equal("notChecked", signature.GetProperty("status").GetString());
        Assert.True(signature.TryGetProperty("keyId", out _));
    }

    [Fact]
    public async Task Values_SuccessAndWrongKey_BothMatchTheSchema()
    {
        var dir = bundle.NewDirectory();

        var (exit, stdout, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "-o", Path.Combine(dir, "v.yaml"), "--json");
        Assert.True(exit == 0, stderr);
        JsonContract.Validate("values", stdout, 0);

        var (bad, badOut, _) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.OtherPublicKey, "-o", Path.Combine(dir, "w.yaml"), "--json");
        Assert.Equal(ExitCodes.Integrity, bad);
        JsonContract.Error("values", badOut, 3, "integrity");
    }

    [Fact]
    public async Task NodeArchiveAndDiff_Success_MatchTheirSchemas()
    {
        var dir = bundle.NewDirectory();

        var (exit, stdout, stderr) = await RunAsync("node-archive", bundle.BundlePath, "--key", bundle.PublicKey, "-o", Path.Combine(dir, "images.tar"), "--json");
        Assert.True(exit == 0, stderr);
        JsonContract.Validate("node-archive", stdout, 0);

        (exit, stdout, stderr) = await RunAsync("diff", bundle.BundlePath, bundle.BundlePath, "--json");
        Assert.True(exit == 0, stderr);
        JsonContract.Validate("diff", stdout, 0);
    }

    [Theory]
    [InlineData("node-archive", new[] { "node-archive", "/nonexistent/b.tar", "-o", "/tmp/openlm-na.tar", "--json" })]
    [InlineData("diff", new[] { "diff", "/nonexistent/a.json", "/nonexistent/b.json", "--json" })]
    [InlineData("inventory", new[] { "inventory", "--to", "127.0.0.1:1", "--lock", "/nonexistent/lock.json", "-o", "/tmp/openlm-r.json", "--json" })]
    [InlineData("split", new[] { "split", "/nonexistent/b.tar", "--size", "4G", "--json" })]
    [InlineData("join", new[] { "join", "/nonexistent/b.tar.001", "-o", "/tmp/openlm-j.tar", "--json" })]
    [InlineData("copy", new[] { "copy", "--json" })]
    [InlineData("copy", new[] { "copy", "--concurrency", "abc", "a/b:1", "oci:x", "--json" })]
    [InlineData("resolve", new[] { "resolve", "--manifest", "/nonexistent/platform.yaml", "-o", "/nonexistent/lock.json", "--json" })]
    [InlineData("export", new[] { "export", "--lock", "/nonexistent/lock.json", "--key", "/nonexistent/release.key", "-o", "/tmp/b.tar", "--json" })]
    [InlineData("import", new[] { "import", "/nonexistent/b.tar", "--to", "127.0.0.1:1", "--json" })]
    [InlineData("check", new[] { "check", "/nonexistent/b.tar", "--to", "127.0.0.1:1", "--json" })]
    [InlineData("load", new[] { "load", "/nonexistent/b.tar", "--json" })]
    [InlineData("inspect", new[] { "inspect", "/nonexistent/b.tar", "--json" })]
    [InlineData("verify", new[] { "verify", "/nonexistent/b.tar", "--json" })]
    [InlineData("values", new[] { "values", "/nonexistent/b.tar", "--to", "r:5000", "--json" })]
    [InlineData("serve", new[] { "serve", "/nonexistent/b.tar", "--json" })]
    [InlineData("keygen", new[] { "keygen", "--json" })]
    [InlineData("openlm-mirror", new[] { "exprt", "--json" })]
    [InlineData("login", new[] { "login", "registry.corp:5000", "-u", "robot", "--authfile", "/nonexistent-dir/auth.json", "--json" })]
    [InlineData("logout", new[] { "logout", "not a host", "--authfile", "/tmp/openlm-no-such-auth.json", "--json" })]
    [InlineData("completion", new[] { "completion", "tcsh", "--json" })]
    public async Task AnyCommand_BadInput_OneErrorDocumentOnStdout(string command, string[] args)
    {
        var (exit, stdout, _) = await RunAsync(args);

        Assert.True(exit is ExitCodes.Usage or ExitCodes.Integrity, $"exit {exit}\n{stdout}");
        var error = JsonContract.Validate(command, stdout, exit).GetProperty("error");
        Assert.DoesNotContain("System.", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Load_NoEngine_OperationalEnvelopeNamingTheAddress()
    {
        var socket = "unix://" + Path.Combine(bundle.NewDirectory(), "no-engine.sock");

        var (exit, stdout, _) = await RunAsync("load", bundle.BundlePath, "--key", bundle.PublicKey, "--docker-host", socket, "--json");

        Assert.Equal(ExitCodes.Operational, exit);
        var error = JsonContract.Error("load", stdout, 1, "operational");
        Assert.Contains(socket, error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("engine-address", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Import_UnreachableRegistry_OperationalEnvelope()
    {
        var (exit, stdout, stderr) = await RunAsync("import", bundle.BundlePath, "--key", bundle.PublicKey, "--to", "127.0.0.1:1", "--plain-http", "--retries", "0", "--json");

        Assert.True(exit == ExitCodes.Operational, stderr);
        JsonContract.Error("import", stdout, 1, "operational");
    }
}
