using System.Globalization;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Oci;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace OpenLm.Mirror.Cli.Output;

/// <summary>How progress is shown: <c>--progress auto|tty|plain|none</c>.</summary>
internal enum ProgressMode
{
    /// <summary>A live display on a terminal, plain lines otherwise.</summary>
    Auto,

    /// <summary>The live display (rows per image, a pinned total line).</summary>
    Tty,

    /// <summary>One line per image finished and a total line every few seconds.</summary>
    Plain,

    /// <summary>Nothing.</summary>
    None,
}

/// <summary>
/// The one progress display of the long commands (export, import, copy): per-image rows named by the image with bytes,
/// %, and rate, at most <see cref="MaxRows"/> of them with the rest summarised, and a pinned total line with the phase,
/// bytes, images done/total, rate and ETA. Everything goes to stderr; the live area is cleared at the end.
/// </summary>
internal sealed class ProgressDisplay : IRunObserver
{
    public const int MaxRows = 10;

    /// <summary>How often the plain mode prints its total line.</summary>
    public static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(5);

    private readonly Lock _gate = new();
    private readonly List<Row> _active = [];
    private readonly Dictionary<string, Row> _rows = new(StringComparer.Ordinal);
    private readonly TextWriter? _plain;
    private readonly TimeProvider _time;
    private long _phaseStart;
    private RunPhase? _phase;
    private int _imagesPlanned;
    private int _imagesDone;
    private int _imagesDoneInPhase;
    private long _bytesPlanned;
    private long _bytesSeen;
    private long _bytesDone;

    /// <param name="plain">Where plain-mode lines go; null for the live display (rendered with <see cref="Frame"/>).</param>
    /// <param name="time">The clock of rates and ETAs (tests pass a manual one for exact frames).</param>
    public ProgressDisplay(TextWriter? plain, TimeProvider? time = null)
    {
        _plain = plain;
        _time = time ?? TimeProvider.System;
        _phaseStart = _time.GetTimestamp();
    }

    /// <summary>The mode of <c>--progress</c> as given, after auto, <c>--quiet</c> and <c>--json</c> are applied.</summary>
    public static ProgressMode Effective(ProgressMode requested, bool interactive, bool quiet, bool json) => requested switch
    {
        _ when quiet => ProgressMode.None,
        ProgressMode.Auto when json => ProgressMode.None,
        ProgressMode.Auto => interactive ? ProgressMode.Tty : ProgressMode.Plain,
        var explicitMode => explicitMode,
    };

    /// <summary>Runs <paramref name="work"/> with progress shown in <paramref name="mode"/> (already <see cref="Effective"/>).</summary>
    public static async Task<T> RunAsync<T>(CliConsole console, ProgressMode mode, Func<ICopyObserver, Task<T>> work, IAnsiConsole? terminal = null, TimeProvider? time = null)
    {
        switch (mode)
        {
            case ProgressMode.None:
                return await work(NullCopyObserver.Instance).ConfigureAwait(false);
            case ProgressMode.Plain:
                var plain = new ProgressDisplay(console.Error, time);
                using (var timer = new Timer(_ => plain.WriteTotalLine(), null, PlainInterval, PlainInterval))
                {
                    var result = await work(plain).ConfigureAwait(false);
                    plain.WriteTotalLine();
                    return result;
                }

            default:
                var live = new ProgressDisplay(null, time);
                var ansi = terminal ?? Terminal(console);
                T? value = default;
                await ansi.Live(live.Render(ansi.Profile.Width))
                    .AutoClear(true)
                    .Overflow(VerticalOverflow.Ellipsis)
                    .StartAsync(async ctx =>
                    {
                        var running = work(live);
                        while (!running.IsCompleted)
                        {
                            ctx.UpdateTarget(live.Render(ansi.Profile.Width));
                            await Task.WhenAny(running, Task.Delay(200)).ConfigureAwait(false);
                        }

                        value = await running.ConfigureAwait(false);
                    }).ConfigureAwait(false);
                return value!;
        }
    }

