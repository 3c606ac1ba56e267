using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Registry;

/// <summary>One pull-through mirror: images of <see cref="Source"/> are fetched from <see cref="Host"/>, under <see cref="Prefix"/>.</summary>
/// <param name="Source">The registry as written in references, e.g. <c>public.ecr.aws</c>.</param>
/// <param name="Host">The mirror registry, e.g. <c>mirror.corp:5000</c>.</param>
/// <param name="Prefix">A repository prefix on the mirror (e.g. <c>ecr-cache</c>), or empty.</param>
public sealed record RegistryMirror(string Source, string Host, string Prefix)
{
    /// <summary>Where <paramref name="reference"/> (of <see cref="Source"/>) is fetched from on this mirror.</summary>
    public Reference Locate(Reference reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return reference.WithRepository(Host, Prefix.Length == 0 ? reference.Repository : Prefix + "/" + reference.Repository);
    }

    /// <summary>The mirror as a registry and repository prefix, e.g. <c>mirror.corp:5000/ecr-cache</c>.</summary>
    public string Location => Host + (Prefix.Length == 0 ? string.Empty : "/" + Prefix);

    /// <summary>The error for content from this mirror that is not what <paramref name="image"/> (canonical name) pins.</summary>
    public IntegrityException Mismatch(string image, Exception inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        return new IntegrityException($"{image}: the registry mirror {Location} served content other than the digest pinned for it, refused: {inner.Message}", inner);
    }

    public override string ToString() => $"{Source}={Location}";
}

/// <summary>
/// Pull-through mirrors by source registry (rules <c>SOURCE=MIRROR[/prefix]</c>, e.g.
/// <c>public.ecr.aws=mirror.corp:5000/ecr-cache</c>). Only where images are fetched from changes: references, the lock
/// and the bundle keep the source registry's names, and every digest is verified as for a direct pull.
/// </summary>
public sealed class RegistryMirrors
{
    private readonly Dictionary<string, RegistryMirror> _bySource;

    private RegistryMirrors(Dictionary<string, RegistryMirror> bySource) => _bySource = bySource;

    public static RegistryMirrors None { get; } = new(new Dictionary<string, RegistryMirror>(StringComparer.OrdinalIgnoreCase));

    public IReadOnlyCollection<RegistryMirror> All => _bySource.Values;

    /// <summary>Parses rules; <paramref name="where"/> names their origin in messages (e.g. "the registry mirror rule").</summary>
    public static RegistryMirrors Parse(IEnumerable<string> rules, string where, Setting setting = Setting.None)
    {
        ArgumentNullException.ThrowIfNull(rules);
        var bySource = new Dictionary<string, RegistryMirror>(StringComparer.OrdinalIgnoreCase);
        foreach (var rule in rules)
        {
            var mirror = ParseRule(rule, where, setting);
            if (!bySource.TryAdd(mirror.Source, mirror))
            {
                throw new InputException($"{where} '{rule}': {mirror.Source} already has the mirror {bySource[mirror.Source]}; give one mirror per source registry") { Setting = setting };
            }
        }

        return new RegistryMirrors(bySource);
    }

    /// <summary>These mirrors, plus those of <paramref name="defaults"/> for source registries these do not name.</summary>
    public RegistryMirrors WithDefaults(RegistryMirrors defaults)
    {
        ArgumentNullException.ThrowIfNull(defaults);
        var merged = new Dictionary<string, RegistryMirror>(_bySource, StringComparer.OrdinalIgnoreCase);
        foreach (var mirror in defaults.All)
        {
            merged.TryAdd(mirror.Source, mirror);
        }

        return new RegistryMirrors(merged);
    }

    /// <summary>The mirror for <paramref name="registry"/>, or null to fetch from the registry itself.</summary>
    public RegistryMirror? For(string registry) => _bySource.GetValueOrDefault(registry);

    private static RegistryMirror ParseRule(string rule, string where, Setting setting)
    {
        var equals = rule.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0 || equals == rule.Length - 1)
        {
            throw new InputException($"{where} '{rule}' is not SOURCE=MIRROR[/prefix] (e.g. public.ecr.aws=mirror.corp:5000/ecr-cache)") { Setting = setting };
        }

        var source = rule[..equals].Trim();
        var target = rule[(equals + 1)..].Trim().TrimEnd('/');
        if (!Reference.TryParse(source + "/x", out var sourceProbe, out _) || sourceProbe.Registry != source || source.Contains('/', StringComparison.Ordinal))
        {
            throw new InputException($"{where} '{rule}': '{source}' is not a registry host (e.g. public.ecr.aws or registry.corp:5000)") { Setting = setting };
        }

        var slash = target.IndexOf('/', StringComparison.Ordinal);
        var host = slash < 0 ? target : target[..slash];
        var prefix = slash < 0 ? string.Empty : target[(slash + 1)..];
        if (!Reference.TryParse(target + "/x", out var probe, out var error) || probe.Registry != host || probe.Tag != Reference.DefaultTag || probe.Digest is not null)
        {
            throw new InputException($"{where} '{rule}': '{target}' is not a mirror registry with an optional repository prefix (e.g. mirror.corp:5000/ecr-cache){(probe is null ? ": " + error : string.Empty)}") { Setting = setting };
        }

        if (string.Equals(host, source, StringComparison.OrdinalIgnoreCase) && prefix.Length == 0)
        {
            throw new InputException($"{where} '{rule}': a registry cannot be its own mirror") { Setting = setting };
        }

        return new RegistryMirror(source, host, prefix);
    }
}
