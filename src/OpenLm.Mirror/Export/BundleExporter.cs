using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Export;

/// <summary>What an export run should do.</summary>
public sealed record ExportRequest
{
    public required LockFile Lock { get; init; }

    public required string OutputPath { get; init; }

    /// <summary>An OCI layout that keeps verified blobs between runs; an interrupted export resumes from it.</summary>
    public required string CacheDirectory { get; init; }

    public BundleWriteOptions WriteOptions { get; init; } = new();

    public int ParallelImages { get; init; } = 4;

    public string ToolVersion { get; init; } = "0.0.0";

    /// <summary>Previous bundles, locks or import receipts: when any is given, a delta bundle is written that leaves out the configs and layers they hold.</summary>
    public IReadOnlyList<string> Bases { get; init; } = [];
}

/// <summary>What an export did; <paramref name="BlobsReused"/> counts the lock's blobs that were already in the cache.</summary>
public sealed record ExportResult(BundleWriteResult Bundle, long BytesDownloaded, int BlobsDownloaded, int BlobsReused, TimeSpan PullTime, TimeSpan WriteTime);

/// <summary>
/// Pulls a locked release into a cache layout (in parallel, every blob verified as it streams) and writes the signed
/// bundle while it pulls: once every image's manifests are known the writer starts, copying each config and layer as
/// soon as the pull has stored it, and renames the bundle into place only after the whole pull succeeded. Everything
/// already in the cache is reused, so an export interrupted at any point resumes without downloading again and
/// produces the same bundle.
/// </summary>
public sealed class BundleExporter(RegistryConnector registries, CopyOptions copyOptions, IMirrorLog log)
{
    /// <summary>Headroom kept free on top of what the export needs.</summary>
    public const long DiskHeadroomBytes = 64L * 1024 * 1024;

