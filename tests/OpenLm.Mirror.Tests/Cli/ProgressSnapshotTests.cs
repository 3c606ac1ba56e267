using System.Text.RegularExpressions;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.EngineLoad;
using OpenLm.Mirror.Oci;
using Spectre.Console;
using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary>
/// Exact frames of the progress display on a manual clock (so rates and ETAs are fixed): 126 export images at 80
/// columns, live on a Spectre console and as <see cref="ProgressDisplay.Frame"/>; the phases of export, import and
/// load (resolve, pull, write + fsync, check, push, tag, verify + spool, import) in plain mode.
/// </summary>
public sealed partial class ProgressSnapshotTests
{
    private const int Images = 126;
    private const long LayerSize = 150L * 1024 * 1024;

    /// <summary>The frame after 20 s: 3 images done, 40 half way (10 shown, the rest summarised), total with rate and ETA.</summary>
    private static readonly string[] PullFrameAt80 =
    [
        "  olm-server-3:1.260716.1540      [#####-----]  50% 75.0 MiB/150.0 MiB 3.8 MiB/s",
        "  olm-server-4:1.260716.1540      [#####-----]  50% 75.0 MiB/150.0 MiB 3.8 MiB/s",
        "  olm-server-5:1.260716.1540      [#####-----]  50% 75.0 MiB/150.0 MiB 3.8 MiB/s",
        "  olm-server-6:1.260716.1540      [#####-----]  50% 75.0 MiB/150.0 MiB 3.8 MiB/s",
        "  olm-server-7:1.260716.1540      [#####-----]  50% 75.0 MiB/150.0 MiB 3.8 MiB/s",
        "  olm-server-8:1.260716.1540      [#####-----]  50% 75.0 MiB/150.0 MiB 3.8 MiB/s",
        "  olm-server-9:1.260716.1540      [#####-----]  50% 75.0 MiB/150.0 MiB 3.8 MiB/s",
        "  olm-server-10:1.260716.1540     [#####-----]  50% 75.0 MiB/150.0 MiB 3.8 MiB/s",
        "  olm-server-11:1.260716.1540     [#####-----]  50% 75.0 MiB/150.0 MiB 3.8 MiB/s",
        "  olm-server-12:1.260716.1540     [#####-----]  50% 75.0 MiB/150.0 MiB 3.8 MiB/s",
        "  +113 more (30 running, 83 queued)",
        "pull 3/126 images | 3.4 GiB/18.5 GiB 18% | 172.5 MiB/s | ETA 1m29s",
    ];

    [Fact]
    public void Frame_126ImagesAt80Columns_MatchesTheSnapshot()
    {
        var clock = new ManualClock();
        var display = new ProgressDisplay(plain: null, clock);
        Drive(display, running: 40, finished: 3);
        clock.Advance(TimeSpan.FromSeconds(20));

        var frame = display.Frame(80);

        Assert.Equal(PullFrameAt80, frame);
        Assert.All(frame, line => Assert.True(line.Length <= 80, $"{line.Length} columns: '{line}'"));
    }

    [Fact]
    public async Task Live_126ImagesOnASpectreConsoleOf80Columns_RendersTheSnapshotFrameThenClearsIt()
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
        var clock = new ManualClock();

        await ProgressDisplay.RunAsync(CliConsole.Capture(new StringWriter(), new StringWriter()), ProgressMode.Tty, async observer =>
        {
            Drive((ProgressDisplay)observer, running: 40, finished: 3);
            clock.Advance(TimeSpan.FromSeconds(20));
            await Task.Delay(600);
            return 0;
        }, terminal, clock);

        // The last frame drawn is exactly the snapshot: ten rows, the summary, the total line, nothing wider than 80
        var text = screen.ToString();
        var lines = AnsiEscape().Replace(text, "\n").Split('\n').Select(l => l.TrimEnd()).ToList();
        var lastTotal = lines.FindLastIndex(l => l.StartsWith("pull ", StringComparison.Ordinal));
        Assert.Equal(PullFrameAt80, lines[(lastTotal - PullFrameAt80.Length + 1)..(lastTotal + 1)]);
        Assert.All(AnsiEscape().Replace(text, "\n").Split('\n'), line => Assert.True(line.Length <= 80, $"{line.Length} columns: '{line}'"));
        Assert.DoesNotContain("olm-server-13:", text, StringComparison.Ordinal);

