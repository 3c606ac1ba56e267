using System.Text.Json;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// Everything reachable from an OCI layout's index.json, in bundle order: manifests and indexes
/// parents-first (breadth-first; each level sorted by digest), then configs and other non-layer blobs
/// (sorted by digest), then layers (sorted by digest). Each blob appears once.
/// </summary>
internal sealed class BundleGraph
{
    private BundleGraph()
    {
    }

    /// <summary>index.json entries, sorted by ref name.</summary>
    public required IReadOnlyList<Descriptor> Roots { get; init; }

    /// <summary>Manifests and indexes in bundle order, with their verified bytes.</summary>
    public required IReadOnlyList<(Descriptor Descriptor, byte[] Bytes)> Manifests { get; init; }

    /// <summary>Configs and other non-manifest, non-layer blobs, sorted by digest.</summary>
    public required IReadOnlyList<Descriptor> Configs { get; init; }

    /// <summary>Layers, sorted by digest.</summary>
    public required IReadOnlyList<Descriptor> Layers { get; init; }

    /// <summary>Parsed manifests by digest.</summary>
    public required IReadOnlyDictionary<Digest, ManifestDocument> Documents { get; init; }

    public long Count => Manifests.Count + Configs.Count + Layers.Count;

    public long TotalBytes => Manifests.Sum(m => m.Descriptor.Size) + Configs.Sum(c => c.Size) + Layers.Sum(l => l.Size);

