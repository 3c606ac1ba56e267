using System.Collections.Concurrent;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Registry.Probe;

namespace OpenLm.Mirror.Import;

/// <summary>
/// Imports a bundle into a registry as a graph copy: the bundle is opened as a content source (signature, head, every
/// manifest and the tar's structure verified before anything is pushed), then <see cref="GraphCopier"/> copies every
/// image into a <see cref="StagedTarget"/> over its target repository — blobs from their byte ranges, verified as they
/// stream, skipped when the target has them and mounted across repositories, manifests after their children — and only
/// when every image is stored are the tags committed. A bundle found corrupt halfway leaves no new or moved tag. Uploads
/// that keep failing (registry restart, resets) are retried by a further pass over the graph, which skips what arrived.
/// </summary>
public sealed class BundleImporter(RegistryConnector registries, IMirrorLog log)
{
    /// <summary>
    /// Connections opened to the target while the bundle is verified: the images of a platform bundle (its tag HEADs go
    /// out at once; 16 in the benchmark's); a larger bundle opens the rest when it needs them.
    /// </summary>
    private const int WarmConnections = 16;

    public async Task<ImportResult> ImportAsync(ImportRequest request, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Key is null && !request.AllowUnsigned)
        {
            throw new InputException("import needs the release public key; importing without checking the signature must be asked for explicitly") { Remedy = Remedy.ReleaseKeyOrUnsignedOptOut };
        }

        // The target is asked who it is (GET /v2/, a read that names nothing from the bundle) while the bundle is opened
        // and verified: the HTTP stack's start-up and the first connection's round trips overlap the local work.
        // Meanwhile as many connections are opened as the pre-check's first round (a HEAD per tag) will use at once.
        using var early = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var client = request.Precheck is not null && MirrorTarget.TryParse(request.Target, out var target, out _) ? registries.Client(target.Host) : null;
        var identifying = client is null ? null : RegistryProbe.IdentifyAsync(client, request.Precheck!.Kind, early.Token);
        var warming = client is null ? Task.CompletedTask : client.WarmAsync(Math.Min(WarmConnections, request.Precheck!.Concurrency), early.Token);
        try
        {
            return await ImportAsync(request, identifying, progress, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (identifying is { IsCompleted: false } || !warming.IsCompleted)
            {
                // Not reached (the bundle or an earlier check failed): the answers are not wanted.
                await early.CancelAsync().ConfigureAwait(false);
            }

            await warming.ConfigureAwait(false);
            if (identifying is not null)
            {
                await identifying.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            }
        }
    }

