using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Copy;

/// <summary>
/// Copies image graphs between targets: children before parents, each digest once per target, bounded
/// blob concurrency, skipping what the target has, mounting across repositories of one registry, and
/// tagging last. One instance can serve many image copies so that shared layers move once.
/// </summary>
public sealed partial class GraphCopier
{
    private readonly CopyOptions _options;
    private readonly SemaphoreSlim _blobSlots;
    private readonly OrderedSlots? _orderedSlots;
    private readonly ConcurrentDictionary<string, Lazy<Task<BlobOutcome>>> _transfers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Digest, List<(string Host, string Repository)>> _knownLocations = new();
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _registryTurns = new(StringComparer.Ordinal);

    public GraphCopier(CopyOptions options)
    {
        _options = options;
        _blobSlots = new SemaphoreSlim(options.Concurrency, options.Concurrency);
        _orderedSlots = options.BlobOrder is null ? null : new OrderedSlots(options.Concurrency);
    }

    /// <summary>Copies the image <paramref name="sourceReference"/> of <paramref name="source"/> into <paramref name="target"/>, tagging it <paramref name="targetTag"/> (null: by digest only).</summary>
    public async Task<CopyResult> CopyAsync(IReadOnlyTarget source, string sourceReference, ITarget target, string? targetTag, CancellationToken cancellationToken = default)
    {
        var image = targetTag is null ? $"{target.DisplayName}@{sourceReference}" : $"{target.DisplayName}:{targetTag}";
        _options.Observer.ImageStarted(image);
        var (sourceRoot, rootBytes) = await FetchRootAsync(source, sourceReference, cancellationToken).ConfigureAwait(false);
        var rootDoc = ManifestDocument.Parse(rootBytes, sourceRoot.MediaType, $"{source.DisplayName}:{sourceReference}");
        var (root, bytes, doc, kept) = PlatformFilter.Apply(sourceRoot, rootBytes, rootDoc, _options.Platforms, $"{source.DisplayName}:{sourceReference}");
        return await CopyFetchedAsync(source, sourceReference, new ManifestTree(sourceRoot, root, bytes, kept, null), doc, image, target, targetTag, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Fetches the manifests of <paramref name="sourceReference"/> only (the root with the platform filter applied, and
    /// every child manifest, each verified against its descriptor), no configs or layers: what <see cref="CopyAsync(IReadOnlyTarget, ManifestTree, ITarget, string?, CancellationToken)"/>
    /// then copies without fetching them again. Small: manifests are capped at <see cref="ManifestDocument.MaxManifestBytes"/>.
    /// </summary>
    public async Task<ManifestTree> FetchManifestsAsync(IReadOnlyTarget source, string sourceReference, CancellationToken cancellationToken = default)
    {
        var (sourceRoot, rootBytes) = await FetchRootAsync(source, sourceReference, cancellationToken).ConfigureAwait(false);
        var rootDoc = ManifestDocument.Parse(rootBytes, sourceRoot.MediaType, $"{source.DisplayName}:{sourceReference}");
        var (root, bytes, doc, kept) = PlatformFilter.Apply(sourceRoot, rootBytes, rootDoc, _options.Platforms, $"{source.DisplayName}:{sourceReference}");
        var children = new Dictionary<Digest, (Descriptor Descriptor, byte[] Bytes)>();
        var pending = new Queue<ManifestDocument>([doc]);
        while (pending.TryDequeue(out var parent))
        {
            foreach (var edge in ImageGraph.Dependencies(parent).Where(e => e.IsManifest))
            {
                if (edge.Descriptor.Digest == root.Digest || children.ContainsKey(edge.Descriptor.Digest))
                {
                    continue;
                }

                var (childBytes, childDoc) = await FetchChildManifestAsync(source, edge.Descriptor, cancellationToken).ConfigureAwait(false);
                children[edge.Descriptor.Digest] = (edge.Descriptor, childBytes);
                pending.Enqueue(childDoc);
            }
        }

        return new ManifestTree(sourceRoot, root, bytes, kept, children);
    }

    /// <summary>Copies an image whose manifests <see cref="FetchManifestsAsync"/> fetched: only configs and layers come from <paramref name="source"/>.</summary>
    public async Task<CopyResult> CopyAsync(IReadOnlyTarget source, ManifestTree tree, ITarget target, string? targetTag, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tree);
        var sourceReference = tree.SourceRoot.Digest.ToString();
        var image = targetTag is null ? $"{target.DisplayName}@{sourceReference}" : $"{target.DisplayName}:{targetTag}";
        _options.Observer.ImageStarted(image);
        var doc = ManifestDocument.Parse(tree.RootBytes, tree.Root.MediaType, $"{source.DisplayName}@{tree.Root.Digest}");
        return await CopyFetchedAsync(source, sourceReference, tree, doc, image, target, targetTag, cancellationToken).ConfigureAwait(false);
    }

    private async Task<CopyResult> CopyFetchedAsync(IReadOnlyTarget source, string sourceReference, ManifestTree tree, ManifestDocument doc, string image, ITarget target, string? targetTag, CancellationToken cancellationToken)
    {
        var stats = new Stats();
        var (sourceRoot, root, bytes, kept) = (tree.SourceRoot, tree.Root, tree.RootBytes, tree.PlatformsKept);
        RecordSourceLocation(source, doc);
        await CopyManifestAsync(source, target, root, bytes, doc, image, stats, tree.Children, cancellationToken).ConfigureAwait(false);

        if (targetTag is not null)
        {
            await _options.Retry.ExecuteAsync(
                async ct =>
                {
                    await target.TagAsync(root, targetTag, ct).ConfigureAwait(false);
                },
                cancellationToken).ConfigureAwait(false);
        }

        var result = new CopyResult
        {
            Source = $"{source.DisplayName}:{sourceReference}",
            Destination = image,
            Root = root,
            SourceRoot = sourceRoot,
            PlatformsKept = kept,
            BytesCopied = stats.Bytes,
            BlobsCopied = stats.Copied,
            BlobsSkipped = stats.Skipped,
            BlobsMounted = stats.Mounted,
            Manifests = stats.Manifests,
        };
        _options.Observer.ImageFinished(image, result);
        return result;
    }

    private async Task<(Descriptor, byte[])> FetchRootAsync(IReadOnlyTarget source, string reference, CancellationToken cancellationToken) =>
        await _options.Retry.ExecuteAsync(
            async ct =>
            {
                if (source is IManifestFetchable direct)
                {
                    return await direct.FetchManifestAsync(reference, ct).ConfigureAwait(false);
                }

                var descriptor = await source.ResolveAsync(reference, ct).ConfigureAwait(false);
                var bytes = await ManifestReader.ReadBytesAsync(source, descriptor, source.DisplayName, ct).ConfigureAwait(false);
                return (descriptor, bytes);
            },
            cancellationToken).ConfigureAwait(false);

    private async Task CopyManifestAsync(IReadOnlyTarget source, ITarget target, Descriptor descriptor, byte[] bytes, ManifestDocument doc, string image, Stats stats, IReadOnlyDictionary<Digest, (Descriptor Descriptor, byte[] Bytes)>? fetched, CancellationToken cancellationToken)
    {
        var outcome = await OnceAsync($"{target.DisplayName}|{descriptor.Digest}", ct => TransferManifestAsync(source, target, descriptor, bytes, doc, image, stats, fetched, ct), cancellationToken).ConfigureAwait(false);
        _options.Observer.ManifestFinished(image, descriptor, outcome);
        Interlocked.Increment(ref stats.Manifests);
    }

    private async Task<BlobOutcome> TransferManifestAsync(IReadOnlyTarget source, ITarget target, Descriptor descriptor, byte[] bytes, ManifestDocument doc, string image, Stats stats, IReadOnlyDictionary<Digest, (Descriptor Descriptor, byte[] Bytes)>? fetched, CancellationToken cancellationToken)
    {
        var present = await _options.Retry.ExecuteAsync(ct => new ValueTask<bool>(target.ExistsAsync(descriptor, ct)), cancellationToken).ConfigureAwait(false);
        if (present)
        {
            // A stored manifest implies its children are stored (they are always pushed first).
            return BlobOutcome.Skipped;
        }

        var children = new List<Task>();
        foreach (var edge in ImageGraph.Dependencies(doc))
        {
            children.Add(edge.IsManifest
                ? CopyChildManifestAsync(source, target, edge.Descriptor, image, stats, fetched, cancellationToken)
                : CopyBlobAsync(source, target, edge, image, stats, cancellationToken));
        }

        await WhenAllOrFirstFailure(children).ConfigureAwait(false);

        await PushManifestReuploadingUnknownBlobsAsync(source, target, descriptor, bytes, doc, image, stats, cancellationToken).ConfigureAwait(false);
        return BlobOutcome.Copied;
    }

    private async Task PushManifestOnceAsync(ITarget target, Descriptor descriptor, byte[] bytes, CancellationToken cancellationToken) =>
        await _options.Retry.ExecuteAsync(
            async ct =>
            {
                using var content = new MemoryStream(bytes, writable: false);
                await target.PushAsync(descriptor, content, ct).ConfigureAwait(false);
            },
            cancellationToken).ConfigureAwait(false);

    private async Task CopyChildManifestAsync(IReadOnlyTarget source, ITarget target, Descriptor child, string image, Stats stats, IReadOnlyDictionary<Digest, (Descriptor Descriptor, byte[] Bytes)>? fetched, CancellationToken cancellationToken)
    {
        var (bytes, doc) = fetched is not null && fetched.TryGetValue(child.Digest, out var known) && known.Descriptor.Size == child.Size && known.Descriptor.MediaType == child.MediaType
            ? (known.Bytes, ManifestDocument.Parse(known.Bytes, child.MediaType, $"{source.DisplayName}@{child.Digest}"))
            : await FetchChildManifestAsync(source, child, cancellationToken).ConfigureAwait(false);
        await CopyManifestAsync(source, target, child, bytes, doc, image, stats, fetched, cancellationToken).ConfigureAwait(false);
    }

    private async Task<(byte[] Bytes, ManifestDocument Document)> FetchChildManifestAsync(IReadOnlyTarget source, Descriptor child, CancellationToken cancellationToken)
    {
        var bytes = await _options.Retry.ExecuteAsync(
            async ct => await ManifestReader.ReadBytesAsync(source, child, source.DisplayName, ct).ConfigureAwait(false),
            cancellationToken).ConfigureAwait(false);
        var doc = ManifestDocument.Parse(bytes, child.MediaType, $"{source.DisplayName}@{child.Digest}");
        if (doc.MediaType != child.MediaType)
        {
            throw new IntegrityException($"{source.DisplayName}@{child.Digest}: the index says {child.MediaType} but the manifest is {doc.MediaType}");
        }

        return (bytes, doc);
    }

    private async Task CopyBlobAsync(IReadOnlyTarget source, ITarget target, GraphEdge edge, string image, Stats stats, CancellationToken cancellationToken)
    {
        var blob = edge.Descriptor;
        var order = _options.BlobOrder?.Invoke(edge) ?? string.Empty;
        var outcome = await OnceAsync($"{target.DisplayName}|{blob.Digest}", ct => TransferBlobAsync(source, target, blob, order, image, stats, ct), cancellationToken).ConfigureAwait(false);
        _options.Observer.BlobFinished(image, blob, outcome);
    }

    /// <summary>Runs one attempt of a blob transfer in a blob slot: taken in <paramref name="order"/> when <see cref="CopyOptions.BlobOrder"/> is set, else first come, first served.</summary>
    private Task<T> InBlobSlotAsync<T>(string order, Func<Task<T>> work, CancellationToken ct) =>
        _orderedSlots is { } ordered ? TransferSlots.RunAsync(ordered, order, work, ct) : TransferSlots.RunAsync(_blobSlots, work, ct);

    /// <summary>
    /// Runs <paramref name="work"/> once per key for every caller that asks while it runs or after it succeeded. A failed
    /// or cancelled run is forgotten, so a later caller (another image, the next pass) tries again instead of inheriting
    /// the failure; a caller whose own token is fine does not inherit another caller's cancellation either.
    /// </summary>
    private async Task<BlobOutcome> OnceAsync(string key, Func<CancellationToken, Task<BlobOutcome>> work, CancellationToken cancellationToken)
    {
        while (true)
        {
            var entry = _transfers.GetOrAdd(key, _ => new Lazy<Task<BlobOutcome>>(() => work(cancellationToken)));
            try
            {
                return await entry.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (entry.Value.IsFaulted || entry.Value.IsCanceled)
            {
                _transfers.TryRemove(KeyValuePair.Create(key, entry));
                if (entry.Value.IsCanceled && !cancellationToken.IsCancellationRequested)
                {
                    continue;
                }

                throw;
            }
        }
    }

    private async Task<BlobOutcome> TransferBlobAsync(IReadOnlyTarget source, ITarget target, Descriptor blob, string order, string image, Stats stats, CancellationToken cancellationToken)
    {
        // Transfers of one digest to repositories of one registry take turns, so every one after the first can mount.
        var sameRegistry = target is IMountable mountable ? _registryTurns.GetOrAdd($"{mountable.RegistryHost}|{blob.Digest}", _ => new SemaphoreSlim(1, 1)) : null;
        if (sameRegistry is not null)
        {
            await sameRegistry.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        try
        {
            return await TransferBlobInSlotAsync(source, target, blob, order, image, stats, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            sameRegistry?.Release();
        }
    }

    private async Task<BlobOutcome> TransferBlobInSlotAsync(IReadOnlyTarget source, ITarget target, Descriptor blob, string order, string image, Stats stats, CancellationToken cancellationToken)
    {
        // The slot is held per attempt, and given back while a request of the attempt waits to retry (TransferSlots), so
        // a blob waiting out a backoff or a Retry-After does not hold up the others.
        var started = 0;
        var outcome = await _options.Retry.ExecuteAsync(
            ct => new ValueTask<BlobOutcome>(InBlobSlotAsync(order, () =>
            {
                if (Interlocked.Exchange(ref started, 1) == 0)
                {
                    _options.Observer.BlobStarted(image, blob);
                }

                return TransferBlobOnceAsync(source, target, blob, image, stats, ct);
            }, ct)),
            cancellationToken).ConfigureAwait(false);
        switch (outcome)
        {
            case BlobOutcome.Copied:
                Interlocked.Increment(ref stats.Copied);
                break;
            case BlobOutcome.Mounted:
                Interlocked.Increment(ref stats.Mounted);
                break;
            default:
                Interlocked.Increment(ref stats.Skipped);
                break;
        }

        if (target is IMountable location)
        {
            Remember(blob.Digest, location.RegistryHost, location.RepositoryName);
        }

        return outcome;
    }

    /// <summary>One attempt of a whole blob transfer: check → mount → open source → stream → commit.</summary>
    private async Task<BlobOutcome> TransferBlobOnceAsync(IReadOnlyTarget source, ITarget target, Descriptor blob, string image, Stats stats, CancellationToken cancellationToken)
    {
        if (await target.ExistsAsync(blob, cancellationToken).ConfigureAwait(false))
        {
            TrustedHead(target, blob);
            return BlobOutcome.Skipped;
        }

        if (target is IMountable mountable && FindMountSource(blob.Digest, mountable) is { } from
            && await mountable.MountAsync(blob, from, cancellationToken).ConfigureAwait(false))
        {
            return BlobOutcome.Mounted;
        }

        await UploadBlobAsync(source, target, blob, image, stats, cancellationToken).ConfigureAwait(false);
        return BlobOutcome.Copied;
    }

    /// <summary>Streams <paramref name="blob"/> from the source into the target, counting the bytes it sent.</summary>
    private async Task UploadBlobAsync(IReadOnlyTarget source, ITarget target, Descriptor blob, string image, Stats stats, CancellationToken cancellationToken)
    {
        var content = await source.FetchAsync(blob, cancellationToken).ConfigureAwait(false);
        var counted = new CountingStream(content, n =>
        {
            Interlocked.Add(ref stats.Bytes, n);
            _options.Observer.BytesTransferred(image, n);
        });
        try
        {
            await using (counted.ConfigureAwait(false))
            {
                await target.PushAsync(blob, counted, cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            // A failed attempt's bytes do not count; a retry sends them again.
            Interlocked.Add(ref stats.Bytes, -counted.Count);
            _options.Observer.BytesTransferred(image, -counted.Count);
            throw;
        }
    }

    private void RecordSourceLocation(IReadOnlyTarget source, ManifestDocument root)
    {
        if (source is IMountable location)
        {
            foreach (var edge in ImageGraph.Dependencies(root))
            {
                Remember(edge.Descriptor.Digest, location.RegistryHost, location.RepositoryName);
            }
        }
    }

    private void Remember(Digest digest, string host, string repository)
    {
        var list = _knownLocations.GetOrAdd(digest, _ => []);
        lock (list)
        {
            if (!list.Contains((host, repository)))
            {
                list.Add((host, repository));
            }
        }
    }

    private string? FindMountSource(Digest digest, IMountable target)
    {
        if (!_knownLocations.TryGetValue(digest, out var list))
        {
            return null;
        }

        lock (list)
        {
            foreach (var (host, repository) in list)
            {
                if (string.Equals(host, target.RegistryHost, StringComparison.OrdinalIgnoreCase) && repository != target.RepositoryName)
                {
                    return repository;
                }
            }
        }

        return null;
    }

    /// <summary>Waits for all tasks; on the first failure, surfaces that failure (not an AggregateException).</summary>
    private static async Task WhenAllOrFirstFailure(List<Task> tasks)
    {
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch
        {
            var first = tasks.FirstOrDefault(t => t.IsFaulted && t.Exception?.InnerException is MirrorException)
                ?? tasks.First(t => t.IsFaulted || t.IsCanceled);
            await first.ConfigureAwait(false);
            throw;
        }
    }

    private sealed class Stats
    {
        public long Bytes;
        public int Copied;
        public int Skipped;
        public int Mounted;
        public int Manifests;
    }
}
