using System.Text.Json;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Tests.Core;
using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary>
/// <c>--log-format json</c>: every stderr line is one JSON object with time, level and message, the progress lines carry
/// their fields (phase, image, digest, bytes), errors keep their level; <c>text</c> (the default) is unchanged.
/// </summary>
public sealed class LogFormatTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Copy_LogFormatJson_EveryStderrLineIsAnEntryAndTheImageLineHasItsFields()
    {
        var (exit, output, error) = await RunAsync("copy", "--log-format", "json", "--progress", "plain", $"oci:{Layout()}:olm/server:1.2", $"oci:{_dir.Sub("out")}");

        Assert.True(exit == ExitCodes.Success, error);
        var entries = Entries(error);
        Assert.NotEmpty(entries);
        Assert.All(entries, e =>
        {
            Assert.True(DateTimeOffset.TryParse(e.GetProperty("time").GetString(), out _), e.ToString());
            Assert.Contains(e.GetProperty("level").GetString(), new[] { "error", "warning", "info", "debug" });
            Assert.False(string.IsNullOrEmpty(e.GetProperty("message").GetString()));
        });
        var image = Assert.Single(entries, e => e.TryGetProperty("image", out _));
        Assert.Equal("server:1.2", image.GetProperty("image").GetString());
        Assert.Equal("copy", image.GetProperty("phase").GetString());
        Assert.StartsWith("sha256:", image.GetProperty("digest").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("copied server:1.2 sha256:", image.GetProperty("message").GetString(), StringComparison.Ordinal);
        var total = entries.Last(e => e.TryGetProperty("imagesDone", out _));
        Assert.Equal(1, total.GetProperty("imagesDone").GetInt32());
        Assert.Equal(total.GetProperty("bytes").GetInt64(), total.GetProperty("bytesDone").GetInt64());

        // stdout is untouched: the command's own result line
        Assert.Contains("2 blobs copied", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Failure_LogFormatJson_TheErrorIsAnEntryOfLevelError()
    {
        var (exit, _, error) = await RunAsync("copy", "--log-format", "json", "oci:/nonexistent/layout:a:1", $"oci:{_dir.Sub("out")}");

        Assert.NotEqual(ExitCodes.Success, exit);
        var entries = Entries(error);
        var failure = Assert.Single(entries, e => e.GetProperty("level").GetString() == "error");
        Assert.DoesNotContain("error: ", failure.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains("/nonexistent/layout", failure.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UsageError_LogFormatJson_IsJsonToo()
    {
        var (exit, _, error) = await RunAsync("copy", "--log-format=json", "--concurrency", "abc", "a/b:1", "oci:x");

        Assert.Equal(ExitCodes.Usage, exit);
        var entries = Entries(error);
        Assert.Contains(entries, e => e.GetProperty("level").GetString() == "error" && e.GetProperty("message").GetString()!.Contains("--concurrency", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Copy_LogFormatText_IsTheDefaultPlainLines()
    {
        var (exit, _, error) = await RunAsync("copy", "--log-format", "text", "--progress", "plain", $"oci:{Layout()}:olm/server:1.2", $"oci:{_dir.Sub("out")}");

        Assert.True(exit == ExitCodes.Success, error);
        Assert.Contains("copied server:1.2 sha256:", error, StringComparison.Ordinal);
        Assert.DoesNotContain("{", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LogFormatUnknown_IsAUsageError()
    {
        var (exit, _, error) = await RunAsync("copy", "--log-format", "xml", "oci:/nope:a:1", $"oci:{_dir.Sub("out")}");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("xml", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_dir.Sub("out")));
    }

    [Fact]
    public void Writer_AnUnstructuredLine_BecomesOneEntryWithTheLevelOfItsPrefix()
    {
        var inner = new StringWriter();
        var writer = new JsonLogWriter(inner, new FixedClock());

        writer.WriteLine("warning: --insecure: TLS certificates are NOT verified");
        writer.Write("plain ");
        writer.Write("text");
        writer.Flush();
        writer.WriteEntry("debug", "HEAD /v2/ 200", [new("registry", "127.0.0.1:5000")]);

        Assert.Equal(
            [
                """{"time":"2026-12-02T04:00:00.000Z","level":"warning","message":"--insecure: TLS certificates are NOT verified"}""",
                """{"time":"2026-12-02T04:00:00.000Z","level":"info","message":"plain text"}""",
                """{"time":"2026-12-02T04:00:00.000Z","level":"debug","message":"HEAD /v2/ 200","registry":"127.0.0.1:5000"}""",
            ],
            inner.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private static List<JsonElement> Entries(string stderr) =>
        stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            using var document = JsonDocument.Parse(line);
            return document.RootElement.Clone();
        }).ToList();

    private string Layout()
    {
        var layout = new HandLayout(_dir.Sub("src"));
        var manifest = layout.AddImage(MediaTypes.OciManifest, MediaTypes.OciConfig, MediaTypes.OciLayerGzip, TestContent.Utf8("{\"os\":\"linux\"}"), TestContent.Random(4096, 1));
        layout.Name("olm/server:1.2", MediaTypes.OciManifest, manifest);
        return layout.Root;
    }

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, CliConsole.Capture(output, error));
        return (exit, output.ToString(), error.ToString());
    }

    private sealed class FixedClock : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(2026, 12, 2, 4, 0, 0, TimeSpan.Zero);
    }
}