    private async Task<ImportResult> ImportAsync(ImportRequest request, Task<RegistryIdentity>? identifying, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        var bundle = await BundleSource.OpenAsync(
            request.BundlePath,
            new BundleOpenOptions { Key = request.Key, RequireSignature = !request.AllowUnsigned, TempDirectory = request.TempDirectory },
            cancellationToken).ConfigureAwait(false);
        await using (bundle.ConfigureAwait(false))
        {
            if (request.Key is null)
            {
                log.Warn($"{request.BundlePath}: the signature is NOT checked (explicitly skipped); digests are still verified, but nothing proves who made this bundle", Remedy.UnsignedOptOut);
            }

            // Names first: a collision is refused before anything is pushed. The platform prefix that the target
            // replaces is the bundle's own source.
            var mapper = TargetNameMapper.Create(request.Target, request.Maps, bundle.Head.Manifest.Source, request.MaxPathComponents);
            var plan = new ImportPlan(bundle, mapper, registries);
            var counts = new ImportCounts(plan, progress, request.Observer);
            if (bundle.IsDelta || request.Precheck is not null)
            {
                RunObserver.PhaseStarted(request.Observer, RunPhase.Check, plan.Images.Count, 0);
            }

            if (bundle.IsDelta)
            {
                await CheckBaseAsync(request, plan, cancellationToken).ConfigureAwait(false);
            }

            // The existence pass (reads only) runs alongside the pre-check's push probes once the tags are read: the
            // import's round trips before the first upload are the tags' and the probes', not the probes' and then the
            // pass's. Nothing is pushed before the pre-check passed.
            ExistenceSummary? known = null;
            var precheck = request.Precheck is null ? null
                : await new TargetPrecheck(registries, log).RunAsync(
                    mapper.Target.Host,
                    plan.Images.Select(i => (i.Target, i.Source.Digest)).ToList(),
                    request.Precheck,
                    cancellationToken,
                    identifying,
                    request.DryRun ? null : async (tags, ct) =>
                    {
                        var missing = ToCopy(plan, tags);
                        if (missing.Count > 0)
                        {
                            known = await ExistencePass.RunAsync(plan, missing, request.LookupConcurrency, ct).ConfigureAwait(false);
                        }
                    }).ConfigureAwait(false);
            if (request.DryRun)
            {
                await new ImportDryRun(plan, counts, request.Concurrency).RunAsync(cancellationToken).ConfigureAwait(false);
                return counts.Result(request, plan, tags: null, passes: 1) with { Findings = precheck?.Findings ?? [], Problems = precheck?.Problems ?? [] };
            }

            if (precheck?.Problems.Count > 0)
            {
                throw new TargetNotReadyException(mapper.Target.Host, precheck.Problems);
            }

            // Images whose tag already names the bundle's manifest (read by the pre-check) are stored whole: a re-import
            // asks nothing more about them and leaves their tags alone.
            var tags = new Dictionary<string, TagOutcome>(StringComparer.Ordinal);
            var current = precheck?.Tags ?? new Dictionary<(string Repository, string Tag), Digest>();
            var toCopy = ToCopy(plan, current);
            foreach (var image in plan.Images.Where(i => !toCopy.Contains(i)))
            {
                var name = $"{plan.Targets[image.Target.Name].DisplayName}:{image.Target.Tag}";
                tags[name] = TagOutcome.Unchanged;
                counts.AlreadyStored(name, image.Source);
            }

            RunObserver.PhaseStarted(request.Observer, RunPhase.Push, plan.Images.Count, plan.Blobs.Values.Sum(b => b.Size));
            var passes = 1;
            if (toCopy.Count > 0)
            {
                known ??= await ExistencePass.RunAsync(plan, toCopy, request.LookupConcurrency, cancellationToken).ConfigureAwait(false);
                log.Debug($"existence pass: {known.Asked} HEADs, {known.ImagesPresent} of {toCopy.Count} images already stored, {known.Present} of the asked present");
                passes = await CopyAsync(request, toCopy, plan, counts, cancellationToken).ConfigureAwait(false);
            }

            RunObserver.PhaseStarted(request.Observer, RunPhase.Tag, plan.Images.Count, 0);

            // Every image is stored and every fetched blob verified: only now do tags appear or move, every repository's at once.
            var committed = new ConcurrentBag<(StagedTarget Target, CommittedTag Tag)>();
            await Parallel.ForEachAsync(
                plan.Targets.Values.Where(t => t.Staged.Count > 0),
                new ParallelOptions { MaxDegreeOfParallelism = request.LookupConcurrency, CancellationToken = cancellationToken },
                async (target, ct) =>
                {
                    foreach (var tag in await target.CommitAsync(request.ParallelImages, ct).ConfigureAwait(false))
                    {
                        committed.Add((target, tag));
                    }
                }).ConfigureAwait(false);
            foreach (var (target, tag) in committed.OrderBy(c => c.Target.DisplayName, StringComparer.Ordinal).ThenBy(c => c.Tag.Tag, StringComparer.Ordinal))
            {
                tags[$"{target.DisplayName}:{tag.Tag}"] = tag.Outcome;
                if (tag.Outcome == TagOutcome.Moved)
                {
                    log.Warn($"{target.DisplayName}:{tag.Tag}: tag moved from {tag.Previous} to {tag.Descriptor.Digest}");
                }
            }

            return counts.Result(request, plan, tags, passes) with { Findings = precheck?.Findings ?? [] };
        }
    }

