using System.Collections.Concurrent;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Import;

/// <summary>One blob a delta leaves to its base that a target repository does not hold.</summary>
/// <param name="Repository">The target repository that lacks it (registries keep blobs per repository).</param>
/// <param name="Images">The bundle's images (source references) that need it there.</param>
/// <param name="Base">Which base supplies it, e.g. "bundle of olm 1.0".</param>
public sealed record MissingBaseBlob(Digest Digest, long Size, string Repository, IReadOnlyList<string> Images, string Base);

/// <summary>What the base check found: how many (repository, blob) pairs it asked about, and which are missing.</summary>
public sealed record BaseCheckResult(int Checked, long Bytes, IReadOnlyList<MissingBaseBlob> Missing)
{
    public bool Complete => Missing.Count == 0;

    /// <summary>The message of an incomplete target: what is missing, where, who needs it, and which base release supplies it.</summary>
    public string Describe(string bundle, string registry)
    {
        const int shown = 20;
        var images = Missing.SelectMany(m => m.Images).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var bases = Missing.Select(m => m.Base).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var lines = Missing.Take(shown).Select(m => $"  {m.Repository}@{m.Digest} ({m.Size} bytes), needed by {string.Join(", ", m.Images)}; supplied by the {m.Base}");
        return $"the target is incomplete: {bundle} is a delta bundle, and {Missing.Count} of the {Checked} blobs it leaves to its base are not in {registry}; nothing was pushed.\n"
            + string.Join("\n", lines)
            + (Missing.Count > shown ? $"\n  … and {Missing.Count - shown} more" : string.Empty)
            + $"\nImages affected: {string.Join(", ", images)}."
            + $"\nImport the base release first ({string.Join("; ", bases)}), or import a full bundle of this release.";
    }
}

/// <summary>
/// The base check of a delta import: every blob the delta omits must already be in each target repository whose images
/// need it, asked by HEAD, in parallel, before anything is pushed. Registries scope blobs to repositories, so the check
/// is per (repository, digest) pair; a blob present in another repository of the registry does not count.
/// </summary>
internal static class BaseCheck
{
    public static async Task<BaseCheckResult> RunAsync(ImportPlan plan, int concurrency, CancellationToken cancellationToken)
    {
        var bundle = plan.Bundle;
        var needs = new Dictionary<(string Repository, Digest Digest), (Descriptor Descriptor, List<string> Images)>();
        foreach (var (source, target) in plan.Images)
        {
            foreach (var node in ImageGraph.Reachable(source, bundle.Documents).Values.Where(n => bundle.Omitted.ContainsKey(n.Digest)))
            {
                var key = (target.Name, node.Digest);
                if (!needs.TryGetValue(key, out var need))
                {
                    needs[key] = need = (node, []);
                }

                need.Images.Add(source.RefName!);
            }
        }

        var missing = new ConcurrentBag<MissingBaseBlob>();
        await Parallel.ForEachAsync(
            needs,
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, concurrency), CancellationToken = cancellationToken },
            async (need, ct) =>
            {
                var repository = plan.Repositories[need.Key.Repository];
                var present = await plan.Retry.ExecuteAsync(c => new ValueTask<bool>(repository.AskAsync(need.Value.Descriptor, c)), ct).ConfigureAwait(false);

                // The copy that follows asks about the same blobs: it takes this answer instead of a second HEAD.
                repository.Hint(need.Key.Digest, present);
                if (!present)
                {
                    var omitted = bundle.Omitted[need.Key.Digest];
                    missing.Add(new MissingBaseBlob(
                        need.Key.Digest,
                        omitted.Size,
                        repository.DisplayName,
                        need.Value.Images.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
                        bundle.BaseName(omitted.Base)));
                }
            }).ConfigureAwait(false);

        return new BaseCheckResult(
            needs.Count,
            needs.Values.Sum(n => n.Descriptor.Size),
            missing.OrderBy(m => m.Repository, StringComparer.Ordinal).ThenBy(m => m.Digest.ToString(), StringComparer.Ordinal).ToList());
    }
}
