using System.Collections.Concurrent;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Export;

/// <summary>
/// Resolves a platform manifest (its image list and the images its charts reference) to digests at the
/// source, recording media types, kept per-platform children, sizes and Helm values paths.
/// </summary>
public sealed class PlatformResolver(RegistryConnector registries, IMirrorLog log)
{
    /// <summary>How many images are resolved at once (the per-registry rate limit still applies).</summary>
    public int Parallelism { get; init; } = 4;

    /// <summary>The manifest's charts already pinned (<see cref="LockedCharts.PinAsync"/>); when null its local charts are pinned here.</summary>
    public IReadOnlyList<LockedChart>? Charts { get; init; }

    /// <summary>Where the manifests resolve fetches are kept for export (<see cref="ManifestStore"/>); null keeps none.</summary>
    public ManifestStore? Manifests { get; init; }

    /// <summary>How many extra rounds re-try the images whose resolution failed transiently (bounded by the run's time budget).</summary>
    public int RetryRounds { get; init; } = 3;

    /// <summary>
    /// Resolves every image; each request retries itself (<see cref="RegistryClient.SendAsync"/>), so a failure here has
    /// already used its request's budget. Images that failed transiently are tried again after everything else, in up
    /// to <see cref="RetryRounds"/> rounds with backoff, while the run's budget lasts. Only then does it fail, naming
    /// every unresolved image with the registry's error code; nothing is written before that.
    /// </summary>
    public async Task<LockFile> ResolveAsync(PlatformManifest manifest, IReadOnlyList<PlannedImage> images, IReadOnlyList<Platform> platforms, CancellationToken cancellationToken = default)
    {
        var locked = new ConcurrentDictionary<int, LockedImage>();
        var blobs = new ConcurrentDictionary<Digest, long>();
        // One token request per registry (in batches) instead of a challenge and a token request per repository.
        await registries.PreparePullTokensAsync(images.Select(i => registries.SourceRepository(i.Reference)), cancellationToken).ConfigureAwait(false);
        await new KeepGoing(registries, log) { Parallelism = Parallelism, RetryRounds = RetryRounds }.RunAsync(
            images.Select(i => i.Reference.ToString()).ToList(),
            KeepGoing.Verb.Resolve,
            async (i, ct) =>
            {
                var (image, needed) = await ResolveImageAsync(images[i], platforms, ct).ConfigureAwait(false);
                locked[i] = image;
                foreach (var blob in needed)
                {
                    blobs[blob.Digest] = blob.Size;
                }

                log.Info($"resolved {images[i].Reference} -> {image.Digest}");
            },
            cancellationToken).ConfigureAwait(false);

        var charts = Charts?.ToList() ?? [];
        foreach (var chart in Charts is null ? manifest.Charts : [])
        {
            charts.Add(await LockChartAsync(chart.FullPath ?? throw new InvalidOperationException($"chart {chart.Source} must be pinned by LockedCharts.PinAsync"), cancellationToken).ConfigureAwait(false));
        }

        return new LockFile
        {
            Name = manifest.Name,
            Version = manifest.Version,
            Source = manifest.Source,
            Platforms = platforms.Select(p => p.ToString()).ToList(),
            Images = locked.OrderBy(p => p.Key).Select(p => p.Value).OrderBy(i => i.Reference, StringComparer.Ordinal).ToList(),
            Charts = charts.OrderBy(c => c.Name, StringComparer.Ordinal).ThenBy(c => c.Version, StringComparer.Ordinal).ToList(),
            Blobs = blobs.Select(b => new LockedBlob(b.Key.ToString(), b.Value)).OrderBy(b => b.Digest, StringComparer.Ordinal).ToList(),
        };
    }