    /// <summary>The images whose tag does not already name the bundle's manifest (every image without a tag), in bundle order.</summary>
    private static List<(Descriptor Source, Reference Target)> ToCopy(ImportPlan plan, IReadOnlyDictionary<(string Repository, string Tag), Digest> current) =>
        plan.Images.Where(i => i.Target.Tag is not { } tag || !current.TryGetValue((i.Target.Repository, tag), out var now) || now != i.Source.Digest).ToList();

    /// <summary>A delta is imported only onto its base: every omitted blob is asked for first, and any missing stops the import before a push.</summary>
    private async Task CheckBaseAsync(ImportRequest request, ImportPlan plan, CancellationToken cancellationToken)
    {
        var check = await BaseCheck.RunAsync(plan, request.LookupConcurrency, cancellationToken).ConfigureAwait(false);
        if (!check.Complete)
        {
            throw new IncompleteTargetException(check.Describe(request.BundlePath, plan.Mapper.Target.ToString())) { Subject = plan.Mapper.Target.ToString() };
        }

        log.Info($"base check: {request.BundlePath} is a delta; all {check.Checked} blobs it leaves to its base ({check.Bytes} bytes) are in {plan.Mapper.Target}");
    }

    /// <summary>Copies every image, pass after pass while uploads fail for transient reasons; returns the number of passes.</summary>
    private async Task<int> CopyAsync(ImportRequest request, IReadOnlyList<(Descriptor Source, Reference Target)> images, ImportPlan plan, ImportCounts counts, CancellationToken cancellationToken)
    {
        for (var pass = 1; ; pass++)
        {
            var copier = new GraphCopier(new CopyOptions { Concurrency = request.Concurrency, Retry = plan.Retry, Observer = counts, Log = log });
            try
            {
                await Parallel.ForEachAsync(
                    images,
                    new ParallelOptions { MaxDegreeOfParallelism = request.ParallelImages, CancellationToken = cancellationToken },
                    async (image, ct) => await copier.CopyAsync(plan.Bundle, image.Source.RefName!, plan.Targets[image.Target.Name], image.Target.Tag, ct).ConfigureAwait(false))
                    .ConfigureAwait(false);
                return pass;
            }
            catch (Exception ex) when (ex is not IntegrityException && RetryPolicy.IsTransient(ex, cancellationToken))
            {
                if (pass >= request.MaxPasses)
                {
                    throw new OperationException(
                        $"blobs could not be pushed to {plan.Mapper.Target} after {pass} passes; no tag was created or moved; run the import again (it skips what arrived): {ex.Message}", ex);
                }

                log.Warn($"uploads failed ({ex.Message}); no tag changed yet; pass {pass + 1} of {request.MaxPasses} in {request.PassDelay.TotalSeconds:0}s");
                await Task.Delay(request.PassDelay, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}

/// <summary>The bundle's images with their target names, and one staged target per target repository.</summary>
internal sealed class ImportPlan
{
    public ImportPlan(BundleSource bundle, TargetNameMapper mapper, RegistryConnector registries)
    {
        Bundle = bundle;
        Mapper = mapper;
        var roots = bundle.Head.Images.Select(d => (Descriptor: d, Source: Reference.Parse(d.RefName!))).ToList();
        var targetOf = mapper.MapAll(roots.Select(r => r.Source)).ToDictionary(m => m.Source.ToString(), m => m.Target, StringComparer.Ordinal);
        Images = roots.Select(r => (r.Descriptor, targetOf[r.Source.ToString()])).ToList();

        // Every target repository lives on the one target registry, whose client owns the retry policy.
        Retry = registries.Client(mapper.Target.Host).Retry;
        Repositories = Images.GroupBy(i => i.Target.Name, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => new HintedRepository(registries.Repository(g.First().Target)), StringComparer.Ordinal);
        Targets = Repositories.ToDictionary(r => r.Key, r => StagedTarget.Wrap(r.Value, Retry), StringComparer.Ordinal);
        Blobs = Images.SelectMany(i => ImageGraph.Reachable(i.Source, bundle.Documents).Values)
            .Where(d => !bundle.Documents.ContainsKey(d.Digest))
            .GroupBy(d => d.Digest)
            .ToDictionary(g => g.Key, g => g.First());
    }

    public BundleSource Bundle { get; }

    public TargetNameMapper Mapper { get; }

    public IReadOnlyList<(Descriptor Source, Reference Target)> Images { get; }

    /// <summary>Staged target per repository name.</summary>
    public IReadOnlyDictionary<string, StagedTarget> Targets { get; }

    /// <summary>The repository under each staged target, holding what the existence pass and the base check found.</summary>
    public IReadOnlyDictionary<string, HintedRepository> Repositories { get; }

    public RetryPolicy Retry { get; }

    /// <summary>Every non-manifest blob of the bundle's images, by digest.</summary>
    public IReadOnlyDictionary<Digest, Descriptor> Blobs { get; }
}

/// <summary>
/// Counts what the copy did, once per repository and digest (the copier reports a shared blob to every image that
/// needs it), and forwards uploaded bytes to the caller's progress.
/// </summary>
internal sealed class ImportCounts : ICopyObserver
{
    private readonly Dictionary<string, string> _repositoryOfImage = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Repository, Digest Digest), BlobOutcome> _blobs = new();
    private readonly ConcurrentDictionary<(string Repository, Digest Digest), BlobOutcome> _manifests = new();
    private readonly IProgress<long>? _progress;
    private readonly ICopyObserver _observer;
    private long _bytes;

    public ImportCounts(ImportPlan plan, IProgress<long>? progress, ICopyObserver? observer)
    {
        _progress = progress;
        _observer = observer ?? NullCopyObserver.Instance;
        foreach (var (_, target) in plan.Images)
        {
            // The copier names an image "<target display name>:<tag>".
            _repositoryOfImage[$"{plan.Targets[target.Name].DisplayName}:{target.Tag}"] = target.Name;
        }
    }

    /// <summary>Dry-run figures, set by <see cref="ImportDryRun"/> instead of the copy.</summary>
    public (int Uploaded, long Bytes, int Mounted, int Present, long BytesPresent)? Planned { get; set; }

    public void ImageStarted(string image) => _observer.ImageStarted(image);

    public void BlobStarted(string image, Descriptor blob) => _observer.BlobStarted(image, blob);

    public void BytesTransferred(string image, long bytes)
    {
        _progress?.Report(Interlocked.Add(ref _bytes, bytes));
        _observer.BytesTransferred(image, bytes);
    }

    public void BlobFinished(string image, Descriptor blob, BlobOutcome outcome)
    {
        // A blob skipped on a HEAD's word and then re-uploaded (the registry's HEAD was wrong) counts as uploaded.
        _blobs.AddOrUpdate((_repositoryOfImage.GetValueOrDefault(image, image), blob.Digest), outcome, (_, old) => old == BlobOutcome.Skipped ? outcome : old);
        _observer.BlobFinished(image, blob, outcome);
    }

    public void ManifestFinished(string image, Descriptor manifest, BlobOutcome outcome)
    {
        _manifests.TryAdd((_repositoryOfImage.GetValueOrDefault(image, image), manifest.Digest), outcome);
        _observer.ManifestFinished(image, manifest, outcome);
    }

    public void ImageFinished(string image, CopyResult result) => _observer.ImageFinished(image, result);

    /// <summary>An image found whole in its repository (its tag names its manifest): reported as copied with nothing moved.</summary>
    public void AlreadyStored(string image, Descriptor root)
    {
        ImageStarted(image);
        ManifestFinished(image, root, BlobOutcome.Skipped);
        ImageFinished(image, new CopyResult { Source = root.RefName ?? root.Digest.ToString(), Destination = image, Root = root, SourceRoot = root, PlatformsKept = [], Manifests = 1 });
    }

    public ImportResult Result(ImportRequest request, ImportPlan plan, IReadOnlyDictionary<string, TagOutcome>? tags, int passes)
    {
        var blobs = plan.Blobs;
        var moved = _blobs.Where(b => b.Value is BlobOutcome.Copied or BlobOutcome.Mounted).Select(b => b.Key.Digest).ToHashSet();
        var present = blobs.Values.Where(b => !moved.Contains(b.Digest)).ToList();
        var uploaded = _blobs.Where(b => b.Value == BlobOutcome.Copied).Select(b => b.Key).ToList();
        var head = plan.Bundle.Head;
        return new ImportResult
        {
            Registry = plan.Mapper.Target.ToString(),
            BundleDigest = head.BundleDigest.ToString(),
            Platform = head.Manifest.Platform.Name,
            Version = head.Manifest.Platform.Version,
            SignatureVerified = head.Signature == SignatureStatus.Verified,
            DryRun = request.DryRun,
            Images = plan.Images.Select(i => new ImportedImage(
                i.Source.RefName!,
                i.Target.ToString(),
                i.Source.Digest.ToString(),
                i.Source.MediaType,
                tags?.GetValueOrDefault($"{plan.Targets[i.Target.Name].DisplayName}:{i.Target.Tag}", TagOutcome.Planned) ?? TagOutcome.Planned)).ToList(),
            BlobsUploaded = Planned?.Uploaded ?? uploaded.Count,
            BytesUploaded = Planned?.Bytes ?? uploaded.Sum(u => blobs.TryGetValue(u.Digest, out var d) ? d.Size : 0),
            BlobsMounted = Planned?.Mounted ?? _blobs.Count(b => b.Value == BlobOutcome.Mounted),
            BlobsPresent = Planned?.Present ?? present.Count,
            BytesPresent = Planned?.BytesPresent ?? present.Sum(p => p.Size),
            ManifestsPushed = _manifests.Count(m => m.Value == BlobOutcome.Copied),
            Passes = passes,
            Contents = request.DryRun
                ? []
                : plan.Bundle.ManifestsChildrenFirst.Select(m => (m.Digest, m.Size)).Concat(plan.Blobs.Values.Select(b => (b.Digest, b.Size)))
                    .DistinctBy(c => c.Digest)
                    .Select(c => new ReceiptBlob(c.Digest.ToString(), c.Size))
                    .OrderBy(c => c.Digest, StringComparer.Ordinal)
                    .ToList(),
        };
    }
}

/// <summary>
/// The plan without writing: which blobs each target repository lacks. An image whose manifest the repository already
/// stores has all its content there (registries refuse a manifest whose blobs are missing), so a re-import's plan costs
/// one request per image.
/// </summary>
internal sealed class ImportDryRun(ImportPlan plan, ImportCounts counts, int concurrency)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var needs = new ConcurrentDictionary<Digest, ConcurrentBag<StagedTarget>>();
        await Parallel.ForEachAsync(
            plan.Images,
            new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellationToken },
            async (image, ct) =>
            {
                var target = plan.Targets[image.Target.Name];
                if (await ExistsAsync(target, image.Source, ct).ConfigureAwait(false))
                {
                    return;
                }

                foreach (var node in ImageGraph.Reachable(image.Source, plan.Bundle.Documents).Values.Where(n => !plan.Bundle.Documents.ContainsKey(n.Digest)))
                {
                    needs.GetOrAdd(node.Digest, _ => []).Add(target);
                }
            }).ConfigureAwait(false);

        var blobs = plan.Blobs;
        var lacking = new ConcurrentDictionary<Digest, int>();
        await Parallel.ForEachAsync(
            needs,
            new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellationToken },
            async (need, ct) =>
            {
                var missing = 0;
                foreach (var target in need.Value.Distinct())
                {
                    missing += await ExistsAsync(target, blobs[need.Key], ct).ConfigureAwait(false) ? 0 : 1;
                }

                lacking[need.Key] = missing;
            }).ConfigureAwait(false);

        var toUpload = lacking.Where(l => l.Value > 0).ToList();
        var present = blobs.Values.Where(b => !lacking.TryGetValue(b.Digest, out var n) || n == 0).ToList();
        counts.Planned = (toUpload.Count, toUpload.Sum(l => blobs[l.Key].Size), toUpload.Sum(l => l.Value - 1), present.Count, present.Sum(p => p.Size));
    }

    private async Task<bool> ExistsAsync(StagedTarget target, Descriptor descriptor, CancellationToken ct) =>
        await plan.Retry.ExecuteAsync(c => new ValueTask<bool>(target.ExistsAsync(descriptor, c)), ct).ConfigureAwait(false);
}