    /// <summary>A Spectre console on stderr; no colour when NO_COLOR is set (https://no-color.org).</summary>
    public static IAnsiConsole Terminal(CliConsole console) => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(console.Error),
        ColorSystem = Environment.GetEnvironmentVariable("NO_COLOR") is { Length: > 0 } ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
    });

    /// <summary>The short name a row shows: the image's last path segment and tag (<c>olm-server:1.2</c>), not a cache path.</summary>
    public static string ShortName(string image)
    {
        var at = image.IndexOf('@', StringComparison.Ordinal);
        var name = at < 0 ? image : image[..at];
        var digest = at < 0 ? string.Empty : image[(at + 1)..];
        var slash = name.LastIndexOf('/');
        var shortName = slash < 0 ? name : name[(slash + 1)..];
        if (digest.Length > 0)
        {
            var colon = digest.IndexOf(':', StringComparison.Ordinal);
            var hex = colon < 0 ? digest : digest[(colon + 1)..];
            shortName += "@" + (colon < 0 ? string.Empty : digest[..(colon + 1)]) + hex[..Math.Min(12, hex.Length)];
        }

        return shortName;
    }

    public void PhaseStarted(RunPhase phase, int images, long bytes)
    {
        lock (_gate)
        {
            _phase = phase;
            _imagesPlanned = images;
            _imagesDoneInPhase = 0;
            _bytesPlanned = bytes;
            _bytesDone = 0;
            _bytesSeen = 0;
            _phaseStart = _time.GetTimestamp();
        }

        if (_plain is not null && (phase != RunPhase.Tag || images > 0))
        {
            var work = string.Join(", ", new[] { images > 0 ? $"{images} images" : null, bytes > 0 ? Format.Bytes(bytes) : null }.OfType<string>());
            WriteLine(work.Length > 0 ? $"{PhaseName(phase)}: {work}" : $"{PhaseName(phase)}: started", Field("phase", PhaseName(phase)), Field("images", images), Field("bytes", bytes));
        }
    }

    public void PhaseBytes(long bytesDone)
    {
        lock (_gate)
        {
            _bytesDone = bytesDone;
        }
    }

    public void ImageStarted(string image)
    {
        lock (_gate)
        {
            var row = new Row(ShortName(image), _time.GetTimestamp());
            _rows[image] = row;
            _active.Add(row);
        }
    }

    public void BlobStarted(string image, Descriptor blob)
    {
        lock (_gate)
        {
            _bytesSeen += blob.Size;
            if (_rows.TryGetValue(image, out var row))
            {
                row.Total += blob.Size;
            }
        }
    }

    public void BytesTransferred(string image, long bytes)
    {
        lock (_gate)
        {
            _bytesDone += bytes;
            if (_rows.TryGetValue(image, out var row))
            {
                row.Done += bytes;
                row.Moved += bytes;
            }
        }
    }

    public void BlobFinished(string image, Descriptor blob, BlobOutcome outcome)
    {
        if (outcome == BlobOutcome.Copied)
        {
            return;
        }

        lock (_gate)
        {
            // Present or mounted: nothing moves, but the work is done. During a push the planned total counts it.
            if (_phase is RunPhase.Push or RunPhase.Copy)
            {
                _bytesDone += blob.Size;
            }

            if (_rows.TryGetValue(image, out var row))
            {
                row.Done += blob.Size;
            }
        }
    }

    public void ManifestFinished(string image, Descriptor manifest, BlobOutcome outcome)
    {
    }

    public void ImageFinished(string image, CopyResult result)
    {
        string? line = null;
        string? name = null;
        lock (_gate)
        {
            if (_rows.Remove(image, out var row))
            {
                _active.Remove(row);
                name = row.Name;
                // Not even looked at: the target's tag already names this manifest (a re-import), so say so, not "copied".
                line = result is { BytesCopied: 0, BlobsCopied: 0, BlobsMounted: 0, BlobsSkipped: 0 }
                    ? $"unchanged {row.Name} {result.Root.Digest} (the target already has it under this tag)"
                    : $"{VerbOf(_phase)} {row.Name} {result.Root.Digest} ({Format.Bytes(result.BytesCopied)} moved, {result.BlobsCopied} blobs copied, {result.BlobsSkipped} present, {result.BlobsMounted} mounted)";
            }

            _imagesDone++;
            _imagesDoneInPhase++;
        }

        if (_plain is not null && line is not null)
        {
            WriteLine(line, Field("phase", PhaseName(_phase)), Field("image", name), Field("digest", result.Root.Digest.ToString()), Field("bytesMoved", result.BytesCopied));
        }
    }

    /// <summary>The live frame at <paramref name="width"/> columns: at most <see cref="MaxRows"/> image rows, a summary of the rest, then the total line.</summary>
    public IReadOnlyList<string> Frame(int width)
    {
        width = Math.Max(20, width);
        var lines = new List<string>();
        lock (_gate)
        {
            foreach (var row in _active.Take(MaxRows))
            {
                lines.Add(Fit(RowLine(row, width), width));
            }

            var hidden = Math.Max(0, _active.Count - MaxRows);
            var waiting = Math.Max(0, _imagesPlanned - _imagesDoneInPhase - _active.Count);
            if (hidden + waiting > 0)
            {
                lines.Add(Fit($"  +{hidden + waiting} more ({hidden} running, {waiting} queued)", width));
            }

            lines.Add(Fit(TotalLine(), width));
        }

        return lines;
    }

    /// <summary>The total line: phase, images done/total, bytes, %, rate, ETA.</summary>
    public string TotalLine()
    {
        lock (_gate)
        {
            var elapsed = _time.GetElapsedTime(_phaseStart);
            var total = Math.Max(Math.Max(_bytesPlanned, _bytesSeen), _bytesDone);
            var done = Math.Clamp(_bytesDone, 0, total);
            var images = _imagesPlanned > 0 ? $"{_imagesDoneInPhase}/{_imagesPlanned} images | " : _phase is null or RunPhase.Copy && (_imagesDone > 0 || _active.Count > 0) ? $"{_imagesDone} images | " : string.Empty;
            if (total <= 0)
            {
                // A phase of requests, not bytes (resolve, check): how far and how long.
                return string.Create(CultureInfo.InvariantCulture, $"{PhaseName(_phase)} {images}{elapsed.TotalSeconds:0}s");
            }

            var rate = elapsed.TotalSeconds > 0.5 ? done / elapsed.TotalSeconds : 0;
            var eta = rate > 0 && total > done ? $" | ETA {Eta(TimeSpan.FromSeconds((total - done) / rate))}" : string.Empty;
            return $"{PhaseName(_phase)} {images}{Format.Bytes(done)}/{Format.Bytes(total)} {Percent(done, total)} | {(rate > 0 ? Format.Bytes((long)rate) + "/s" : "-")}{eta}";
        }
    }

    private string RowLine(Row row, int width)
    {
        var total = Math.Max(row.Total, row.Done);
        var done = Math.Max(0, row.Done);
        var elapsed = _time.GetElapsedTime(row.Started).TotalSeconds;
        var rate = elapsed > 0.5 ? Format.Bytes((long)(row.Moved / elapsed)) + "/s" : "-";
        var figures = $"{Percent(done, total),4} {Format.Bytes(done)}/{Format.Bytes(total)} {rate}";
        var bar = width >= 70 ? Bar(done, total, 10) + " " : string.Empty;
        var nameWidth = Math.Max(8, width - 2 - 1 - bar.Length - figures.Length);
        return $"  {Fit(row.Name, nameWidth).PadRight(nameWidth)} {bar}{figures}";
    }

    private static string Bar(long done, long total, int cells)
    {
        var filled = total <= 0 ? 0 : (int)Math.Clamp(done * cells / total, 0, cells);
        return "[" + new string('#', filled) + new string('-', cells - filled) + "]";
    }

    private static string Percent(long done, long total) =>
        total <= 0 ? "-" : string.Create(CultureInfo.InvariantCulture, $"{Math.Clamp(done * 100 / total, 0, 100)}%");

    private static string Eta(TimeSpan left) => left.TotalHours >= 1
        ? string.Create(CultureInfo.InvariantCulture, $"{(int)left.TotalHours}h{left.Minutes:00}m")
        : string.Create(CultureInfo.InvariantCulture, $"{left.Minutes}m{left.Seconds:00}s");

    private static string PhaseName(RunPhase? phase) => phase switch
    {
        RunPhase.Pull => "pull",
        RunPhase.Write => "write + fsync",
        RunPhase.Push => "push",
        RunPhase.Tag => "tag",
        RunPhase.Resolve => "resolve",
        RunPhase.Check => "check",
        RunPhase.Spool => "verify + spool",
        RunPhase.Import => "import",
        _ => "copy",
    };

    private static string VerbOf(RunPhase? phase) => phase switch
    {
        RunPhase.Pull => "pulled",
        RunPhase.Push => "pushed",
        RunPhase.Import => "loaded",
        _ => "copied",
    };

    /// <summary>Cuts <paramref name="text"/> to <paramref name="width"/> cells, ending in an ellipsis when cut.</summary>
    private static string Fit(string text, int width) =>
        text.Length <= width ? text : text[..Math.Max(0, width - 1)] + "…";

    private IRenderable Render(int width) => new Rows(Frame(width).Select(l => new Text(l)));

    private void WriteTotalLine()
    {
        if (_phase is null && _imagesDone == 0 && _active.Count == 0)
        {
            return;
        }

        long done, total;
        lock (_gate)
        {
            total = Math.Max(Math.Max(_bytesPlanned, _bytesSeen), _bytesDone);
            done = Math.Clamp(_bytesDone, 0, total);
        }

        WriteLine(TotalLine(), Field("phase", PhaseName(_phase)), Field("imagesDone", _imagesDoneInPhase), Field("images", _imagesPlanned), Field("bytesDone", done), Field("bytes", total));
    }

    private static KeyValuePair<string, object?> Field(string key, object? value) => new(key, value);

    /// <summary>A plain line; with <c>--log-format json</c> an entry with the line's fields.</summary>
    private void WriteLine(string line, params KeyValuePair<string, object?>[] fields)
    {
        if (_plain is JsonLogWriter json)
        {
            json.WriteEntry("info", line, fields);
            return;
        }

        lock (_gate)
        {
            _plain!.WriteLine(line);
        }
    }

    private sealed class Row(string name, long started)
    {
        public string Name { get; } = name;

        /// <summary>The <see cref="TimeProvider"/> timestamp the image started at.</summary>
        public long Started { get; } = started;

        public long Total { get; set; }

        public long Done { get; set; }

        public long Moved { get; set; }
    }
}
