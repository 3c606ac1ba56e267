using System.Collections.Concurrent;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Import;

/// <summary>
/// Imports a bundle into a registry in one streaming pass over the tar (nothing is extracted): the signature is
/// checked first; blobs are verified as they stream and pushed, skipping those the target has and mounting
/// across repositories; manifests follow their blobs (children before indexes) and tags come only after the
/// whole bundle verified, so a bundle found corrupt halfway leaves no new or moved tag. Blobs whose upload
/// failed (registry restart, reset) are pushed by a further pass over the bundle file.
/// </summary>
public sealed class BundleImporter(RegistryConnector registries, IMirrorLog log)
{
    public async Task<ImportResult> ImportAsync(ImportRequest request, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        if (request.Key is null && !request.AllowUnsigned)
        {
            throw new InputException("import needs --key (the release public key); skipping the signature check takes an explicit opt-out flag");
        }

        var head = await BundleInspector.InspectAsync(request.BundlePath, request.Key, cancellationToken).ConfigureAwait(false);
        if (request.Key is not null && head.Signature != SignatureStatus.Verified)
        {
            throw new IntegrityException($"{request.BundlePath}: signature {head.Signature}; refusing to import");
        }

        if (request.Key is null)
        {
            log.Warn($"{request.BundlePath}: the signature is NOT checked (--insecure-skip-signature); digests are still verified, but nothing proves who made this bundle");
        }

        // Names first: a collision is refused before anything is pushed.
        var roots = head.Images.Select(d => (Descriptor: d, Source: Reference.Parse(d.RefName!))).ToList();
        // The platform prefix that --to replaces is the bundle's own source, so the mapper is built from the head.
        var mapper = TargetNameMapper.Create(request.Target, request.Maps, head.Manifest.Source);
        var mappings = mapper.MapAll(roots.Select(r => r.Source));
        var targetOf = mappings.ToDictionary(m => m.Source.ToString(), m => m.Target, StringComparer.Ordinal);
        var plan = new ImportPlan(roots.Select(r => (r.Descriptor, targetOf[r.Source.ToString()])).ToList(), registries);

        var passes = 0;
        while (true)
        {
            passes++;
            var visitor = new ImportVisitor(plan, request.DryRun, request.Concurrency, log);
            try
            {
                await BundleReader.ReadAsync(
                    request.BundlePath,
                    new BundleReadOptions { Key = request.Key, RequireSignature = !request.AllowUnsigned, Visitor = visitor, Progress = progress, SourceName = request.BundlePath },
                    cancellationToken).ConfigureAwait(false);
            }
            catch (DryRunComplete)
            {
            }
            catch
            {
                // Do not leave uploads running behind a failed pass (they never tag anything).
                await visitor.WaitForUploadsAsync().ConfigureAwait(false);
                throw;
            }

            if (request.DryRun || visitor.FailedBlobs.IsEmpty)
            {
                return BuildResult(request, mapper, head, plan, visitor, passes);
            }

            var failures = visitor.FailedBlobs.Select(f => $"{f.Key.Short}: {f.Value}").ToList();
            if (passes >= request.MaxPasses)
            {
                throw new OperationException($"{visitor.FailedBlobs.Count} blobs could not be pushed to {mapper.Target} after {passes} passes; no tag was created or moved; run the import again:\n  " + string.Join("\n  ", failures.Take(10)));
            }

            log.Warn($"{visitor.FailedBlobs.Count} blob uploads failed ({failures[0]}); no tag changed yet; pass {passes + 1} of {request.MaxPasses} in {request.PassDelay.TotalSeconds:0}s");
            await Task.Delay(request.PassDelay, cancellationToken).ConfigureAwait(false);
        }
    }

