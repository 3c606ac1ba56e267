using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Copy;

/// <summary>
/// The facade behind <c>openlm-mirror copy</c>: turns two <see cref="ImageLocation"/>s into targets and
/// runs the graph copy. Ref names default the way the command documents.
/// </summary>
public sealed class ImageCopier(RegistryConnector registries, CopyOptions options)
{
    private readonly GraphCopier _graph = new(options);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<OciLayoutStore>> _layouts = new(StringComparer.Ordinal);

    /// <summary>
    /// Copies many images in one run: they share one graph copier, so a blob shared by several images moves
    /// once and blob concurrency is bounded across all of them. With several sources the destination is an
    /// OCI layout (each image named by its full source reference) or a registry prefix
    /// (<c>host[:port][/prefix]</c>, each image keeping its repository path and tag under it).
    /// </summary>
    public async Task<IReadOnlyList<CopyResult>> CopyManyAsync(IReadOnlyList<ImageLocation> sources, string destination, int parallelImages, CancellationToken cancellationToken = default)
    {
        if (sources.Count == 0)
        {
            throw new InputException("no source images given");
        }

        var destinations = new List<ImageLocation>(sources.Count);
        if (destination.StartsWith(ImageLocation.LayoutPrefix, StringComparison.Ordinal))
        {
            var layout = ImageLocation.Parse(destination, "DST") as LayoutLocation;
            if (layout!.RefName is not null)
            {
                throw new InputException($"DST '{destination}': with several sources the destination is oci:DIR without a ref name (each image is named by its source reference)");
            }

            destinations.AddRange(sources.Select(_ => layout));
        }
        else
        {
            var prefix = RegistryPrefix.Parse(destination, "DST");
            foreach (var source in sources)
            {
                destinations.Add(new RegistryLocation(prefix.Map(SourceReferenceOf(source)), ExplicitTagOrDigest: true));
            }

            var clashes = destinations.Select((d, i) => (Target: d.ToString(), Source: sources[i].ToString()))
                .GroupBy(x => x.Target).Where(g => g.Select(x => x.Source).Distinct().Count() > 1).ToList();
            if (clashes.Count > 0)
            {
                throw new InputException("several sources map to one destination: " + string.Join("; ", clashes.Select(g => $"{g.Key} <- {string.Join(", ", g.Select(x => x.Source).Distinct())}")));
            }
        }

        var results = new CopyResult[sources.Count];
        await Parallel.ForEachAsync(
            Enumerable.Range(0, sources.Count),
            new ParallelOptions { MaxDegreeOfParallelism = parallelImages, CancellationToken = cancellationToken },
            async (i, ct) => results[i] = await CopyAsync(sources[i], destinations[i], ct).ConfigureAwait(false)).ConfigureAwait(false);
        return results;
    }

    public async Task<CopyResult> CopyAsync(ImageLocation source, ImageLocation destination, CancellationToken cancellationToken = default)
    {
        IReadOnlyTarget sourceTarget;
        string sourceReference;
        string? sourceTag;
        string defaultRefName;
        switch (source)
        {
            case RegistryLocation registry:
                sourceTarget = registries.Repository(registry.Reference);
                sourceReference = registry.Reference.TagOrDigest;
                sourceTag = registry.Reference.Tag;
                defaultRefName = registry.Reference.ToString();
                break;
            case LayoutLocation layout:
                var store = Layout(layout.Directory, create: false);
                sourceTarget = store;
                sourceReference = layout.RefName ?? await SingleRefNameAsync(store, cancellationToken).ConfigureAwait(false);
                sourceTag = TagOf(sourceReference);
                defaultRefName = sourceReference;
                break;
            default:
                throw new InputException($"unsupported source {source}");
        }

        if (destination is LayoutLocation destLayout && source is LayoutLocation srcLayout
            && Path.GetFullPath(destLayout.Directory) == Path.GetFullPath(srcLayout.Directory)
            && (destLayout.RefName ?? defaultRefName) == sourceReference)
        {
            throw new InputException($"source and destination are the same image ({source})");
        }

        ITarget target;
        string? targetTag;
        switch (destination)
        {
            case RegistryLocation registry:
                target = registries.Repository(registry.Reference);
                if (registry.Reference.Digest is { } pinned && registry.Reference.Tag is null)
                {
                    // Copy by digest: the result must have that digest, checked after the copy.
                    var byDigest = await _graph.CopyAsync(sourceTarget, sourceReference, target, null, cancellationToken).ConfigureAwait(false);
                    if (byDigest.Root.Digest != pinned)
                    {
                        throw new IntegrityException($"destination {registry.Reference} names digest {pinned}, but the copied image is {byDigest.Root.Digest}");
                    }

                    return byDigest;
                }

                targetTag = registry.ExplicitTagOrDigest ? registry.Reference.Tag : sourceTag ?? registry.Reference.Tag;
                break;
            case LayoutLocation layout:
                target = Layout(layout.Directory, create: true);
                targetTag = layout.RefName ?? defaultRefName;
                break;
            default:
                throw new InputException($"unsupported destination {destination}");
        }

        return await _graph.CopyAsync(sourceTarget, sourceReference, target, targetTag, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One store per layout directory per run, so concurrent image copies share its index lock.</summary>
    private OciLayoutStore Layout(string directory, bool create) =>
        _layouts.GetOrAdd(Path.GetFullPath(directory), path => new Lazy<OciLayoutStore>(() => OciLayoutStore.Open(path, create))).Value;

    /// <summary>The source as a reference, for naming it under a registry prefix.</summary>
    private static Reference SourceReferenceOf(ImageLocation source) => source switch
    {
        RegistryLocation registry => registry.Reference,
        LayoutLocation { RefName: { } name } when Reference.TryParse(name, out var parsed) && name.Contains('/') => parsed,
        LayoutLocation layout => throw new InputException($"{layout}: copying several images to a registry needs layout sources named by full references (oci:DIR:host/path:tag)"),
        _ => throw new InputException($"unsupported source {source}"),
    };

    private static async Task<string> SingleRefNameAsync(OciLayoutStore store, CancellationToken cancellationToken)
    {
        var entries = await store.ReadIndexAsync(cancellationToken).ConfigureAwait(false);
        var names = entries.Select(e => e.RefName).Where(n => n is not null).Distinct().ToList();
        return names.Count switch
        {
            1 => names[0]!,
            0 => throw new InputException($"{store.DisplayName} has no named image; give one as oci:DIR:REF"),
            _ => throw new InputException($"{store.DisplayName} holds {names.Count} images; name one as oci:DIR:REF (e.g. {names[0]})"),
        };
    }

    /// <summary>The tag part of a ref name that is a full reference (<c>host/path:tag</c>), if any.</summary>
    private static string? TagOf(string refName)
    {
        var lastSegment = refName[(refName.LastIndexOf('/') + 1)..];
        if (lastSegment.Contains(':') && Reference.TryParse(refName, out var reference))
        {
            return reference.Tag;
        }

        return Reference.IsValidTag(refName) ? refName : null;
    }
}
