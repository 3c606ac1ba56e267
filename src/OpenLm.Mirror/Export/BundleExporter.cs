using OpenLm.Mirror.Bundle;
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
/// Pulls a locked release into a cache layout (in parallel, every blob verified as it streams), then writes
/// the signed bundle to a temporary name and renames it. Everything already in the cache is reused, so an
/// export interrupted at any point resumes without downloading again and produces the same bundle.
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
        });
        var roots = new Descriptor[lockFile.Images.Count];
        RunObserver.PhaseStarted(
            copyOptions.Observer,
            RunPhase.Pull,
            lockFile.Images.Count(i => !File.Exists(cache.BlobPath(Digest.Parse(i.Digest)))),
            missing.Sum(b => b.Size));
        var results = new CopyResult?[lockFile.Images.Count];
        // Keep going, then decide: every image is pulled (failed ones again at the end) before the export fails listing
        // each image that could not be pulled; the bundle is only written when all of them are in the cache.
        await new KeepGoing(registries, log) { Parallelism = request.ParallelImages }.RunAsync(
            lockFile.Images.Select(i => i.Reference).ToList(),
            KeepGoing.Verb.Pull,
            async (i, ct) =>
            {
                var image = lockFile.Images[i];
                var pinned = Digest.Parse(image.Digest);
                var cached = new FileInfo(cache.BlobPath(pinned));
                if (cached.Exists)
                {
                    // A stored manifest implies its children are stored (they are always written first): no network.
                    roots[i] = new Descriptor { MediaType = image.MediaType, Digest = pinned, Size = cached.Length }.WithRefName(image.Reference);
                    results[i] = null;
                    return;
                }

                var reference = Reference.Parse(image.Reference);
                var source = registries.SourceRepository(reference);
                CopyResult result;
                try
                {
                    result = await copier.CopyAsync(source, image.SourceDigest, cache, image.Reference, ct).ConfigureAwait(false);
                }
                catch (IntegrityException ex) when (registries.Options.Mirrors.For(reference.Registry) is { } mirror)
                {
                    throw mirror.Mismatch(image.Reference, ex);
                }

                if (result.Root.Digest.ToString() != image.Digest)
                {
                    throw new IntegrityException($"{image.Reference}: pulled {result.Root.Digest}, but the lock pins {image.Digest}");
                }

                roots[i] = result.Root.WithRefName(image.Reference);
                results[i] = result;
            },
            cancellationToken).ConfigureAwait(false);

        var charts = new List<(LockedChart Locked, HelmChartArtifact Artifact)>();
        using var chartDownloads = new PlatformSpec.ChartSources.ChartDownloader(registries, log);
        foreach (var chart in lockFile.Charts)
        {
            // Local charts are re-read, remote ones downloaded again; either way a sha256 other than the lock's is refused.
            using var archive = await LockedCharts.OpenAsync(chart, chartDownloads, cancellationToken).ConfigureAwait(false);
            charts.Add((chart, await HelmChartPacker.PackAsync(cache, archive.Path, lockFile.Source, cancellationToken).ConfigureAwait(false)));
        }

        // The cache keeps blobs of earlier releases; its index lists exactly what this bundle holds.
        await cache.ReplaceIndexAsync([.. roots, .. charts.Select(c => c.Artifact.Manifest.WithRefName(c.Artifact.Reference))], cancellationToken).ConfigureAwait(false);
        var pullTime = clock.Elapsed;
        log.Info($"pulled {lockFile.Images.Count} images and {charts.Count} charts into {cache.Root} in {pullTime.TotalSeconds:0.0}s; writing {request.OutputPath}");

        clock.Restart();
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
        RunObserver.PhaseStarted(copyOptions.Observer, RunPhase.Write, 0, lockFile.TotalBytes);
        var written = await BundleWriter.WriteAsync(cache, manifest, key, output, request.WriteOptions with { Delta = delta }, RunObserver.PhaseBytes(copyOptions.Observer, bundleProgress), cancellationToken).ConfigureAwait(false);
        return new ExportResult(
            written,
            results.Sum(r => r?.BytesCopied ?? 0),
            results.Sum(r => r?.BlobsCopied ?? 0),
            alreadyCached,
            pullTime,
            clock.Elapsed);
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
