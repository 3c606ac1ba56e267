using System.Text.Json;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

public sealed class CliTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, CliConsole.Capture(output, error));
        return (exit, output.ToString(), error.ToString());
    }

    private (string Root, string Digest) SourceLayout()
    {
        var layout = new HandLayout(_dir.Sub("src"));
        var manifest = layout.AddImage(MediaTypes.OciManifest, MediaTypes.OciConfig, MediaTypes.OciLayerGzip, TestContent.Utf8("{\"os\":\"linux\"}"), TestContent.Random(4096, 1));
        layout.Name("olm/server:1.2", MediaTypes.OciManifest, manifest);
        return (layout.Root, TestContent.Sha256(manifest));
    }

    [Fact]
    public async Task Cli_Copy_MalformedReference_Exits2QuotingIt()
    {
        // Given a source reference with two tags
        // When copy is run
        var (exit, output, error) = await RunAsync("copy", "redis:alpine3.17:25.6.17.422", $"oci:{_dir.Sub("out")}");

        // Then it is a usage error that quotes the input, with nothing on stdout
        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("'redis:alpine3.17:25.6.17.422'", error, StringComparison.Ordinal);
        Assert.Contains("at most one tag", error, StringComparison.Ordinal);
        Assert.StartsWith("error: SRC: invalid reference", error, StringComparison.Ordinal);
        Assert.Equal(string.Empty, output);
        Assert.False(Directory.Exists(_dir.Sub("out")));
    }

    [Fact]
    public async Task Cli_Copy_UnknownOption_Exits2()
    {
        // Given an option copy does not have
        // When copy is run
        var (exit, _, error) = await RunAsync("copy", "--frobnicate", "a", "b");

        // Then it is a usage error pointing at help
        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("--frobnicate", error, StringComparison.Ordinal);
        Assert.Contains("openlm-mirror copy --help", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_Copy_MissingArguments_Exits2()
    {
        // Given copy without a destination
        // When it is run
        var (exit, _, _) = await RunAsync("copy", "mongo");

        // Then it is a usage error
        Assert.Equal(ExitCodes.Usage, exit);
    }

    [Theory]
    [InlineData("--concurrency", "0", "--concurrency must be between 1 and 256 (got 0)")]
    [InlineData("--concurrency", "257", "--concurrency must be between 1 and 256")]
    [InlineData("--concurrency", "many", "many")]
    [InlineData("--retries", "-1", "--retries must be between 0 and 100")]
    [InlineData("--rate-limit", "0", "--rate-limit must be a positive number")]
    [InlineData("--platform", "linux", "invalid platform 'linux'")]
    public async Task Cli_Copy_BadOptionValue_Exits2(string option, string value, string message)
    {
        // Given a valid copy with one out-of-range option value
        var (source, _) = SourceLayout();

        // When it is run
        var (exit, _, error) = await RunAsync("copy", option, value, $"oci:{source}", $"oci:{_dir.Sub("out")}");

        // Then it is a usage error naming the option
        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_UsernameWithoutPasswordStdin_Exits2()
    {
        // Given --username without --password-stdin
        var (source, _) = SourceLayout();

        // When copy is run
        var (exit, _, error) = await RunAsync("copy", "--username", "u", $"oci:{source}", $"oci:{_dir.Sub("out")}");

        // Then it refuses (passwords are never arguments)
        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("--password-stdin", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_PasswordStdinEmpty_Exits2()
    {
        // Given --username with --password-stdin but nothing on standard input
        var (source, _) = SourceLayout();

        // When copy is run
        var (exit, _, error) = await RunAsync("copy", "--username", "u", "--password-stdin", $"oci:{source}", $"oci:{_dir.Sub("out")}");

        // Then it refuses
        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("no password on standard input", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_Help_Exits0AndListsCopy()
    {
        // Given --help
        // When it is run
        var (exit, output, _) = await RunAsync("--help");

        // Then it succeeds and lists the copy command and the exit codes
        Assert.Equal(ExitCodes.Success, exit);
        Assert.Contains("copy", output, StringComparison.Ordinal);
        Assert.Contains("Exit codes", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_Copy_LayoutToLayout_Exits0AndPrintsDigest()
    {
        // Given a layout with one image
        var (source, digest) = SourceLayout();
        var destination = _dir.Sub("out");

        // When it is copied to a new layout
        var (exit, output, error) = await RunAsync("copy", $"oci:{source}:olm/server:1.2", $"oci:{destination}");

        // Then it succeeds, prints the digest, and the destination has the image under the same name
        Assert.True(exit == ExitCodes.Success, error);
        Assert.Contains(digest, output, StringComparison.Ordinal);
        Assert.Contains("2 blobs copied", output, StringComparison.Ordinal);
        var resolved = await OciLayoutStore.Open(destination, create: false).ResolveAsync("olm/server:1.2");
        Assert.Equal(digest, resolved.Digest.ToString());
    }

    [Fact]
    public async Task Cli_Copy_Json_PrintsReportOnStdout()
    {
        // Given a layout with one image
        var (source, digest) = SourceLayout();

        // When it is copied with --json
        var (exit, output, _) = await RunAsync("copy", "--json", $"oci:{source}", $"oci:{_dir.Sub("out")}:mirror/server:1.2");

        // Then stdout is a JSON report with the digest
        Assert.Equal(ExitCodes.Success, exit);
        using var report = JsonDocument.Parse(output);
        var image = Assert.Single(report.RootElement.GetProperty("images").EnumerateArray());
        Assert.Equal(digest, image.GetProperty("digest").GetString());
        Assert.Equal(digest, image.GetProperty("sourceDigest").GetString());
        Assert.Equal(MediaTypes.OciManifest, image.GetProperty("mediaType").GetString());
        Assert.Equal(2, image.GetProperty("blobsCopied").GetInt32());
    }

    [Fact]
    public async Task Cli_Copy_MissingSourceImage_Exits1()
    {
        // Given a layout without the asked-for name
        var (source, _) = SourceLayout();

        // When it is copied
        var (exit, _, error) = await RunAsync("copy", $"oci:{source}:nope", $"oci:{_dir.Sub("out")}");

        // Then it is an operational failure naming the image
        Assert.Equal(ExitCodes.Operational, exit);
        Assert.Contains("no image named 'nope'", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_Copy_TamperedSource_Exits3()
    {
        // Given a layout whose layer blob was overwritten
        var layout = new HandLayout(_dir.Sub("src"));
        var layer = TestContent.Random(4096, 1);
        var manifest = layout.AddImage(MediaTypes.OciManifest, MediaTypes.OciConfig, MediaTypes.OciLayerGzip, TestContent.Utf8("{}"), layer);
        layout.Name("a:1", MediaTypes.OciManifest, manifest);
        await File.WriteAllBytesAsync(layout.BlobPath(TestContent.Sha256(layer)), TestContent.Random(4096, 2));

        // When it is copied
        var (exit, _, error) = await RunAsync("copy", $"oci:{layout.Root}", $"oci:{_dir.Sub("out")}");

        // Then it is an integrity failure
        Assert.Equal(ExitCodes.Integrity, exit);
        Assert.Contains("digest mismatch", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_CopyHelp_MatchesSnapshot()
    {
        // Given copy --help
        // When it is run
        var (exit, output, _) = await RunAsync("copy", "--help");

        // Then the text is exactly the documented one, mentioning every option
        Assert.Equal(ExitCodes.Success, exit);
        foreach (var option in new[] { "--platform", "--plain-http", "--ca-file", "--insecure", "--username", "--password-stdin", "--concurrency", "--retries", "--rate-limit", "--json" })
        {
            Assert.Contains(option, output, StringComparison.Ordinal);
        }

        // The root command is named after the executable: "openlm-mirror" for the real binary, the test host in-process.
        var executable = Path.GetFileNameWithoutExtension(Environment.GetCommandLineArgs()[0]);
        var normalised = output.Replace($"  {executable} copy ", "  openlm-mirror copy ", StringComparison.Ordinal);
        Assert.Equal(CopyHelp.ReplaceLineEndings().TrimEnd(), normalised.ReplaceLineEndings().TrimEnd());
    }

    private const string CopyHelp = """
Description:
  Copy an image (with every platform, or those named by --platform) between registries and OCI layouts, preserving digests

Usage:
  openlm-mirror copy <SRC... DST>... [options]

Arguments:
  <SRC... DST>  Each SRC is a registry reference (host/path:tag or @digest) or oci:DIR[:REF]; DST is a registry reference or oci:DIR[:REF] (REF defaults to the full source reference). With several sources DST is oci:DIR or a registry host[:port][/prefix].

Options:
  --plain-http                      Use plain HTTP instead of HTTPS (loopback test registries only)
  --ca-file <FILE>                  PEM file with CA certificates to trust for registry TLS
  --insecure                        Skip TLS certificate verification (dangerous; prefer --ca-file)
  -u, --username <USER>             Registry username (password from --password-stdin)
  --password-stdin                  Read the registry password from standard input
  --authfile <FILE>                 Registry credentials file in Docker's config.json format (default: REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json or ~/.docker/config.json)
  --retries <N>                     Retries per operation on transient failures [default: 4]
  --rate-limit <N>                  Ceiling of requests per second per registry (default: its published quota, ECR Public 1/s anonymous, 10/s with credentials); the rate adapts below it on 429
  --timeout <DURATION>              Time budget of the whole run, e.g. 90m or 2h (default 2h): retries stop when it is spent
  --proxy <URL>                     HTTP proxy for every request, e.g. http://proxy.corp:3128 (default: HTTPS_PROXY/HTTP_PROXY/NO_PROXY)
  --platform <os/arch[,...]>        Keep only these platforms of multi-arch images, e.g. linux/amd64,linux/arm64 (default: all)
  --concurrency <N>                 Blobs transferred in parallel [default: 6]
  --images-from <FILE>              Read more source references from FILE, one per line ('#' comments allowed)
  --parallel-images <N>             With several sources, how many images are copied at once [default: 4]
  --src-creds <USER[:PASSWORD]>     Credentials for the source registries only (password from standard input when omitted)
  --dest-creds <USER[:PASSWORD]>    Credentials for the destination registry only (password from standard input when omitted)
  --json                            Print a JSON report on stdout
  -?, -h, --help                    Show help and usage information
  --progress <auto|tty|plain|none>  Progress on stderr: a live display on a terminal (tty), one line per image and a total every few seconds (plain), or none [default: auto]
  --log-format <text|json>          Log lines on stderr as text, or as one JSON object per line (time, level, message, and fields such as phase and image); json implies plain progress [default: text]
  -q, --quiet                       Print errors only (no progress, no information lines)
  -v, --verbose                     Also print debug lines (requests, retries, decisions)
""";
}
