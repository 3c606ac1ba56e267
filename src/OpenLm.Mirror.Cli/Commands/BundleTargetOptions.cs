using System.CommandLine;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>
/// What the air-gapped commands that work from a bundle's head share: the BUNDLE argument, the target
/// (<c>--to HOST[:PORT][/PREFIX]</c>), the release key (<c>--key</c>) and the naming rules (<c>--map FROM=TO</c>).
/// </summary>
internal sealed class BundleTargetOptions
{
    public Argument<string> Bundle { get; } = new("BUNDLE") { Description = "The bundle (.tar or .tar.zst) the images were imported from" };

    public Option<string> To { get; } = new("--to")
    {
        HelpName = "HOST[:PORT][/PREFIX]",
        Description = "The air-gapped registry the bundle was imported into, e.g. registry.corp:5000/openlm",
        Required = true,
    };

    public Option<string?> Key { get; } = new("--key")
    {
        HelpName = "release.pub",
        Description = "Public key the bundle must be signed with (exit 3 when it is not); without it the signature is not checked",
    };

    public Option<string[]> Map { get; } = new("--map")
    {
        HelpName = "FROM=TO",
        Description = "Store images under FROM (registry[/path]) at TO (a path under the target); repeatable, longest FROM wins. Use the same rules as the import.",
    };

    public void AddTo(Command command)
    {
        command.Arguments.Add(Bundle);
        command.Options.Add(To);
        command.Options.Add(Key);
        command.Options.Add(Map);
    }

    /// <summary>Reads and checks the bundle head: with <c>--key</c> the signature must verify, without one a warning is logged.</summary>
    public async Task<BundleHead> InspectAsync(ParseResult parse, IMirrorLog log, CancellationToken cancellationToken)
    {
        var path = parse.GetValue(Bundle)!;
        var keyPath = parse.GetValue(Key);
        if (keyPath is null)
        {
            var head = await BundleInspector.InspectAsync(path, null, cancellationToken).ConfigureAwait(false);
            log.Warn($"signature not checked: no --key given, so nothing proves '{path}' is the bundle your vendor released");
            return head;
        }

        using var key = VerificationKey.Load(keyPath);
        return await BundleInspector.InspectAsync(path, key, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The naming rule of the import: the bundle's <c>source</c> is the platform source whose namespace is dropped
    /// (as <c>import</c> does).
    /// </summary>
    public TargetNameMapper Mapper(ParseResult parse, BundleManifest manifest) =>
        TargetNameMapper.Create(parse.GetValue(To)!, parse.GetValue(Map) ?? [], manifest.Source);

    /// <summary>Every root of the bundle (images and charts) with the digest the bundle holds for it.</summary>
    public static IReadOnlyList<BundleRoot> Roots(BundleHead head)
    {
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

/// <summary>One <c>index.json</c> entry of a bundle: its source reference, its descriptor, and whether it is a Helm chart.</summary>
internal sealed record BundleRoot(Reference Source, Descriptor Descriptor, bool IsChart);