    private static ImportResult BuildResult(ImportRequest request, TargetNameMapper mapper, BundleHead head, ImportPlan plan, ImportVisitor visitor, int passes) => new()
    {
        Registry = mapper.Target.ToString(),
        BundleDigest = head.BundleDigest.ToString(),
        Platform = head.Manifest.Platform.Name,
        Version = head.Manifest.Platform.Version,
        SignatureVerified = head.Signature == SignatureStatus.Verified,
        DryRun = request.DryRun,
        Images = plan.Roots.Select(r => new ImportedImage(
            r.Descriptor.RefName!,
            r.Target.ToString(),
            r.Descriptor.Digest.ToString(),
            r.Descriptor.MediaType,
            visitor.Tags.TryGetValue(r.Target.ToString(), out var outcome) ? outcome : TagOutcome.Planned)).ToList(),
        BlobsUploaded = visitor.Uploaded,
        BytesUploaded = visitor.BytesUploaded,
        BlobsMounted = visitor.Mounted,
        BlobsPresent = visitor.Present,
        BytesPresent = visitor.BytesPresent,
        ManifestsPushed = visitor.ManifestsPushed,
        Passes = passes,
    };

    /// <summary>Thrown by the visitor to stop reading once a dry run has what it needs.</summary>
    private sealed class DryRunComplete : Exception
    {
    }

    /// <summary>The images, their target repositories, and (once manifests are read) which repositories need each digest.</summary>
    private sealed class ImportPlan(IReadOnlyList<(Descriptor Descriptor, Reference Target)> roots, RegistryConnector registries)
    {
        private readonly ConcurrentDictionary<string, RemoteRepository> _repositories = new(StringComparer.Ordinal);

        public IReadOnlyList<(Descriptor Descriptor, Reference Target)> Roots { get; } = roots;

        public RemoteRepository Repository(Reference target) =>
            _repositories.GetOrAdd(target.Name, _ => registries.Repository(target));

        public RetryPolicy Retry { get; } = new(registries.Options.Retries, registries.Options.Log, registries.Options.RetryBaseDelay);
    }

    private sealed class ImportVisitor(ImportPlan plan, bool dryRun, int concurrency, IMirrorLog log) : IBundleVisitor
    {
        private readonly SemaphoreSlim _slots = new(concurrency, concurrency);
        private readonly List<Task> _uploads = [];
        private readonly ConcurrentDictionary<Digest, RemoteRepository> _holders = new();
        private readonly ConcurrentDictionary<(Digest, string), bool> _knownPresent = new();
        private Task? _prepared;
        private int _uploaded;
        private long _bytesUploaded;
        private int _mounted;
        private int _present;
        private long _bytesPresent;

        private readonly Dictionary<Digest, (Descriptor Descriptor, byte[] Bytes, ManifestDocument Document)> _manifests = [];
        private Dictionary<Digest, List<RemoteRepository>>? _needs;

        public ConcurrentDictionary<Digest, string> FailedBlobs { get; } = new();

        public ConcurrentDictionary<string, TagOutcome> Tags { get; } = new(StringComparer.Ordinal);

        public int Uploaded => _uploaded;

        public long BytesUploaded => _bytesUploaded;

        public int Mounted => _mounted;

        public int Present => _present;

        public long BytesPresent => _bytesPresent;

        public int ManifestsPushed { get; private set; }

        public ValueTask OnManifestAsync(Descriptor descriptor, ReadOnlyMemory<byte> verifiedBytes, CancellationToken cancellationToken)
        {
            var bytes = verifiedBytes.ToArray();
            _manifests[descriptor.Digest] = (descriptor, bytes, ManifestDocument.Parse(bytes, descriptor.MediaType, $"bundle manifest {descriptor.Digest}"));
            return ValueTask.CompletedTask;
        }

        /// <summary>The repositories that lack the blob; the first that has it becomes the mount source. Counts a blob every repository has.</summary>
        private async Task<List<RemoteRepository>> MissingFromAsync(Descriptor descriptor, List<RemoteRepository> repositories, CancellationToken cancellationToken)
        {
            var missing = new List<RemoteRepository>();
            foreach (var repository in repositories)
            {
                if (_knownPresent.ContainsKey((descriptor.Digest, repository.DisplayName))
                    || await plan.Retry.ExecuteAsync(ct => new ValueTask<bool>(repository.ExistsAsync(descriptor, ct)), cancellationToken).ConfigureAwait(false))
                {
                    _holders.TryAdd(descriptor.Digest, repository);
                }
                else
                {
                    missing.Add(repository);
                }
            }

            if (missing.Count == 0)
            {
                Interlocked.Increment(ref _present);
                Interlocked.Add(ref _bytesPresent, descriptor.Size);
            }

            return missing;
        }