        // And the live area is erased at the end: the cursor goes back up over the 12 lines and each is cleared
        var tail = text.TrimEnd('\r', '\n').Split("\e[?25h")[0];
        Assert.EndsWith("\e[2K", tail, StringComparison.Ordinal);
        Assert.Equal(PullFrameAt80.Length, CountOf(tail[tail.LastIndexOf(PullFrameAt80[^1], StringComparison.Ordinal)..], "\e[2K"));
    }

    [Fact]
    public void Plain_ExportPhases_ResolvePullWriteEachAnnouncedWithTheirWork()
    {
        var error = new StringWriter();
        var clock = new ManualClock();
        var display = new ProgressDisplay(error, clock);

        display.PhaseStarted(RunPhase.Resolve, 0, 0);
        clock.Advance(TimeSpan.FromSeconds(3));
        var resolving = display.TotalLine();
        display.PhaseStarted(RunPhase.Pull, 2, 300L << 20);
        display.PhaseStarted(RunPhase.Write, 0, 300L << 20);
        display.PhaseBytes(150L << 20);
        clock.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal("resolve 3s", resolving);
        Assert.Equal(["resolve: started", "pull: 2 images, 300.0 MiB", "write + fsync: 300.0 MiB"], Lines(error));
        Assert.Equal("write + fsync 150.0 MiB/300.0 MiB 50% | 75.0 MiB/s | ETA 0m02s", display.TotalLine());
    }

    [Fact]
    public void Plain_ImportPhases_CheckPushTag()
    {
        var error = new StringWriter();
        var clock = new ManualClock();
        var display = new ProgressDisplay(error, clock);

        display.PhaseStarted(RunPhase.Check, 5, 0);
        clock.Advance(TimeSpan.FromSeconds(1));
        var checking = display.TotalLine();
        display.PhaseStarted(RunPhase.Push, 5, 1L << 30);
        display.PhaseStarted(RunPhase.Tag, 5, 0);

        Assert.Equal("check 0/5 images | 1s", checking);
        Assert.Equal(["check: 5 images", "push: 5 images, 1.0 GiB", "tag: 5 images"], Lines(error));
    }

    [Fact]
    public async Task Load_SpoolThenImportIntoTheEngine_BothPhasesShowTheirBytes()
    {
        // Given load's two phases observed in plain mode: the bundle read (spool), then the archive the engine reads
        var error = new StringWriter();
        var clock = new ManualClock();
        var display = new ProgressDisplay(error, clock);
        var engine = new ReadingEngine();
        var archive = new MemoryStream(new byte[3 << 20]);

        display.PhaseStarted(RunPhase.Spool, 0, 8L << 20);
        RunObserver.PhaseBytes(display, null)!.Report(4L << 20);
        clock.Advance(TimeSpan.FromSeconds(2));
        var spooling = display.TotalLine();
        await new ObservedEngine(engine, display).LoadAsync(archive, CancellationToken.None);
        clock.Advance(TimeSpan.FromSeconds(1));

        // Then each phase is announced with its size, and the import's total is the bytes the engine read
        Assert.Equal("verify + spool 4.0 MiB/8.0 MiB 50% | 2.0 MiB/s | ETA 0m02s", spooling);
        Assert.Equal(["verify + spool: 8.0 MiB", "import: 3.0 MiB"], Lines(error));
        Assert.Equal(3 << 20, engine.Read);
        Assert.Equal("import 3.0 MiB/3.0 MiB 100% | 3.0 MiB/s", display.TotalLine());
    }

    private static void Drive(ProgressDisplay display, int running, int finished)
    {
        display.PhaseStarted(RunPhase.Pull, Images, Images * LayerSize);
        for (var i = 0; i < Math.Min(Images, finished + running); i++)
        {
            var image = $"oci:/home/operator/.cache/openlm-mirror/export:127.0.0.1:5801/r3q3q2f4/olm-server-{i}:1.260716.1540";
            display.ImageStarted(image);
            display.BlobStarted(image, Blob(LayerSize));
            display.BytesTransferred(image, LayerSize / 2);
            if (i < finished)
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
        }
    }

    private static Descriptor Blob(long size) =>
        new() { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Parse("sha256:" + new string('a', 64)), Size = size };

    private static string[] Lines(StringWriter writer) =>
        writer.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static int CountOf(string text, string part)
    {
        var count = 0;
        for (var at = text.IndexOf(part, StringComparison.Ordinal); at >= 0; at = text.IndexOf(part, at + part.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    [GeneratedRegex(@"\e\[[0-9;?]*[A-Za-z]|\r")]
    private static partial Regex AnsiEscape();

    /// <summary>A clock that moves only when told.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _ticks);

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }

    /// <summary>An engine that reads the whole archive, as the Docker engine's load endpoint does.</summary>
    private sealed class ReadingEngine : IImageEngine
    {
        public long Read { get; private set; }

        public EngineInfo Info => throw new NotSupportedException();

        public async Task<IReadOnlyList<string>> LoadAsync(Stream archive, CancellationToken cancellationToken)
        {
            var buffer = new byte[81920];
            int read;
            while ((read = await archive.ReadAsync(buffer, cancellationToken)) > 0)
            {
                Read += read;
            }

            return [];
        }

        public Task<EngineImage?> InspectAsync(string reference, CancellationToken cancellationToken) => Task.FromResult<EngineImage?>(null);
    }
}
