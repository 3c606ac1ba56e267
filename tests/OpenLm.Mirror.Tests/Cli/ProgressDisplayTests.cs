using System.Text.RegularExpressions;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Tests.Core;
using Spectre.Console;
using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary>The progress display: readable at 80 columns with 126 images, plain lines off a terminal, silent with none or --quiet.</summary>
public sealed partial class ProgressDisplayTests : IDisposable
{
    private const int Images = 126;
    private const long LayerSize = 150L * 1024 * 1024;
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Frame_126ImagesAt80Columns_TenRowsNamedByImageSummaryAndTotal()
    {
        var display = new ProgressDisplay(plain: null);
        Drive(display, running: 40, finished: 3);

        var frame = display.Frame(80);

        Assert.All(frame, line => Assert.True(line.Length <= 80, $"{line.Length} columns: '{line}'"));
        var rows = frame.Where(l => l.StartsWith("  ", StringComparison.Ordinal) && !l.TrimStart().StartsWith('+')).ToList();
        Assert.Equal(ProgressDisplay.MaxRows, rows.Count);
        Assert.All(rows, row => Assert.DoesNotContain("oci:", row, StringComparison.Ordinal));
        Assert.Contains("olm-server-3:1.260716.1540", rows[0], StringComparison.Ordinal);
        Assert.Contains(frame, l => l.Contains("+113 more (30 running, 83 queued)", StringComparison.Ordinal));
        var total = frame[^1];
        Assert.StartsWith("pull 3/126 images | ", total, StringComparison.Ordinal);
        Assert.Contains("/18.5 GiB", total, StringComparison.Ordinal);
        Assert.Equal(ProgressDisplay.MaxRows + 2, frame.Count);
    }

    [Fact]
    public void Frame_ImageRow_ShowsBytesPercentAndBar()
    {
        var display = new ProgressDisplay(plain: null);
        display.PhaseStarted(RunPhase.Push, 1, 1000);
        display.ImageStarted("registry.corp:5000/openlm/olm-server:1.2");
        display.BlobStarted("registry.corp:5000/openlm/olm-server:1.2", Blob(1000));
        display.BytesTransferred("registry.corp:5000/openlm/olm-server:1.2", 250);

        var row = display.Frame(80)[0];

        Assert.StartsWith("  olm-server:1.2 ", row, StringComparison.Ordinal);
        Assert.Contains("[##--------]  25% 250 B/1000 B", row, StringComparison.Ordinal);
        Assert.Contains("push 0/1 images | 250 B/1000 B 25%", display.TotalLine(), StringComparison.Ordinal);
    }

    [Fact]
    public void Frame_PresentBlobsDuringPush_CountTowardTheTotal()
    {
        var display = new ProgressDisplay(plain: null);
        display.PhaseStarted(RunPhase.Push, 1, 1000);
        display.ImageStarted("r/a:1");
        display.BlobStarted("r/a:1", Blob(1000));
        display.BlobFinished("r/a:1", Blob(1000), BlobOutcome.Skipped);

        Assert.Contains("1000 B/1000 B 100%", display.TotalLine(), StringComparison.Ordinal);
    }

    [Fact]
    public void Frame_WritePhase_ShowsBytesOfTheBundle()
    {
        var display = new ProgressDisplay(plain: null);
        Drive(display, running: 0, finished: Images);
        display.PhaseStarted(RunPhase.Write, 0, 4096);
        display.PhaseBytes(1024);

        var frame = display.Frame(80);

        Assert.Equal(["write + fsync 1.0 KiB/4.0 KiB 25% | -"], frame.Select(l => l[..Math.Min(l.Length, 38)]).ToList());
    }

    [Theory]
    [InlineData("oci:/home/u/.cache/openlm-mirror/export:127.0.0.1:5801/r3q3q2f4/olm-server:1.260716.1540", "olm-server:1.260716.1540")]
    [InlineData("registry.corp:5000/openlm/kafka:3.7", "kafka:3.7")]
    [InlineData("registry.corp:5000/openlm/kafka@sha256:0123456789abcdef0123", "kafka@sha256:0123456789ab")]
    [InlineData("busybox:1", "busybox:1")]
    public void ShortName_IsTheImageNotItsPath(string image, string expected) =>
        Assert.Equal(expected, ProgressDisplay.ShortName(image));