    public async Task<ExportResult> ExportAsync(ExportRequest request, SigningKey key, IProgress<long>? bundleProgress = null, CancellationToken cancellationToken = default)
    {
        var lockFile = request.Lock;
        if (lockFile.Images.Count == 0 && lockFile.Charts.Count == 0)
        {
            throw new InputException("the lock lists no images and no charts: nothing to export");
        }

        var output = Path.GetFullPath(request.OutputPath);
        if (File.Exists(output) && !request.WriteOptions.Overwrite)
        {
            throw new InputException($"'{request.OutputPath}' already exists; remove it or allow overwriting") { Remedy = Remedy.Overwrite, Subject = request.OutputPath };
        }

        if (request.WriteOptions.SplitSize is not null && File.Exists(BundlePartSet.PartPath(output, 1)) && !request.WriteOptions.Overwrite)
        {
            throw new InputException($"'{BundlePartSet.PartPath(output, 1)}' already exists; remove the parts or allow overwriting") { Remedy = Remedy.Overwrite, Subject = BundlePartSet.PartPath(output, 1) };
        }

        // Refused before anything is pulled: finding this out after an hour of downloads helps nobody.
        var directory = Path.GetDirectoryName(output);
        if (Directory.Exists(output))
        {
            throw new InputException($"'{request.OutputPath}' is a directory; the bundle is one file: give its file name");
        }

        if (directory is not null && !Directory.Exists(directory))
        {
            throw new InputException($"directory '{directory}' does not exist: create it first or write the bundle elsewhere");
        }

        // Bases are read (and a foreign or malformed one refused) before anything is pulled.
        var delta = request.Bases.Count == 0
            ? null
            : (await Delta.DeltaBases.LoadAsync(request.Bases, lockFile.Name, cancellationToken).ConfigureAwait(false)).Input;

        Directory.CreateDirectory(request.CacheDirectory);
        var cache = OpenCache(request.CacheDirectory);
        var missing = lockFile.Blobs.Where(b => !File.Exists(cache.BlobPath(Digest.Parse(b.Digest)))).ToList();
        var alreadyCached = lockFile.Blobs.Count - missing.Count;
        CheckDiskSpace(missing.Sum(b => b.Size), lockFile.TotalBytes, cache, output);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var platforms = lockFile.Platforms.Select(Platform.Parse).ToList();
        var copier = new GraphCopier(new CopyOptions
        {
            Concurrency = copyOptions.Concurrency,
            Platforms = platforms,
            Observer = copyOptions.Observer,
            Retry = copyOptions.Retry,
            // Blobs are pulled in the order the writer copies them (configs, then layers, each by digest; a delta's
            // omitted blobs last), so the writer, a step behind the pull, seldom waits.
            BlobOrder = edge => BlobOrder(edge, delta),
        });
        RunObserver.PhaseStarted(
            copyOptions.Observer,
            RunPhase.Pull,
            lockFile.Images.Count(i => !File.Exists(cache.BlobPath(Digest.Parse(i.Digest)))),
            missing.Sum(b => b.Size));

        using var stopPull = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var plan = new PullPlan(lockFile.Images.Count);
        var pullTime = TimeSpan.Zero;
        var pull = PullAsync(lockFile, cache, copier, request.ParallelImages, plan, stopPull.Token);
        var pulled = pull.ContinueWith(_ => pullTime = clock.Elapsed, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        var writeClock = new System.Diagnostics.Stopwatch();
        try
        {
            var charts = new List<(LockedChart Locked, HelmChartArtifact Artifact)>();
            using (var chartDownloads = new PlatformSpec.ChartSources.ChartDownloader(registries, log))
            {
                foreach (var chart in lockFile.Charts)
                {
                    // Local charts are re-read, remote ones downloaded again; either way a sha256 other than the lock's is refused.
                    using var archive = await LockedCharts.OpenAsync(chart, chartDownloads, cancellationToken).ConfigureAwait(false);
                    charts.Add((chart, await HelmChartPacker.PackAsync(cache, archive.Path, lockFile.Source, cancellationToken).ConfigureAwait(false)));
                }
            }

            // The writer starts once every image's manifests are known (they fix the whole bundle layout); a pull that
            // fails first fails the export here, before anything is written.
            await Task.WhenAny(plan.Complete, pull).ConfigureAwait(false);
            if (pull.IsCompleted)
            {
                await pull.ConfigureAwait(false);
            }

            await plan.Complete.ConfigureAwait(false);
            IReadOnlyList<Descriptor> entries = [.. plan.Roots, .. charts.Select(c => c.Artifact.Manifest.WithRefName(c.Artifact.Reference))];
            var graph = await BundleGraph.PlanAsync(cache, entries, plan.Manifests, cancellationToken).ConfigureAwait(false);
            log.Info($"planned {lockFile.Images.Count} images and {charts.Count} charts in {clock.Elapsed.TotalSeconds:0.0}s; writing {request.OutputPath} while pulling into {cache.Root}");

            writeClock.Start();
            var manifest = new BundleManifest
            {
                Platform = new BundleProduct { Name = lockFile.Name, Version = lockFile.Version },
                Tool = new BundleProduct { Name = "openlm-mirror", Version = request.ToolVersion },
                Source = lockFile.Source,
                Images = lockFile.Images.Select(i => new BundleImage
                {
                    Reference = i.Reference,
                    Digest = i.Digest,
                    MediaType = i.MediaType,
                    Platforms = i.Children.Select(c => c.Platform).ToList(),
                    Size = i.Size,
                    Values = i.Values,
                }).ToList(),
                Charts = charts.Select(c => new BundleChart
                {
                    Name = c.Artifact.Name,
                    Version = c.Artifact.Version,
                    Reference = c.Artifact.Reference,
                    Digest = c.Artifact.Manifest.Digest.ToString(),
                }).ToList(),
            };
            manifest = manifest with { Created = request.WriteOptions.SourceDateEpoch ?? CreationTime(cache, lockFile) };

            // The display follows the pull until it is done, then the write: its byte count and its total are the writer's
            // (a delta's or a split bundle's total is not the lock's).
            var observed = RunObserver.PhaseBytes(copyOptions.Observer, null);
            var progress = new WriteProgress(bundleProgress, observed);
            var sized = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            _ = Task.WhenAll(pulled, sized.Task).ContinueWith(
                t =>
                {
                    if (pull.IsCompletedSuccessfully && sized.Task.IsCompletedSuccessfully)
                    {
                        RunObserver.PhaseStarted(copyOptions.Observer, RunPhase.Write, 0, sized.Task.Result);
                        progress.Observe();
                    }
                },
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);

            var gate = new BundleWriteGate(
                (blob, ct) => WhenStoredAsync(cache, blob, pull, ct),
                async ct =>
                {
                    await pull.WaitAsync(ct).ConfigureAwait(false);
                    // The cache keeps blobs of earlier releases; its index lists exactly what this bundle holds.
                    await cache.ReplaceIndexAsync(entries, ct).ConfigureAwait(false);
                })
            {
                Sized = total => sized.TrySetResult(total),
            };
            using var stopWrite = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var write = BundleWriter.WriteAsync(cache, graph, manifest, key, output, request.WriteOptions with { Delta = delta }, progress, gate, stopWrite.Token);
            await Task.WhenAny(pull, write).ConfigureAwait(false);
            if (pull.IsFaulted || pull.IsCanceled)
            {
                // A failed pull cancels the writer, which deletes its partial file; the export fails with the pull's error.
                await stopWrite.CancelAsync().ConfigureAwait(false);
                await Quietly(write).ConfigureAwait(false);
                await pull.ConfigureAwait(false);
            }

            var written = await write.ConfigureAwait(false);
            await pulled.ConfigureAwait(false);
            log.Info($"pulled {lockFile.Images.Count} images into {cache.Root} in {pullTime.TotalSeconds:0.0}s; wrote {request.OutputPath} in {writeClock.Elapsed.TotalSeconds:0.0}s, overlapping the pull");
            return new ExportResult(
                written,
                plan.Results.Sum(r => r?.BytesCopied ?? 0),
                plan.Results.Sum(r => r?.BlobsCopied ?? 0),
                alreadyCached,
                pullTime,
                writeClock.Elapsed);
        }
        catch when (!pull.IsCompleted)
        {
            // The writer (or a chart) failed while the pull still runs: stop it, so nothing outlives the export.
            await stopPull.CancelAsync().ConfigureAwait(false);
            await Quietly(pull).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Where a blob falls in the writer's order: configs, then layers, each by digest; blobs a delta leaves out last.</summary>
    private static string BlobOrder(GraphEdge edge, BundleDeltaInput? delta)
    {
        var omitted = delta is not null && delta.Available.ContainsKey(edge.Descriptor.Digest);
        return $"{(omitted ? '1' : '0')}{(edge.Kind == EdgeKind.Layer ? '1' : '0')}{edge.Descriptor.Digest}";
    }

    /// <summary>
    /// Pulls every image of the lock into the cache, keeping going past failures (each failed image is tried again at
    /// the end, then the export fails listing them all). Each image's manifests are fetched first (at most
    /// <paramref name="parallelImages"/> at once) and recorded in <paramref name="plan"/>; its configs and layers then
    /// queue for the copier's blob slots in the writer's order, and its manifests are stored after them.
    /// </summary>
    private async Task PullAsync(LockFile lockFile, OciLayoutStore cache, GraphCopier copier, int parallelImages, PullPlan plan, CancellationToken cancellationToken)
    {
        using var manifestSlots = new SemaphoreSlim(parallelImages, parallelImages);
        var trees = new ManifestTree?[lockFile.Images.Count];
        // Manifests resolve kept (verified) are read from the cache's store, not asked for again.
        var manifests = ManifestStore.Beside(cache);
        // One token request per registry (in batches) for every image still to pull, not one per repository.
        await registries.PreparePullTokensAsync(
            lockFile.Images.Where(i => !File.Exists(cache.BlobPath(Digest.Parse(i.Digest)))).Select(i => registries.SourceRepository(Reference.Parse(i.Reference))),
            cancellationToken).ConfigureAwait(false);
        // Every image at once: what bounds the transfers is the copier's blob slots, and the writer's order needs every
        // image's blobs queued. The manifest fetches keep to the images' parallelism.
        await new KeepGoing(registries, log) { Parallelism = Math.Max(1, lockFile.Images.Count) }.RunAsync(
            lockFile.Images.Select(i => i.Reference).ToList(),
            KeepGoing.Verb.Pull,
            async (i, ct) =>
            {
                var image = lockFile.Images[i];
                var pinned = Digest.Parse(image.Digest);
                var cached = new FileInfo(cache.BlobPath(pinned));
                if (trees[i] is null && cached.Exists)
                {
                    // A stored manifest implies its children are stored (they are always written first): no network.
                    plan.Add(i, new Descriptor { MediaType = image.MediaType, Digest = pinned, Size = cached.Length }.WithRefName(image.Reference), null);
                    return;
                }

                var reference = Reference.Parse(image.Reference);
                var source = new StoredManifestSource(registries.SourceRepository(reference), manifests);
                try
                {
                    var tree = trees[i] ?? await TransferSlots.RunAsync(manifestSlots, () => copier.FetchManifestsAsync(source, image.SourceDigest, ct), ct).ConfigureAwait(false);
                    if (tree.Root.Digest.ToString() != image.Digest)
                    {
                        throw new IntegrityException($"{image.Reference}: pulled {tree.Root.Digest}, but the lock pins {image.Digest}");
                    }

                    trees[i] = tree;
                    plan.Add(i, tree.Root.WithRefName(image.Reference), tree);
                    plan.Results[i] = await copier.CopyAsync(source, tree, cache, image.Reference, ct).ConfigureAwait(false);
                }
                catch (IntegrityException ex) when (registries.Options.Mirrors.For(reference.Registry) is { } mirror)
                {
                    throw mirror.Mismatch(image.Reference, ex);
                }
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Returns once <paramref name="blob"/> is in the cache. A blob the finished pull did not store (a cached image whose
    /// files were removed since) is missing: the export fails as for any incomplete cache, instead of waiting forever.
    /// </summary>
    private static async Task WhenStoredAsync(OciLayoutStore cache, Descriptor blob, Task pull, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var stored = cache.WhenStoredAsync(blob, stop.Token);
        if (await Task.WhenAny(stored, pull).ConfigureAwait(false) == stored || stored.IsCompleted)
        {
            await stored.ConfigureAwait(false);
            return;
        }

        await stop.CancelAsync().ConfigureAwait(false);
        await Quietly(stored).ConfigureAwait(false);
        await pull.ConfigureAwait(false);
        if (!await cache.ExistsAsync(blob, ct).ConfigureAwait(false))
        {
            throw new InputException($"{cache.DisplayName} is incomplete: blob {blob.Digest} ({blob.MediaType}) is missing; remove the cache's manifests of the affected image or the whole cache and export again");
        }
    }

    private static async Task Quietly(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The caller reports the error that made it stop this task.
        }
    }

    /// <summary>What the pull has learnt so far: each image's root and manifests; complete once every image has them.</summary>
    private sealed class PullPlan(int images)
    {
        private readonly Descriptor?[] _roots = new Descriptor?[images];
        private readonly System.Collections.Concurrent.ConcurrentDictionary<Digest, byte[]> _manifests = new();
        private readonly TaskCompletionSource _complete = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _left = images;

        public CopyResult?[] Results { get; } = new CopyResult?[images];

        public Task Complete => _roots.Length == 0 ? Task.CompletedTask : _complete.Task;

        /// <summary>Roots in lock order (each carries its reference); valid once <see cref="Complete"/>.</summary>
        public IReadOnlyList<Descriptor> Roots => _roots.Select(r => r!).ToList();

        /// <summary>Verified manifest bytes by digest of the images fetched this run (cached ones are read from the cache).</summary>
        public IReadOnlyDictionary<Digest, byte[]> Manifests => _manifests;

        public void Add(int i, Descriptor root, ManifestTree? tree)
        {
            if (tree is not null)
            {
                _manifests.TryAdd(tree.Root.Digest, tree.RootBytes);
                foreach (var (digest, child) in tree.Children ?? new Dictionary<Digest, (Descriptor Descriptor, byte[] Bytes)>())
                {
                    _manifests.TryAdd(digest, child.Bytes);
                }
            }

            if (Interlocked.CompareExchange(ref _roots[i], root, null) is null && Interlocked.Decrement(ref _left) == 0)
            {
                _complete.TrySetResult();
            }
        }
    }

    /// <summary>
    /// The writer's byte count: always to the caller's progress, to the run display once the pull is done (starting
    /// with the count so far: a writer that finished before the pull did reports nothing after).
    /// </summary>
    private sealed class WriteProgress(IProgress<long>? caller, IProgress<long>? display) : IProgress<long>
    {
        private readonly Lock _gate = new();
        private bool _observed;
        private long _last;

        public void Observe()
        {
            lock (_gate)
            {
                _observed = true;
                display?.Report(_last);
            }
        }

        public void Report(long value)
        {
            caller?.Report(value);
            lock (_gate)
            {
                _last = Math.Max(_last, value);
                if (_observed)
                {
                    display?.Report(_last);
                }
            }
        }
    }

    /// <summary>
    /// The creation time recorded by the first export of this lock into this cache, so a resumed (or repeated)
    /// export writes the same <c>openlm-bundle.json</c>. SOURCE_DATE_EPOCH, when set, wins.
    /// </summary>
    private static DateTimeOffset CreationTime(OciLayoutStore cache, LockFile lockFile)
    {
        var directory = Path.Combine(cache.Root, ".openlm-exports");
        Directory.CreateDirectory(directory);
        var state = Path.Combine(directory, lockFile.Fingerprint().Replace(':', '-') + ".created");
        if (File.Exists(state) && DateTimeOffset.TryParse(File.ReadAllText(state).Trim(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var recorded))
        {
            return recorded;
        }

        var now = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        Content.AtomicFile.WriteAllBytes(state, System.Text.Encoding.UTF8.GetBytes(now.ToString("O", System.Globalization.CultureInfo.InvariantCulture)));
        return now;
    }

    private static OciLayoutStore OpenCache(string directory)
    {
        var cache = OciLayoutStore.Open(directory, create: true);

        // Partial downloads of a killed run are garbage: complete blobs are kept, half-written ones are not trusted.
        var temp = Path.Combine(cache.Root, OciLayoutStore.TempDirectoryName);
        if (Directory.Exists(temp))
        {
            foreach (var file in Directory.EnumerateFiles(temp, "*.partial"))
            {
                File.Delete(file);
            }
        }

        return cache;
    }

    /// <summary>Refuses to start when the free space is clearly too small for the blobs still missing plus the bundle.</summary>
    private static void CheckDiskSpace(long missing, long bundle, OciLayoutStore cache, string output)
    {
        var cacheDrive = DriveOf(cache.Root);
        var outputDrive = DriveOf(Path.GetDirectoryName(output)!);
        if (cacheDrive is null || outputDrive is null)
        {
            return;
        }

        if (cacheDrive.Name == outputDrive.Name)
        {
            Require(cacheDrive, missing + bundle, $"{Format(missing)} for the cache ({cache.Root}) and {Format(bundle)} for the bundle");
        }
        else
        {
            Require(cacheDrive, missing, $"{Format(missing)} for the cache ({cache.Root})");
            Require(outputDrive, bundle, $"{Format(bundle)} for the bundle");
        }
    }

    private static void Require(DriveInfo drive, long bytes, string what)
    {
        var free = drive.AvailableFreeSpace;
        if (free < bytes + DiskHeadroomBytes)
        {
            throw new OperationException($"not enough free disk space on {drive.Name}: the export needs {what} (plus {Format(DiskHeadroomBytes)} headroom) but only {Format(free)} is free");
        }
    }

    private static DriveInfo? DriveOf(string path)
    {
        var full = Path.GetFullPath(path);
        return DriveInfo.GetDrives()
            .Where(d => d.IsReady && full.StartsWith(d.RootDirectory.FullName, StringComparison.Ordinal))
            .OrderByDescending(d => d.RootDirectory.FullName.Length)
            .FirstOrDefault();
    }

    private static string Format(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):0.0} GiB" : $"{bytes / (double)(1L << 20):0.0} MiB";
}
