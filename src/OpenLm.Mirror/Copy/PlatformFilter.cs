using System.Text.Json;
using System.Text.Json.Nodes;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Copy;

/// <summary>The <c>--platform</c> rule, shared by copy, resolve and export so they agree on the resulting digest.</summary>
public static class PlatformFilter
{
    // Written literally (no \u002B for '+'), as skopeo, crane and the image spec examples do.
    private static readonly JsonSerializerOptions FilteredIndexJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Keeps only the requested platforms of an index. Nothing filtered: the exact original bytes.</summary>
    public static (Descriptor Descriptor, byte[] Bytes, ManifestDocument Document, IReadOnlyList<Platform> Kept) Apply(Descriptor descriptor, byte[] bytes, ManifestDocument doc, IReadOnlyList<Platform> platforms, string source)
    {
        if (!doc.IsIndex)
        {
            return (descriptor, bytes, doc, []);
        }

        var all = doc.Manifests.Where(m => m.Platform is not null).Select(m => m.Platform!).ToList();
        if (platforms.Count == 0)
        {
            return (descriptor, bytes, doc, all);
        }

        var keep = doc.Manifests.Select((m, i) => (m, i)).Where(x => platforms.Any(p => p.Matches(x.m.Platform))).Select(x => x.i).ToHashSet();
        if (keep.Count == 0)
        {
            throw new NotFoundException(
                $"{source}: no manifest for platform {string.Join(", ", platforms)} (available: {(all.Count == 0 ? "none declared" : string.Join(", ", all.Distinct()))})");
        }

        var kept = doc.Manifests.Where((_, i) => keep.Contains(i)).Select(m => m.Platform!).ToList();
        if (keep.Count == doc.Manifests.Count)
        {
            return (descriptor, bytes, doc, kept);
        }

        // Rewrite only the manifests array; every other field of the index is kept as it was.
        var node = JsonNode.Parse(bytes)!.AsObject();
        var original = node["manifests"]!.AsArray();
        var filtered = new JsonArray();
        for (var i = 0; i < original.Count; i++)
        {
            if (keep.Contains(i))
            {
                filtered.Add(original[i]!.DeepClone());
            }
        }

        node["manifests"] = filtered;
        var newBytes = JsonSerializer.SerializeToUtf8Bytes(node, FilteredIndexJson);
        var newDescriptor = Descriptor.For(doc.MediaType, newBytes);
        var newDoc = ManifestDocument.Parse(newBytes, doc.MediaType, source);
        return (newDescriptor, newBytes, newDoc, kept);
    }
}