        public async Task WaitForUploadsAsync()
        {
            try
            {
                await Task.WhenAll(_uploads).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is MirrorException or OperationCanceledException or HttpRequestException or IOException)
            {
                // The pass already failed; its first error is what gets reported.
            }
        }

        /// <summary>
        /// A plain bundle file: the blob is pushed from its byte range by a parallel task that verifies it while
        /// streaming (and can re-read it on a retry); a blob every target repository already holds is not read at
        /// all, since the registry verified it when it was stored.
        /// </summary>
        public async ValueTask<bool> ClaimBlobAsync(Descriptor descriptor, BlobLocation location, CancellationToken cancellationToken)
        {
            var needs = Needs();
            if (dryRun || !needs.TryGetValue(descriptor.Digest, out var repositories))
            {
                return false;
            }

            await (_prepared ??= PrepareAsync(needs, cancellationToken)).ConfigureAwait(false);
            _uploads.Add(Task.Run(() => UploadRangeAsync(descriptor, location, repositories, cancellationToken), cancellationToken));
            return true;
        }

        /// <summary>
        /// An image whose manifest the target repository already stores has all its content there (registries refuse
        /// a manifest whose blobs are missing), so nothing under it is asked for again: a re-import costs one request
        /// per image instead of one per blob.
        /// </summary>
        private async Task PrepareAsync(Dictionary<Digest, List<RemoteRepository>> needs, CancellationToken cancellationToken)
        {
            await Parallel.ForEachAsync(
                plan.Roots,
                new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellationToken },
                async (root, ct) =>
                {
                    var repository = plan.Repository(root.Target);
                    if (!await plan.Retry.ExecuteAsync(c => new ValueTask<bool>(repository.ExistsAsync(root.Descriptor, c)), ct).ConfigureAwait(false))
                    {
                        return;
                    }

                    var stack = new Stack<Descriptor>([root.Descriptor]);
                    while (stack.Count > 0)
                    {
                        var node = stack.Pop();
                        if (_knownPresent.TryAdd((node.Digest, repository.DisplayName), true) && _manifests.TryGetValue(node.Digest, out var manifest))
                        {
                            foreach (var child in manifest.Document.Children)
                            {
                                stack.Push(child);
                            }
                        }
                    }
                }).ConfigureAwait(false);
        }

