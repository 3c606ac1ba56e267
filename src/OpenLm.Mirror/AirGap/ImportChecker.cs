using System.Collections.Concurrent;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.AirGap;

/// <summary>One image (or chart) that should be in the air-gapped registry.</summary>
/// <param name="Source">Its source reference (the bundle's ref name).</param>
/// <param name="Target">Where the import stored it (<see cref="TargetNameMapper.Map"/>); checked by its tag.</param>
/// <param name="Expected">The root descriptor the bundle holds (manifest or index).</param>
/// <param name="IsChart">True for a Helm chart artifact.</param>
public sealed record ImportCheckItem(Reference Source, Reference Target, Descriptor Expected, bool IsChart = false);

/// <summary>The verdict on one image.</summary>
public enum ImportCheckStatus
{
    /// <summary>The tag names the expected digest and every manifest and blob of the graph is present.</summary>
    Ok,

    /// <summary>The tag does not exist in the target repository.</summary>
    Missing,

    /// <summary>The tag names another digest.</summary>
    WrongDigest,

    /// <summary>The tag names the expected digest but child manifests or blobs are missing.</summary>
    Incomplete,

    /// <summary>The registry could not be asked (network, authorization, a corrupt answer).</summary>
    Error,
}

/// <summary>A manifest or blob of the image's graph that the registry does not have.</summary>
public sealed record MissingBlob(Digest Digest, string MediaType, long Size);

/// <summary>What <see cref="ImportChecker"/> found for one image.</summary>
public sealed record ImportCheckResult
{
    public required ImportCheckItem Item { get; init; }

    public required ImportCheckStatus Status { get; init; }

    /// <summary>The digest the tag resolves to in the target, or null when it does not resolve.</summary>
    public Digest? FoundDigest { get; init; }

    /// <summary>Missing child manifests and blobs, ordered by digest (empty unless <see cref="ImportCheckStatus.Incomplete"/>).</summary>
    public IReadOnlyList<MissingBlob> MissingBlobs { get; init; } = [];

    /// <summary>Manifests and blobs checked below the root (the root itself not counted).</summary>
    public int DescendantsChecked { get; init; }

    /// <summary>Why the check could not finish (only for <see cref="ImportCheckStatus.Error"/>).</summary>
    public string? Error { get; init; }
}

public sealed record ImportCheckOptions
{
    /// <summary>Images checked at once.</summary>
    public int ParallelImages { get; init; } = 4;

    /// <summary>Registry requests in flight over all images.</summary>
    public int Concurrency { get; init; } = 8;

    /// <summary>What the target registry is, for the capability probe (default: detected).</summary>
    public Registry.Kinds.RegistryKind RegistryKind { get; init; }
}

/// <summary>
/// Audits an import: for each image, the tag in the target must name the digest the bundle holds, and the whole graph
/// must be present <b>in the target</b> — child manifests are fetched from the target and verified by digest, every
/// config and layer is asked for with a blob <c>HEAD</c> (GET fallback). Nothing is written.
/// </summary>
public sealed class ImportChecker
{
    private readonly RegistryConnector _connector;
    private readonly ImportCheckOptions _options;
    private readonly SemaphoreSlim _requests;
    private readonly ConcurrentDictionary<string, Lazy<Task<bool>>> _blobs = new(StringComparer.Ordinal);

    public ImportChecker(RegistryConnector connector, ImportCheckOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(connector);
        _connector = connector;
        _options = options ?? new ImportCheckOptions();
        if (_options.ParallelImages < 1 || _options.Concurrency < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "parallelism must be at least 1");
        }

