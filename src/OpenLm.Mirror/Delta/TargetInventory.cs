using System.Collections.Concurrent;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Export;
using OpenLm.Mirror.Import;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Delta;

/// <summary>What an inventory found: the receipt, and the lock's images the target does not hold.</summary>
public sealed record InventoryResult(ImportReceipt Receipt, IReadOnlyList<string> Absent, int BlobsMissing);

/// <summary>
/// Asks a target registry what it holds of a release, for a site whose import receipt was lost: for every image of the
/// lock, the manifest at the lock's digest is fetched (by digest, verified) from the image's target repository, its child
/// manifests likewise, and every config and layer is asked for with a HEAD. What is there becomes a receipt — a valid
/// <c>--base</c> for the next delta, listing only content the target really holds. Nothing is written to the registry.
/// </summary>
public sealed class TargetInventory(RegistryConnector registries)
{
    /// <param name="maxPathComponents">The import's <c>MaxPathComponents</c>: names are looked up flattened as the import stored them.</param>
    public async Task<InventoryResult> TakeAsync(string target, IReadOnlyList<string> maps, LockFile lockFile, int concurrency = 8, CancellationToken cancellationToken = default, int? maxPathComponents = null)
    {
        ArgumentNullException.ThrowIfNull(lockFile);
        var mapper = TargetNameMapper.Create(target, maps, lockFile.Source, maxPathComponents);
        var contents = new ConcurrentDictionary<Digest, long>();
        var images = new ConcurrentBag<ReceiptImage>();
        var absent = new ConcurrentBag<string>();
        var missing = 0;
        using var requests = new SemaphoreSlim(Math.Max(1, concurrency));
        await Parallel.ForEachAsync(
            lockFile.Images,
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, concurrency), CancellationToken = cancellationToken },
            async (image, ct) =>
            {
                var targetReference = mapper.Map(Reference.Parse(image.Reference));
                var repository = registries.Repository(targetReference);
                var found = new Dictionary<Digest, long>();
                var complete = await WalkAsync(repository, new Descriptor { MediaType = image.MediaType, Digest = Digest.Parse(image.Digest), Size = 0 }, isManifest: true, found, requests, ct).ConfigureAwait(false);
                if (found.Count == 0)
                {
                    absent.Add(image.Reference);
                    return;
                }

                foreach (var (digest, size) in found)
                {
                    contents.TryAdd(digest, size);
                }

                if (!complete)
                {
                    Interlocked.Increment(ref missing);
                }

                images.Add(new ReceiptImage(image.Reference, targetReference.ToString(), image.Digest, image.MediaType));
            }).ConfigureAwait(false);

        var receipt = new ImportReceipt
        {
            Registry = mapper.Target.ToString(),
            Time = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()),
            BundleDigest = string.Empty,
            Platform = new ReceiptPlatform(lockFile.Name, lockFile.Version),
            Images = images.OrderBy(i => i.Source, StringComparer.Ordinal).ToList(),
            Contents = contents.Select(c => new ReceiptBlob(c.Key.ToString(), c.Value)).OrderBy(c => c.Digest, StringComparer.Ordinal).ToList(),
        };
        return new InventoryResult(receipt, absent.Order(StringComparer.Ordinal).ToList(), missing);
    }

    /// <summary>Records what of <paramref name="node"/>'s graph the repository holds; false when anything is missing.</summary>
    private static async Task<bool> WalkAsync(RemoteRepository repository, Descriptor node, bool isManifest, Dictionary<Digest, long> found, SemaphoreSlim requests, CancellationToken ct)
    {
        var retry = repository.Client.Retry;
        if (!isManifest)
        {
            await requests.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                if (!await retry.ExecuteAsync(c => new ValueTask<bool>(repository.ExistsAsync(node, c)), ct).ConfigureAwait(false))
                {
                    return false;
                }
            }
            finally
            {
                requests.Release();
            }

            found[node.Digest] = node.Size;
            return true;
        }

        (Descriptor Descriptor, byte[] Bytes) manifest;
        await requests.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            manifest = await retry.ExecuteAsync(async c => await repository.FetchManifestAsync(node.Digest.ToString(), c).ConfigureAwait(false), ct).ConfigureAwait(false);
        }
        catch (NotFoundException)
        {
            return false;
        }
        finally
        {
            requests.Release();
        }

        if (Digest.Sha256(manifest.Bytes) != node.Digest)
        {
            throw new IntegrityException($"{repository.DisplayName}@{node.Digest}: the registry returned a manifest that hashes to {Digest.Sha256(manifest.Bytes)}");
        }

        found[node.Digest] = manifest.Bytes.Length;
        var document = ManifestDocument.Parse(manifest.Bytes, manifest.Descriptor.MediaType, $"{repository.DisplayName}@{node.Digest}");
        var complete = true;
        foreach (var edge in ImageGraph.Dependencies(document))
        {
            if (!found.ContainsKey(edge.Descriptor.Digest))
            {
                complete &= await WalkAsync(repository, edge.Descriptor, edge.IsManifest, found, requests, ct).ConfigureAwait(false);
            }
        }

        return complete;
    }
}
