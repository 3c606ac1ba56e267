using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Import;

/// <summary>What the existence pass asked and found.</summary>
/// <param name="Asked">HEAD requests sent.</param>
/// <param name="ImagesPresent">Images whose root manifest the target repository already stores (nothing below it is asked).</param>
/// <param name="Present">(repository, digest) pairs found present, root manifests included.</param>
internal sealed record ExistenceSummary(int Asked, int ImagesPresent, int Present);

/// <summary>
/// One batched, parallel pass of HEADs before the copy, in place of the copier's HEAD per blob inside its upload slots
/// (at 20 ms a round trip, a HEAD queued behind six uploads costs more than the upload of a small blob). Two rounds: the
/// root manifest of every image (a stored manifest implies its whole graph is stored: registries refuse a manifest
/// whose blobs are missing), then every other node of the images whose root is missing, each (repository, digest) pair
/// once. The answers become <see cref="HintedRepository"/> hints the copier uses once. A HEAD that fails leaves no hint:
/// the copier asks again in its own time and reports the failure where it belongs. Reads only: nothing is pushed.
/// </summary>
internal static class ExistencePass
{
    public static async Task<ExistenceSummary> RunAsync(ImportPlan plan, IReadOnlyList<(Descriptor Source, Reference Target)> images, int concurrency, CancellationToken cancellationToken)
    {
        var bundle = plan.Bundle;
        var roots = images
            .Select(i => (Repository: plan.Repositories[i.Target.Name], Node: i.Source))
            .DistinctBy(r => (r.Repository.RepositoryName, r.Node.Digest))
            .ToList();
        var rootsPresent = await AskAllAsync(plan, roots, concurrency, cancellationToken).ConfigureAwait(false);

        var nodes = images
            .Select(i => (Repository: plan.Repositories[i.Target.Name], Root: i.Source))
            .Where(r => !rootsPresent.Contains((r.Repository.RepositoryName, r.Root.Digest)))
            .SelectMany(r => ImageGraph.Reachable(r.Root, bundle.Documents).Values
                .Where(n => n.Digest != r.Root.Digest && !r.Repository.KnownPresent(n.Digest))
                .Select(n => (r.Repository, Node: n)))
            .DistinctBy(n => (n.Repository.RepositoryName, n.Node.Digest))
            .ToList();
        var present = await AskAllAsync(plan, nodes, concurrency, cancellationToken).ConfigureAwait(false);
        var imagesPresent = images.Count(i => rootsPresent.Contains((plan.Repositories[i.Target.Name].RepositoryName, i.Source.Digest)));
        return new ExistenceSummary(roots.Count + nodes.Count, imagesPresent, rootsPresent.Count + present.Count);
    }

    /// <summary>HEADs every pair in parallel, records each answer as a hint, returns the pairs found present.</summary>
    private static async Task<HashSet<(string Repository, Digest Digest)>> AskAllAsync(
        ImportPlan plan, IReadOnlyList<(HintedRepository Repository, Descriptor Node)> pairs, int concurrency, CancellationToken cancellationToken)
    {
        var present = new HashSet<(string, Digest)>();
        await Parallel.ForEachAsync(
            pairs,
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, concurrency), CancellationToken = cancellationToken },
            async (pair, ct) =>
            {
                bool found;
                try
                {
                    found = await plan.Retry.ExecuteAsync(c => new ValueTask<bool>(pair.Repository.AskAsync(pair.Node, c)), ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is MirrorException or HttpRequestException && !ct.IsCancellationRequested)
                {
                    return;
                }

                pair.Repository.Hint(pair.Node.Digest, found);
                if (found)
                {
                    lock (present)
                    {
                        present.Add((pair.Repository.RepositoryName, pair.Node.Digest));
                    }
                }
            }).ConfigureAwait(false);
        return present;
    }
}