    [Theory]
    [InlineData("Auto", true, false, false, "Tty")]
    [InlineData("Auto", false, false, false, "Plain")]
    [InlineData("Auto", true, false, true, "None")]
    [InlineData("Plain", false, false, true, "Plain")]
    [InlineData("Tty", false, false, false, "Tty")]
    [InlineData("Tty", true, true, false, "None")]
    [InlineData("None", true, false, false, "None")]
    public void Effective_AppliesAutoQuietAndJson(string requested, bool interactive, bool quiet, bool json, string expected) =>
        Assert.Equal(Enum.Parse<ProgressMode>(expected), ProgressDisplay.Effective(Enum.Parse<ProgressMode>(requested), interactive, quiet, json));

    [Fact]
    public async Task Live_126ImagesOnAnAnsiTerminalOf80Columns_NoLineWiderThan80AndTheAreaCleared()
    {
        var screen = new StringWriter();
        var terminal = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.Yes,
            Out = new AnsiConsoleOutput(screen),
        });
        terminal.Profile.Width = 80;
        var console = CliConsole.Capture(new StringWriter(), new StringWriter());

        var result = await ProgressDisplay.RunAsync(console, ProgressMode.Tty, async observer =>
        {
            var display = (ProgressDisplay)observer;
            Drive(display, running: 40, finished: 3);
            await Task.Delay(700);
            for (var i = 3; i < Images; i++)
            {
                if (i >= 43)
                {
                    display.ImageStarted(ImageName(i));
                    display.BlobStarted(ImageName(i), Blob(LayerSize));
                    display.BytesTransferred(ImageName(i), LayerSize / 2);
                }

                Finish(display, ImageName(i));
            }

            await Task.Delay(300);
            return 42;
        }, terminal);

        Assert.Equal(42, result);
        var text = screen.ToString();
        var lines = AnsiEscape().Replace(text, "\n").Split('\n');
        Assert.All(lines, line => Assert.True(line.Length <= 80, $"{line.Length} columns: '{line}'"));
        Assert.Contains(lines, l => l.StartsWith("pull 3/126 images", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("  olm-server-3:1.260716.1540", StringComparison.Ordinal));
        Assert.DoesNotContain("olm-server-13:", text, StringComparison.Ordinal);

        // AutoClear: the live area is erased at the end (cursor up and erase lines after the last frame).
        Assert.EndsWith("\e[2K", text.TrimEnd('\r', '\n').Split("\e[?25h")[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Plain_OneLinePerImageAndATotalLine()
    {
        var error = new StringWriter();
        var console = CliConsole.Capture(new StringWriter(), error);

        await ProgressDisplay.RunAsync(console, ProgressMode.Plain, observer =>
        {
            Drive((ProgressDisplay)observer, running: 0, finished: Images);
            return Task.FromResult(0);
        });

        var lines = error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal($"pull: {Images} images, 18.5 GiB", lines[0]);
        Assert.Equal(Images, lines.Count(l => l.StartsWith("pulled olm-server-", StringComparison.Ordinal)));
        Assert.Contains("pulled olm-server-0:1.260716.1540 sha256:", lines[1], StringComparison.Ordinal);
        Assert.StartsWith($"pull {Images}/{Images} images | 18.5 GiB/18.5 GiB 100%", lines[^1], StringComparison.Ordinal);
        Assert.All(lines, l => Assert.DoesNotContain("oci:", l, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Cli_CopyWithProgressPlain_LogsTheImageAndTheTotal()
    {
        var source = Layout();
        var (exit, _, error) = await RunAsync("copy", "--progress", "plain", $"oci:{source}:olm/server:1.2", $"oci:{_dir.Sub("out")}");

        Assert.True(exit == ExitCodes.Success, error);
        Assert.Contains("copied server:1.2 sha256:", error, StringComparison.Ordinal);
        Assert.Contains("copy 1/1 images | ", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--progress", "none")]
    [InlineData("--quiet", null)]
    [InlineData("-q", null)]
    public async Task Cli_CopyWithProgressNoneOrQuiet_PrintsNothingOnStderr(string flag, string? value)
    {
        var source = Layout();
        string[] args = value is null ? ["copy", flag] : ["copy", flag, value];
        var (exit, output, error) = await RunAsync([.. args, $"oci:{source}:olm/server:1.2", $"oci:{_dir.Sub("out")}"]);

        Assert.Equal(ExitCodes.Success, exit);
        Assert.Equal(string.Empty, error);
        Assert.Contains("2 blobs copied", output, StringComparison.Ordinal);
    }

    [Fact]
    public void ProgressDisplay_ImageLeftAlone_PlainLineSaysUnchangedNotCopied()
    {
        // Given the plain display and an image whose target tag already named its manifest (nothing looked at or moved)
        using var plain = new StringWriter();
        var display = new ProgressDisplay(plain);
        display.PhaseStarted(RunPhase.Check, 2, 0);
        display.ImageStarted("a");
        display.ImageStarted("b");

        // When one finishes untouched and the other with a blob found present
        display.ImageFinished("a", new CopyResult { Source = "a", Destination = "a", Root = Blob(512), SourceRoot = Blob(512), PlatformsKept = [], Manifests = 1 });
        display.ImageFinished("b", new CopyResult { Source = "b", Destination = "b", Root = Blob(512), SourceRoot = Blob(512), PlatformsKept = [], Manifests = 1, BlobsSkipped = 1 });

        // Then the untouched one says so, the other keeps the counts
        var text = plain.ToString();
        Assert.Contains("unchanged a sha256:", text, StringComparison.Ordinal);
        Assert.Contains("(the target already has it under this tag)", text, StringComparison.Ordinal);
        Assert.Contains("copied b sha256:", text, StringComparison.Ordinal);
        Assert.Contains("0 blobs copied, 1 present", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_ProgressUnknownValue_IsAUsageError()
    {
        var (exit, _, error) = await RunAsync("copy", "--progress", "fancy", "oci:/nope:a:1", $"oci:{_dir.Sub("out")}");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("fancy", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_dir.Sub("out")));
    }

    /// <summary>126 export images through the pull phase: <paramref name="finished"/> done, the next <paramref name="running"/> half way.</summary>
    private static void Drive(ProgressDisplay display, int running, int finished)
    {
        display.PhaseStarted(RunPhase.Pull, Images, Images * LayerSize);
        for (var i = 0; i < Math.Min(Images, finished + running); i++)
        {
            var image = ImageName(i);
            display.ImageStarted(image);
            display.BlobStarted(image, Blob(LayerSize));
            display.BytesTransferred(image, LayerSize / 2);
            if (i < finished)
            {
                Finish(display, image);
            }
        }
    }

    private static string ImageName(int i) => $"oci:/home/operator/.cache/openlm-mirror/export:127.0.0.1:5801/r3q3q2f4/olm-server-{i}:1.260716.1540";

    /// <summary>Moves the second half of the image's layer and finishes it.</summary>
    private static void Finish(ProgressDisplay display, string image)
    {
        display.BytesTransferred(image, LayerSize / 2);
        display.ImageFinished(image, new CopyResult
        {
            Source = image,
            Destination = image,
            Root = Blob(512),
            SourceRoot = Blob(512),
            PlatformsKept = [],
            BytesCopied = LayerSize,
            BlobsCopied = 1,
        });
    }

    private static Descriptor Blob(long size) =>
        new() { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Parse("sha256:" + new string('a', 64)), Size = size };

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

    [GeneratedRegex(@"\e\[[0-9;?]*[A-Za-z]|\r")]
    private static partial Regex AnsiEscape();
}