        private async Task UploadRangeAsync(Descriptor descriptor, BlobLocation location, List<RemoteRepository> repositories, CancellationToken cancellationToken)
        {
            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var missing = await MissingFromAsync(descriptor, repositories, cancellationToken).ConfigureAwait(false);
                if (missing.Count == 0)
                {
                    return;
                }

                foreach (var repository in missing)
                {
                    if (_holders.TryGetValue(descriptor.Digest, out var holder)
                        && await plan.Retry.ExecuteAsync(ct => new ValueTask<bool>(repository.MountAsync(descriptor, holder.RepositoryName, ct)), cancellationToken).ConfigureAwait(false))
                    {
                        Interlocked.Increment(ref _mounted);
                        continue;
                    }

                    await plan.Retry.ExecuteAsync(
                        async ct =>
                        {
                            var range = new VerifyingStream(new RangeStream(location.Path, location.Offset, location.Size), descriptor, $"{location.Path}: blob {descriptor.Digest}");
                            await using (range.ConfigureAwait(false))
                            {
                                await repository.PushAsync(descriptor, range, ct).ConfigureAwait(false);
                            }
                        },
                        cancellationToken).ConfigureAwait(false);
                    Interlocked.Increment(ref _uploaded);
                    Interlocked.Add(ref _bytesUploaded, descriptor.Size);
                    _holders[descriptor.Digest] = repository;
                }
            }
            catch (Exception ex) when (ex is not IntegrityException && ex is not OperationCanceledException { CancellationToken.IsCancellationRequested: true } && RetryPolicy.IsTransient(ex, cancellationToken))
            {
                log.Warn($"push {descriptor.Digest.Short} failed: {ex.Message}");
                FailedBlobs[descriptor.Digest] = ex.Message;
            }
            finally
            {
                _slots.Release();
            }
        }

        public async ValueTask OnBlobAsync(Descriptor descriptor, Stream content, CancellationToken cancellationToken)
        {
            var needs = Needs();
            if (dryRun)
            {
                await PlanAllAsync(needs, cancellationToken).ConfigureAwait(false);
                throw new DryRunComplete();
            }

            if (!needs.TryGetValue(descriptor.Digest, out var repositories))
            {
                return;
            }

            await (_prepared ??= PrepareAsync(needs, cancellationToken)).ConfigureAwait(false);
            var missing = await MissingFromAsync(descriptor, repositories, cancellationToken).ConfigureAwait(false);
            if (missing.Count == 0)
            {
                return;
            }

            var streamUsed = false;
            foreach (var repository in missing)
            {
                try
                {
                    if (_holders.TryGetValue(descriptor.Digest, out var holder)
                        && await plan.Retry.ExecuteAsync(ct => new ValueTask<bool>(repository.MountAsync(descriptor, holder.RepositoryName, ct)), cancellationToken).ConfigureAwait(false))
                    {
                        Interlocked.Increment(ref _mounted);
                        continue;
                    }

                    if (streamUsed)
                    {
                        // The registry refused to mount and the bytes already went by: the next pass pushes it here.
                        FailedBlobs[descriptor.Digest] = $"{repository.DisplayName} declined a cross-repository mount";
                        continue;
                    }

                    streamUsed = true;
                    await repository.PushAsync(descriptor, content, cancellationToken).ConfigureAwait(false);
                    Interlocked.Increment(ref _uploaded);
                    Interlocked.Add(ref _bytesUploaded, descriptor.Size);
                    _holders[descriptor.Digest] = repository;
                }
                catch (Exception ex) when (ex is not IntegrityException && ex is not OperationCanceledException { CancellationToken.IsCancellationRequested: true } && RetryPolicy.IsTransient(ex, cancellationToken))
                {
                    log.Warn($"push {descriptor.Digest.Short} to {repository.DisplayName} failed: {ex.Message}");
                    FailedBlobs[descriptor.Digest] = ex.Message;
                }
            }
        }

        public async ValueTask OnCompletedAsync(BundleReadResult result, CancellationToken cancellationToken)
        {
            var needs = Needs();
            if (dryRun)
            {
                await PlanAllAsync(needs, cancellationToken).ConfigureAwait(false);
                return;
            }

            // Claimed blobs were verified by their upload tasks: wait for every one (an integrity failure ends here).
            await Task.WhenAll(_uploads).ConfigureAwait(false);
            if (!FailedBlobs.IsEmpty)
            {
                return;
            }

            // The whole bundle verified: manifests (children before indexes), then tags. Existence is asked in
            // parallel; the pushes themselves keep the children-first order.
            var pairs = result.ManifestsChildrenFirst
                .SelectMany(m => (needs.GetValueOrDefault(m.Digest) ?? []).Select(repository => (Descriptor: _manifests[m.Digest].Descriptor, Repository: repository)))
                .ToList();
            var present = new ConcurrentDictionary<(Digest, string), bool>();
            await Parallel.ForEachAsync(
                pairs,
                new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellationToken },
                async (pair, ct) => present[(pair.Descriptor.Digest, pair.Repository.DisplayName)] =
                    _knownPresent.ContainsKey((pair.Descriptor.Digest, pair.Repository.DisplayName))
                    || await plan.Retry.ExecuteAsync(c => new ValueTask<bool>(pair.Repository.ExistsAsync(pair.Descriptor, c)), ct).ConfigureAwait(false)).ConfigureAwait(false);
            foreach (var (descriptor, repository) in pairs.Where(p => !present[(p.Descriptor.Digest, p.Repository.DisplayName)]))
            {
                var bytes = _manifests[descriptor.Digest].Bytes;
                await plan.Retry.ExecuteAsync(async ct => await repository.PutManifestAsync(descriptor, bytes, descriptor.Digest.ToString(), ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                ManifestsPushed++;
            }

            await Parallel.ForEachAsync(
                plan.Roots,
                new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellationToken },
                async (root, ct) => Tags[root.Target.ToString()] = await TagAsync(root.Descriptor, root.Target, ct).ConfigureAwait(false)).ConfigureAwait(false);
        }

        private async Task<TagOutcome> TagAsync(Descriptor root, Reference target, CancellationToken cancellationToken)
        {
            var repository = plan.Repository(target);
            var tag = target.Tag!;
            Digest? current = null;
            try
            {
                current = (await plan.Retry.ExecuteAsync(ct => new ValueTask<Descriptor>(repository.ResolveAsync(tag, ct)), cancellationToken).ConfigureAwait(false)).Digest;
            }
            catch (NotFoundException)
            {
            }

            if (current == root.Digest)
            {
                return TagOutcome.Unchanged;
            }

            var (_, bytes, _) = _manifests[root.Digest];
            await plan.Retry.ExecuteAsync(async ct => await repository.PutManifestAsync(root, bytes, tag, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            if (current is not null)
            {
                log.Warn($"{target}: tag moved from {current} to {root.Digest}");
            }

            return current is null ? TagOutcome.Created : TagOutcome.Moved;
        }

        /// <summary>Dry run: which blobs each repository lacks.</summary>
        private async Task PlanAllAsync(Dictionary<Digest, List<RemoteRepository>> needs, CancellationToken cancellationToken)
        {
            var sizes = _manifests.Values.SelectMany(m => m.Document.Children.Append(m.Descriptor)).GroupBy(d => d.Digest).ToDictionary(g => g.Key, g => g.First());
            foreach (var (digest, repositories) in needs)
            {
                var descriptor = sizes[digest];
                if (MediaTypes.IsManifest(descriptor.MediaType))
                {
                    continue;
                }

                var lacking = 0;
                foreach (var repository in repositories)
                {
                    if (!await repository.ExistsAsync(descriptor, cancellationToken).ConfigureAwait(false))
                    {
                        lacking++;
                    }
                }

                if (lacking == 0)
                {
                    _present++;
                    _bytesPresent += descriptor.Size;
                }
                else
                {
                    _uploaded++;
                    _bytesUploaded += descriptor.Size;
                    _mounted += lacking - 1;
                }
            }
        }

        /// <summary>Digest → target repositories that need it, from the manifests read so far (all of them precede the blobs).</summary>
        private Dictionary<Digest, List<RemoteRepository>> Needs()
        {
            if (_needs is not null)
            {
                return _needs;
            }

            var needs = new Dictionary<Digest, List<RemoteRepository>>();
            foreach (var (root, target) in plan.Roots)
            {
                var repository = plan.Repository(target);
                var stack = new Stack<Descriptor>([root]);
                while (stack.Count > 0)
                {
                    var node = stack.Pop();
                    var list = needs.TryGetValue(node.Digest, out var existing) ? existing : needs[node.Digest] = [];
                    if (list.Contains(repository))
                    {
                        continue;
                    }

                    list.Add(repository);
                    if (_manifests.TryGetValue(node.Digest, out var manifest))
                    {
                        foreach (var child in manifest.Document.Children)
                        {
                            stack.Push(child);
                        }
                    }
                }
            }

            log.Debug($"import plan: {plan.Roots.Count} images, {needs.Count} digests");
            return _needs = needs;
        }
    }
}
