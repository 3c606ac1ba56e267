using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.AirGap;

/// <summary>One <c>index.json</c> entry of a bundle: its source reference, its descriptor, and whether it is a Helm chart.</summary>
public sealed record BundleRoot(Reference Source, Descriptor Descriptor, bool IsChart);

/// <summary>
/// What the air-gap workflows that work from a bundle's head alone (values, check) start from: the checked head, the
/// import's naming rule for the target, and every root with the name it has there. Collisions are refused on opening,
/// before anything is written or asked of a registry.
/// </summary>
public sealed record AirGapBundle
{
    public required string Path { get; init; }

    public required BundleHead Head { get; init; }

    /// <summary>The naming rule of the import (the bundle's <c>source</c> is the platform source whose namespace is dropped).</summary>
    public required TargetNameMapper Mapper { get; init; }

    /// <summary>Every root of the bundle (images and charts) with the digest the bundle holds for it.</summary>
    public required IReadOnlyList<BundleRoot> Roots { get; init; }

    /// <summary>The target name of each distinct root, in first-seen order.</summary>
    public required IReadOnlyList<ImageMapping> Mappings { get; init; }

    /// <summary>
    /// Reads the head: with <paramref name="key"/> the signature must verify, without one a warning is logged. Then the
    /// target and rules are parsed and every root is mapped.
    /// </summary>
    public static async Task<AirGapBundle> OpenAsync(
        string path, string target, IEnumerable<string> maps, VerificationKey? key, IMirrorLog log, CancellationToken cancellationToken = default, int? maxPathComponents = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(log);
        var head = await BundleInspector.InspectAsync(path, key, cancellationToken).ConfigureAwait(false);
        if (key is null)
        {
            log.Warn($"signature not checked: no release key given, so nothing proves '{path}' is the bundle your vendor released", Remedy.ReleaseKey);
        }

        var mapper = TargetNameMapper.Create(target, maps, head.Manifest.Source, maxPathComponents);
        var roots = RootsOf(head);

        // Every name the import creates must be distinct; refuse before anything is written.
        var mappings = mapper.MapAll(roots.Select(r => r.Source));
        return new AirGapBundle { Path = path, Head = head, Mapper = mapper, Roots = roots, Mappings = mappings };
    }

    /// <summary>Every root of a bundle head; a chart is a root that <c>openlm-bundle.json</c> lists as one.</summary>
    public static IReadOnlyList<BundleRoot> RootsOf(BundleHead head)
    {
        ArgumentNullException.ThrowIfNull(head);
        var charts = head.Manifest.Charts.Select(c => c.Reference).ToHashSet(StringComparer.Ordinal);
        var roots = new List<BundleRoot>();
        foreach (var descriptor in head.Images)
        {
            var name = descriptor.RefName ?? throw new InputException($"bundle index.json entry {descriptor.Digest} has no ref name");
            if (!Reference.TryParse(name, out var reference, out var error))
            {
                throw new InputException($"bundle image '{name}' is not a valid image reference: {error}");
            }

            roots.Add(new BundleRoot(reference, descriptor, charts.Contains(name)));
        }

        return roots;
    }
}
