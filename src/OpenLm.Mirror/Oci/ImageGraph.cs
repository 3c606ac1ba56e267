namespace OpenLm.Mirror.Oci;

/// <summary>What a node of an image graph is to its parent.</summary>
public enum EdgeKind
{
    /// <summary>A manifest or index listed by an index (<c>manifests[]</c> with a manifest media type).</summary>
    Manifest,

    /// <summary>Any other entry of an index's <c>manifests[]</c> (an artifact blob): stored and checked as a blob.</summary>
    IndexBlob,

    /// <summary>An image manifest's <c>config</c>.</summary>
    Config,

    /// <summary>An image manifest's <c>layers[]</c> entry.</summary>
    Layer,

    /// <summary>
    /// The manifest this one refers to (<c>subject</c>, OCI 1.1 referrers). Not a content dependency: a registry
    /// accepts a referrer whose subject it does not hold, so copies and bundles never require it.
    /// </summary>
    Subject,
}

/// <summary>One edge of an image graph: the child's descriptor and what it is to its parent.</summary>
public readonly record struct GraphEdge(Descriptor Descriptor, EdgeKind Kind)
{
    /// <summary>True when the child is itself a manifest or index, whose own children follow.</summary>
    public bool IsManifest => Kind is EdgeKind.Manifest or EdgeKind.Subject;

    /// <summary>True when the child must be stored before its parent can be (every kind but <see cref="EdgeKind.Subject"/>).</summary>
    public bool IsDependency => Kind is not EdgeKind.Subject;
}

/// <summary>
/// The single definition of an image graph's shape, used by every walk (copy, bundle writing and reading, import,
/// check, load, serve): an index's children are its <c>manifests[]</c> (manifest-typed entries as manifests, any other
/// entry as a blob), an image manifest's are its config and layers; <c>subject</c> is an edge but not a dependency.
/// The walks here work over manifests already in memory (a bundle); registry walks fetch each manifest and ask
/// <see cref="Dependencies"/> for its children.
/// </summary>
public static class ImageGraph
{
    /// <summary>Every edge out of <paramref name="document"/>, dependencies first, then the subject (if any).</summary>
    public static IReadOnlyList<GraphEdge> Edges(ManifestDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        var edges = new List<GraphEdge>(document.Manifests.Count + document.Layers.Count + 2);
        if (document.IsIndex)
        {
            foreach (var child in document.Manifests)
            {
                edges.Add(new GraphEdge(child, MediaTypes.IsManifest(child.MediaType) ? EdgeKind.Manifest : EdgeKind.IndexBlob));
            }
        }
        else
        {
            if (document.Config is { } config)
            {
                edges.Add(new GraphEdge(config, EdgeKind.Config));
            }

            foreach (var layer in document.Layers)
            {
                edges.Add(new GraphEdge(layer, EdgeKind.Layer));
            }
        }

        if (document.Subject is { } subject)
        {
            edges.Add(new GraphEdge(subject, EdgeKind.Subject));
        }

        return edges;
    }

    /// <summary>The children that must be stored before <paramref name="document"/> (everything but the subject).</summary>
    public static IEnumerable<GraphEdge> Dependencies(ManifestDocument document) => Edges(document).Where(e => e.IsDependency);

    /// <summary>
    /// Every manifest and index reachable from <paramref name="roots"/> through dependencies, children before parents
    /// (the order a registry accepts them in), each once. Iterative, so hostile nesting cannot overflow the stack.
    /// Manifests absent from <paramref name="documents"/> are listed as leaves.
    /// </summary>
    public static IReadOnlyList<Descriptor> ManifestsChildrenFirst(IEnumerable<Descriptor> roots, IReadOnlyDictionary<Digest, ManifestDocument> documents)
    {
        var order = new List<Descriptor>();
        var done = new HashSet<Digest>();
        foreach (var root in roots)
        {
            if (!done.Add(root.Digest))
            {
                continue;
            }

            var stack = new Stack<(Descriptor Node, int Next)>();
            stack.Push((root, 0));
            while (stack.Count > 0)
            {
                var (node, next) = stack.Pop();
                var children = ManifestChildren(node, documents);
                if (next < children.Count)
                {
                    stack.Push((node, next + 1));
                    if (done.Add(children[next].Digest))
                    {
                        stack.Push((children[next], 0));
                    }

                    continue;
                }

                order.Add(node);
            }
        }

        return order;
    }

    /// <summary>
    /// Manifests level by level from <paramref name="roots"/> (parents first, breadth-first): each level's nodes in the
    /// order <paramref name="orderLevel"/> gives them, each manifest once, at the first level that reaches it.
    /// </summary>
    public static IEnumerable<IReadOnlyList<Descriptor>> ManifestLevels(
        IEnumerable<Descriptor> roots,
        Func<Descriptor, ManifestDocument> document,
        Func<IEnumerable<Descriptor>, IEnumerable<Descriptor>> orderLevel)
    {
        var queued = new HashSet<Digest>();
        var level = orderLevel(roots.Where(r => queued.Add(r.Digest))).ToList();
        while (level.Count > 0)
        {
            yield return level;
            var next = new List<Descriptor>();
            foreach (var node in level)
            {
                next.AddRange(Dependencies(document(node)).Where(e => e.IsManifest && queued.Add(e.Descriptor.Digest)).Select(e => e.Descriptor));
            }

            level = orderLevel(next).ToList();
        }
    }

    /// <summary>Everything reachable from <paramref name="root"/> through dependencies, the root included, each digest once.</summary>
    public static IReadOnlyDictionary<Digest, Descriptor> Reachable(Descriptor root, IReadOnlyDictionary<Digest, ManifestDocument> documents)
    {
        var seen = new Dictionary<Digest, Descriptor>();
        var stack = new Stack<Descriptor>();
        stack.Push(root);
        while (stack.Count > 0)
        {
            var node = stack.Pop();
            if (!seen.TryAdd(node.Digest, node))
            {
                continue;
            }

            if (MediaTypes.IsManifest(node.MediaType) && documents.TryGetValue(node.Digest, out var document))
            {
                foreach (var edge in Dependencies(document))
                {
                    stack.Push(edge.Descriptor);
                }
            }
        }

        return seen;
    }

    private static List<Descriptor> ManifestChildren(Descriptor node, IReadOnlyDictionary<Digest, ManifestDocument> documents) =>
        documents.TryGetValue(node.Digest, out var document)
            ? Dependencies(document).Where(e => e.IsManifest).Select(e => e.Descriptor).ToList()
            : [];
}