    public static async Task<LockedChart> LockChartAsync(string path, CancellationToken cancellationToken)
    {
        using var archive = await ChartArchive.EnsureArchiveAsync(path, cancellationToken).ConfigureAwait(false);
        return await DescribeChartAsync(path, archive, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Name, version and sha256 of a chart already packed as <paramref name="archive"/>.</summary>
    public static async Task<LockedChart> DescribeChartAsync(string path, ChartArchive archive, CancellationToken cancellationToken)
    {
        var metadata = await HelmChartPacker.ReadMetadataAsync(archive.Path, cancellationToken).ConfigureAwait(false);
        await using var stream = File.OpenRead(archive.Path);
        var digest = await Digest.Sha256Async(stream, cancellationToken).ConfigureAwait(false);
        return new LockedChart { Path = Path.GetFullPath(path), Name = metadata.Name, Version = metadata.Version, Digest = digest.ToString() };
    }

    private async Task<(LockedImage, IReadOnlyList<Descriptor>)> ResolveImageAsync(PlannedImage image, IReadOnlyList<Platform> platforms, CancellationToken cancellationToken)
    {
        var reference = image.Reference;
        var remote = registries.SourceRepository(reference);
        IReadOnlyTarget repository = Manifests is null ? remote : new StoredManifestSource(remote, Manifests);
        var (sourceRoot, bytes) = await ((IManifestFetchable)repository).FetchManifestAsync(reference.TagOrDigest, cancellationToken).ConfigureAwait(false);
        if (reference.Digest is { } pinned && pinned != sourceRoot.Digest)
        {
            throw new IntegrityException($"{reference}: the registry served {sourceRoot.Digest}");
        }

        var document = ManifestDocument.Parse(bytes, sourceRoot.MediaType, reference.ToString());
        var (root, _, filtered, _) = PlatformFilter.Apply(sourceRoot, bytes, document, platforms, reference.ToString());

        var seen = new HashSet<Digest> { root.Digest };
        var needed = new List<Descriptor> { root };
        long size = root.Size;
        var children = new List<LockedPlatform>();
        foreach (var edge in ImageGraph.Dependencies(filtered))
        {
            if (!edge.IsManifest)
            {
                size += Add(seen, needed, edge.Descriptor);
                continue;
            }

            // A platform's size is its whole subtree; the image's size counts each blob once.
            var (subtree, added) = await WalkAsync(repository, edge.Descriptor, seen, needed, reference.ToString(), cancellationToken).ConfigureAwait(false);
            children.Add(new LockedPlatform(edge.Descriptor.Platform?.ToString() ?? "unknown", edge.Descriptor.Digest.ToString(), edge.Descriptor.MediaType, subtree));
            size += added;
        }

        return (new LockedImage
        {
            Reference = reference.ToString(),
            Digest = root.Digest.ToString(),
            SourceDigest = sourceRoot.Digest.ToString(),
            MediaType = root.MediaType,
            Children = children,
            Size = size,
            Values = image.ValuesPaths,
            Origins = image.Origins,
        }, needed);
    }

    /// <summary>
    /// Fetches the manifest <paramref name="top"/> and everything below it (nested indexes included), adding what is new to
    /// <paramref name="needed"/>. Returns the subtree's size (each digest once) and the bytes that were new.
    /// </summary>
    private static async Task<(long Subtree, long Added)> WalkAsync(
        IReadOnlyTarget repository, Descriptor top, HashSet<Digest> seen, List<Descriptor> needed, string source, CancellationToken cancellationToken)
    {
        var inSubtree = new HashSet<Digest>();
        long subtree = 0, added = 0;
        var stack = new Stack<Descriptor>([top]);
        while (stack.Count > 0)
        {
            var node = stack.Pop();
            if (!inSubtree.Add(node.Digest))
            {
                continue;
            }

            subtree += node.Size;
            added += Add(seen, needed, node);
            if (!MediaTypes.IsManifest(node.MediaType))
            {
                continue;
            }

            var document = await ManifestReader.ReadAsync(repository, node, source, cancellationToken).ConfigureAwait(false);
            foreach (var edge in ImageGraph.Dependencies(document))
            {
                stack.Push(edge.Descriptor);
            }
        }

        return (subtree, added);
    }

    private static long Add(HashSet<Digest> seen, List<Descriptor> needed, Descriptor descriptor)
    {
        if (!seen.Add(descriptor.Digest))
        {
            return 0;
        }

        needed.Add(descriptor);
        return descriptor.Size;
    }
}
