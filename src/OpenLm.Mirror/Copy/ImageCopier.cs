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
                var store = OciLayoutStore.Open(layout.Directory, create: false);
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
                    var byDigest = await new GraphCopier(options).CopyAsync(sourceTarget, sourceReference, target, null, cancellationToken).ConfigureAwait(false);
                    if (byDigest.Root.Digest != pinned)
                    {
                        throw new IntegrityException($"destination {registry.Reference} names digest {pinned}, but the copied image is {byDigest.Root.Digest}");
                    }

                    return byDigest;
                }

                targetTag = registry.ExplicitTagOrDigest ? registry.Reference.Tag : sourceTag ?? registry.Reference.Tag;
                break;
            case LayoutLocation layout:
                target = OciLayoutStore.Open(layout.Directory, create: true);
                targetTag = layout.RefName ?? defaultRefName;
                break;
            default:
                throw new InputException($"unsupported destination {destination}");
        }

        return await new GraphCopier(options).CopyAsync(sourceTarget, sourceReference, target, targetTag, cancellationToken).ConfigureAwait(false);
    }

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
