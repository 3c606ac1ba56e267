using System.CommandLine;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Registry.Kinds;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>
/// What the air-gapped commands that work from a bundle's head share: the BUNDLE argument, the target
/// (<c>--to HOST[:PORT][/PREFIX]</c>), the release key (<c>--key</c>) and the naming rules (<c>--map FROM=TO</c>).
/// </summary>
internal sealed class BundleTargetOptions
{
    /// <param name="targetRequired">False for a command that can also work without a registry (values --no-registry).</param>
    public BundleTargetOptions(bool targetRequired = true) => To.Required = targetRequired;

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

    public Option<int?> MaxPath { get; } = MaxPathComponentsOption();

    /// <summary><c>--max-path-components N</c>: the same option for import and the commands that follow it.</summary>
    public static Option<int?> MaxPathComponentsOption() => new("--max-path-components")
    {
        HelpName = "N",
        Description = "Flatten target repositories deeper than N path components, joining the rest with '-' (openlm/library/mongo -> openlm/library-mongo); default: docker.io 2, registry.gitlab.com the prefix + 2, else no limit. Use the same value as the import.",
    };

    /// <summary><c>--registry-kind</c>: the same override for import and check (the probe and pre-check read it).</summary>
    public static Option<string> RegistryKindOption()
    {
        var kind = new Option<string>("--registry-kind")
        {
            HelpName = string.Join('|', RegistryKinds.Names),
            Description = "What the target registry is (default auto: from its host name, headers and Harbor's API); decides what is checked before pushing",
            DefaultValueFactory = _ => "auto",
        };
        kind.Validators.Add(r =>
        {
            if (!RegistryKinds.TryParse(r.GetValueOrDefault<string>(), out _))
            {
                r.AddError($"--registry-kind must be one of {string.Join(", ", RegistryKinds.Names)} (got '{r.GetValueOrDefault<string>()}')");
            }
        });
        return kind;
    }

    public static RegistryKind ParseKind(string? text) => RegistryKinds.TryParse(text, out var parsed) ? parsed : RegistryKind.Auto;

    public void AddTo(Command command)
    {
        command.Arguments.Add(Bundle);
        command.Options.Add(To);
        command.Options.Add(Key);
        command.Options.Add(Map);
        command.Options.Add(MaxPath);
    }

    public string BundlePath(ParseResult parse) => parse.GetValue(Bundle)!;

    public string Target(ParseResult parse) => parse.GetValue(To)!;

    /// <summary>The <c>--to</c> value, or null when it was not given (only where it is optional).</summary>
    public string? OptionalTarget(ParseResult parse) => parse.GetValue(To);

    public IReadOnlyList<string> Maps(ParseResult parse) => parse.GetValue(Map) ?? [];

    public int? MaxPathComponents(ParseResult parse) => parse.GetValue(MaxPath);

    /// <summary>The release key given with <c>--key</c>, or null.</summary>
    public VerificationKey? LoadKey(ParseResult parse) => parse.GetValue(Key) is { } path ? VerificationKey.Load(path) : null;

    /// <summary>Reads and checks the bundle head (with <c>--key</c> the signature must verify) and maps every root.</summary>
    public async Task<AirGapBundle> OpenAsync(ParseResult parse, IMirrorLog log, CancellationToken cancellationToken)
    {
        using var key = LoadKey(parse);
        return await AirGapBundle.OpenAsync(BundlePath(parse), Target(parse), Maps(parse), key, log, cancellationToken, MaxPathComponents(parse)).ConfigureAwait(false);
    }
}
