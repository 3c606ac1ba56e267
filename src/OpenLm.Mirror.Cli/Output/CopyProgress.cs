using System.Collections.Concurrent;
using System.Diagnostics;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Oci;
using Spectre.Console;

namespace OpenLm.Mirror.Cli.Output;

/// <summary>
/// Shows copy progress: a live display (bytes, rate, per image) on a terminal, plain log lines otherwise.
/// </summary>
internal sealed class CopyProgress : ICopyObserver
{
    private readonly IMirrorLog _log;
    private readonly ConcurrentDictionary<string, ProgressTask> _tasks = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private ProgressContext? _context;

    private CopyProgress(IMirrorLog log) => _log = log;

    /// <summary>Runs <paramref name="work"/> with progress shown the right way for the console.</summary>
    public static async Task<T> RunAsync<T>(CliConsole console, IMirrorLog log, bool quiet, Func<ICopyObserver, Task<T>> work)
    {
        var progress = new CopyProgress(log);
        if (!console.IsInteractive || quiet)
        {
            return await work(progress).ConfigureAwait(false);
        }

        var ansi = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(console.Error) });
        return await ansi.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn())
            .StartAsync(async ctx =>
            {
                progress._context = ctx;
                return await work(progress).ConfigureAwait(false);
            }).ConfigureAwait(false);
    }

    public void ImageStarted(string image)
    {
        if (_context is { } ctx)
        {
            _tasks[image] = ctx.AddTask(Markup.Escape(image), maxValue: 0.0001);
        }
        else
        {
            _log.Info($"copying {image}");
        }
    }

    public void BlobStarted(string image, Descriptor blob)
    {
        if (_tasks.TryGetValue(image, out var task))
        {
            lock (task)
            {
                task.MaxValue = (task.MaxValue < 1 ? 0 : task.MaxValue) + blob.Size;
            }
        }
    }

    public void BytesTransferred(string image, long bytes)
    {
        if (_tasks.TryGetValue(image, out var task))
        {
            task.Increment(bytes);
        }
    }

    public void BlobFinished(string image, Descriptor blob, BlobOutcome outcome)
    {
        if (outcome != BlobOutcome.Copied && _tasks.TryGetValue(image, out var task))
        {
            task.Increment(blob.Size);
        }
    }

    public void ManifestFinished(string image, Descriptor manifest, BlobOutcome outcome)
    {
    }

    public void ImageFinished(string image, CopyResult result)
    {
        if (_tasks.TryGetValue(image, out var task))
        {
            task.Value = task.MaxValue;
            task.StopTask();
        }
        else
        {
            _log.Info($"copied {image} {result.Root.Digest}: {result.BlobsCopied} blobs copied ({Format.Bytes(result.BytesCopied)}), {result.BlobsSkipped} already present, {result.BlobsMounted} mounted [{Format.Seconds(_clock.Elapsed)}]");
        }
    }
}