        _requests = new SemaphoreSlim(_options.Concurrency, _options.Concurrency);
    }

    /// <summary>Checks every item; results come back in the order of <paramref name="items"/>. <paramref name="progress"/> hears of each as it finishes.</summary>
    public async Task<IReadOnlyList<ImportCheckResult>> CheckAsync(
        IEnumerable<ImportCheckItem> items, IProgress<ImportCheckResult>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(items);
        var list = items.ToList();
        var results = new ImportCheckResult[list.Count];
        await Parallel.ForEachAsync(
            Enumerable.Range(0, list.Count),
            new ParallelOptions { MaxDegreeOfParallelism = _options.ParallelImages, CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                results[i] = await CheckOneAsync(list[i], ct).ConfigureAwait(false);
                progress?.Report(results[i]);
            }).ConfigureAwait(false);
        return results;
    }

    /// <summary>Checks one image.</summary>
    public async Task<ImportCheckResult> CheckOneAsync(ImportCheckItem item, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(item);
        var tag = item.Target.Tag ?? throw new ArgumentException($"target '{item.Target}' has no tag", nameof(item));
        var repository = _connector.Repository(item.Target);
        var retry = repository.Client.Retry;
        try
        {
            Descriptor found;
            byte[] bytes;
            try
            {
                (found, bytes) = await LimitedAsync(
                    ct => retry.ExecuteAsync(async c => await repository.FetchManifestAsync(tag, c).ConfigureAwait(false), ct).AsTask(),
                    cancellationToken).ConfigureAwait(false);
            }
            catch (NotFoundException)
            {
                return new ImportCheckResult { Item = item, Status = ImportCheckStatus.Missing };
            }

            if (found.Digest != item.Expected.Digest)
            {
                return new ImportCheckResult { Item = item, Status = ImportCheckStatus.WrongDigest, FoundDigest = found.Digest };
            }

            var document = ManifestDocument.Parse(bytes, found.MediaType, $"{repository.DisplayName}:{tag}");
            var walk = new Walk(this, repository);
            await walk.VisitAsync(document, cancellationToken).ConfigureAwait(false);
            var missing = walk.Missing.Values.OrderBy(m => m.Digest.ToString(), StringComparer.Ordinal).ToList();
            return new ImportCheckResult
            {
                Item = item,
                Status = missing.Count == 0 ? ImportCheckStatus.Ok : ImportCheckStatus.Incomplete,
                FoundDigest = found.Digest,
                MissingBlobs = missing,
                DescendantsChecked = walk.Checked,
            };
        }
        catch (Exception ex) when (ex is MirrorException or HttpRequestException or IOException or TimeoutException
                                   || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return new ImportCheckResult { Item = item, Status = ImportCheckStatus.Error, Error = Describe(ex) };
        }
    }

    private static string Describe(Exception ex) =>
        ex is HttpRequestException { InnerException: { } inner } http ? $"{http.Message} ({inner.Message})" : ex.Message;

    private async Task<T> LimitedAsync<T>(Func<CancellationToken, Task<T>> operation, CancellationToken cancellationToken)
    {
        await _requests.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await operation(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _requests.Release();
        }
    }

    /// <summary>Whether a config or layer is in the repository; asked once per repository and digest.</summary>
    private Task<bool> BlobExistsAsync(RemoteRepository repository, Descriptor blob, CancellationToken cancellationToken) =>
        _blobs.GetOrAdd(
            $"{repository.DisplayName}@{blob.Digest}",
            _ => new Lazy<Task<bool>>(() => LimitedAsync(
                ct => repository.Client.Retry.ExecuteAsync(async c => await repository.ExistsAsync(blob, c).ConfigureAwait(false), ct).AsTask(),
                cancellationToken))).Value;

    /// <summary>The walk below one root, in one repository.</summary>
    private sealed class Walk(ImportChecker checker, RemoteRepository repository)
    {
        private readonly ConcurrentDictionary<Digest, byte> _seen = new();
        private int _checked;

        public ConcurrentDictionary<Digest, MissingBlob> Missing { get; } = new();

        public int Checked => Volatile.Read(ref _checked);

        public async Task VisitAsync(ManifestDocument document, CancellationToken cancellationToken)
        {
            var children = ImageGraph.Dependencies(document).Where(e => _seen.TryAdd(e.Descriptor.Digest, 0)).ToList();
            await Task.WhenAll(children.Select(e => VisitChildAsync(e, cancellationToken))).ConfigureAwait(false);
        }

        private async Task VisitChildAsync(GraphEdge edge, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _checked);
            var child = edge.Descriptor;
            if (edge.IsManifest)
            {
                ManifestDocument document;
                try
                {
                    // Fetched from the target by digest and verified against it (size and SHA-256).
                    document = await checker.LimitedAsync(
                        ct => repository.Client.Retry.ExecuteAsync(
                            async c => await ManifestReader.ReadAsync(repository, child, repository.DisplayName, c).ConfigureAwait(false), ct).AsTask(),
                        cancellationToken).ConfigureAwait(false);
                }
                catch (NotFoundException)
                {
                    Missing.TryAdd(child.Digest, new MissingBlob(child.Digest, child.MediaType, child.Size));
                    return;
                }

                await VisitAsync(document, cancellationToken).ConfigureAwait(false);
                return;
            }

            if (!await checker.BlobExistsAsync(repository, child, cancellationToken).ConfigureAwait(false))
            {
                Missing.TryAdd(child.Digest, new MissingBlob(child.Digest, child.MediaType, child.Size));
            }
        }
    }
}