    public static async Task<BundleGraph> LoadAsync(OciLayoutStore layout, CancellationToken ct)
    {
        var entries = await layout.ReadIndexAsync(ct).ConfigureAwait(false);
        return await BuildAsync(layout, entries, null, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The graph of <paramref name="entries"/> (what the layout's index.json would list) before the configs and layers
    /// are stored: manifests come from <paramref name="manifests"/> (verified bytes, by digest), else from the layout.
    /// Configs and layers need not be there yet; the writer awaits each before it reads it.
    /// </summary>
    public static Task<BundleGraph> PlanAsync(OciLayoutStore layout, IReadOnlyList<Descriptor> entries, IReadOnlyDictionary<Digest, byte[]> manifests, CancellationToken ct) =>
        BuildAsync(layout, entries, manifests, ct);

    private static async Task<BundleGraph> BuildAsync(OciLayoutStore layout, IReadOnlyList<Descriptor> entries, IReadOnlyDictionary<Digest, byte[]>? planned, CancellationToken ct)
    {
        var roots = new List<Descriptor>();
        var refNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            var refName = e.RefName;
            if (string.IsNullOrEmpty(refName))
            {
                throw new InputException($"{layout.DisplayName}: index.json entry {e.Digest} has no {Descriptor.RefNameAnnotation}; every bundled image needs its reference");
            }

            if (!refNames.Add(refName))
            {
                throw new InputException($"{layout.DisplayName}: ref name '{refName}' appears more than once in index.json");
            }

            if (!MediaTypes.IsManifest(e.MediaType))
            {
                throw new InputException($"{layout.DisplayName}: '{refName}' has media type '{e.MediaType}', which is not a manifest or index");
            }

            roots.Add(e);
        }

        roots.Sort((a, b) => string.CompareOrdinal(a.RefName, b.RefName));

        var kinds = new Dictionary<Digest, (Descriptor Descriptor, Kind Kind, string ReferencedBy)>();
        var manifests = new List<(Descriptor, byte[])>();
        var documents = new Dictionary<Digest, ManifestDocument>();

        void Note(Descriptor d, Kind kind, string referencedBy)
        {
            if (d.Digest.Algorithm != "sha256")
            {
                throw new InputException($"{layout.DisplayName}: {referencedBy} references {d.Digest}; bundles hold sha256 blobs only");
            }

            if (kinds.TryGetValue(d.Digest, out var known))
            {
                if (known.Descriptor.Size != d.Size)
                {
                    throw new InputException(
                        $"{layout.DisplayName}: {referencedBy} says {d.Digest} is {d.Size} bytes, but {known.ReferencedBy} says {known.Descriptor.Size}");
                }

                if (kind < known.Kind)
                {
                    kinds[d.Digest] = (d, kind, referencedBy);
                }

                return;
            }

            kinds[d.Digest] = (d, kind, referencedBy);
        }

        // Breadth-first from the roots (the one graph definition decides what a child is); each level sorted by digest.
        foreach (var root in roots)
        {
            Note(root, Kind.Manifest, $"index.json ('{root.RefName}')");
        }

        var levels = ImageGraph.ManifestLevels(
            roots,
            d => documents[d.Digest],
            level => level.OrderBy(d => d.Digest.ToString(), StringComparer.Ordinal));
        foreach (var level in levels)
        {
            foreach (var descriptor in level)
            {
                var referencedBy = kinds[descriptor.Digest].ReferencedBy;
                byte[] bytes;
                if (planned is not null && planned.TryGetValue(descriptor.Digest, out var known))
                {
                    // Verified when fetched; held against this descriptor's size (the digest is the dictionary's key).
                    if (known.Length != descriptor.Size)
                    {
                        throw new IntegrityException($"{layout.DisplayName}: manifest {descriptor.Digest} is {known.Length} bytes, but {referencedBy} says {descriptor.Size}");
                    }

                    bytes = known;
                }
                else
                {
                    RequirePresent(layout, descriptor, referencedBy);
                    bytes = await ManifestReader.ReadBytesAsync(layout, descriptor, layout.DisplayName, ct).ConfigureAwait(false);
                }

                var doc = ManifestDocument.Parse(bytes, descriptor.MediaType, $"{layout.DisplayName}@{descriptor.Digest}");
                manifests.Add((descriptor, bytes));
                documents[descriptor.Digest] = doc;
                foreach (var edge in ImageGraph.Dependencies(doc))
                {
                    Note(edge.Descriptor, KindOf(edge.Kind), $"manifest {descriptor.Digest}");
                }
            }
        }

        // Every manifest noted was reached through a manifest edge, so the levels above read it.
        var configs = kinds.Values.Where(k => k.Kind == Kind.Config).Select(k => (k.Descriptor, k.ReferencedBy)).ToList();
        var layers = kinds.Values.Where(k => k.Kind == Kind.Layer).Select(k => (k.Descriptor, k.ReferencedBy)).ToList();
        foreach (var (d, referencedBy) in configs.Concat(layers))
        {
            // Planned ahead of the pull: what is not stored yet is awaited by the writer (and checked then).
            if (planned is null || File.Exists(layout.BlobPath(d.Digest)))
            {
                RequirePresent(layout, d, referencedBy);
            }
        }

        return new BundleGraph
        {
            Roots = roots,
            Manifests = manifests,
            Configs = configs.Select(c => c.Descriptor).OrderBy(d => d.Digest.ToString(), StringComparer.Ordinal).ToList(),
            Layers = layers.Select(c => c.Descriptor).OrderBy(d => d.Digest.ToString(), StringComparer.Ordinal).ToList(),
            Documents = documents,
        };
    }

    /// <summary>Digests (with sizes) of everything reachable from <paramref name="root"/>, the root included.</summary>
    public Dictionary<Digest, long> Reachable(Descriptor root) =>
        ImageGraph.Reachable(root, Documents).ToDictionary(p => p.Key, p => p.Value.Size);

    /// <summary>Platforms of an image: its index's child platforms, or the platform of a single manifest.</summary>
    /// <param name="stored">When the layout is still being filled: awaits the config before it is read.</param>
    public async Task<IReadOnlyList<string>> PlatformsAsync(OciLayoutStore layout, Descriptor root, Func<Descriptor, CancellationToken, Task>? stored, CancellationToken ct)
    {
        var doc = Documents[root.Digest];
        if (doc.IsIndex)
        {
            return doc.Manifests
                .Select(m => m.Platform)
                .Where(p => p is not null && !(p.Os == "unknown" && p.Architecture == "unknown"))
                .Select(p => p!.ToString())
                .Distinct(StringComparer.Ordinal)
                .ToList();
        }

        if (root.Platform is not null)
        {
            return [root.Platform.ToString()];
        }

        var config = doc.Config;
        if (config is null || config.MediaType is not (MediaTypes.OciConfig or MediaTypes.DockerConfig) || config.Size > ManifestDocument.MaxManifestBytes)
        {
            return [];
        }

        if (stored is not null)
        {
            await stored(config, ct).ConfigureAwait(false);
        }

        var bytes = await ManifestReader.ReadBytesAsync(layout, config, layout.DisplayName, ct).ConfigureAwait(false);
        try
        {
            using var json = JsonDocument.Parse(bytes);
            var r = json.RootElement;
            if (r.ValueKind == JsonValueKind.Object
                && r.TryGetProperty("os", out var os) && os.ValueKind == JsonValueKind.String
                && r.TryGetProperty("architecture", out var arch) && arch.ValueKind == JsonValueKind.String)
            {
                var variant = r.TryGetProperty("variant", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
                var platform = new Platform { Os = os.GetString()!, Architecture = arch.GetString()!, Variant = string.IsNullOrEmpty(variant) ? null : variant };
                return [platform.ToString()];
            }
        }
        catch (JsonException)
        {
        }

        return [];
    }

    private static void RequirePresent(OciLayoutStore layout, Descriptor d, string referencedBy)
    {
        var info = new FileInfo(layout.BlobPath(d.Digest));
        if (!info.Exists)
        {
            throw new InputException($"{layout.DisplayName} is incomplete: blob {d.Digest} ({d.MediaType}, referenced by {referencedBy}) is missing");
        }

        if (info.Length != d.Size)
        {
            throw new IntegrityException(
                $"{layout.DisplayName}: blob {d.Digest} is {info.Length} bytes on disk, but {referencedBy} says {d.Size} (corrupt cache entry)");
        }
    }

    private static Kind KindOf(EdgeKind edge) => edge switch
    {
        EdgeKind.Manifest or EdgeKind.Subject => Kind.Manifest,
        EdgeKind.Layer => Kind.Layer,
        _ => Kind.Config,
    };

    /// <summary>Group of a blob; lower sorts first and wins when a blob is referenced in several roles.</summary>
    private enum Kind
    {
        Manifest = 0,
        Config = 1,
        Layer = 2,
    }
}
