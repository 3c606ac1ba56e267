using System.Text;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.AirGap;

/// <summary>One image and the name it has in the air-gapped registry.</summary>
public sealed record ImageMapping(Reference Source, Reference Target);

/// <summary>
/// The import naming rule: where each source image lives in the air-gapped registry.
/// <list type="number">
/// <item>A user rule <c>FROM=TO</c> whose FROM matches the image's <c>registry/repository</c> at a path-component
/// boundary: the matched part is replaced by <c>TARGET/TO</c>. The longest matching FROM wins; a user rule beats the
/// platform rule on an equal FROM.</item>
/// <item>The platform source (<c>public.ecr.aws/r3q3q2f4</c>) behaves as the rule <c>public.ecr.aws/r3q3q2f4=</c>:
/// <c>public.ecr.aws/r3q3q2f4/olm-server:1.2</c> becomes <c>TARGET/olm-server:1.2</c>.</item>
/// <item>Any other image keeps its repository path without the registry host:
/// <c>docker.io/library/mongo:7</c> becomes <c>TARGET/library/mongo:7</c>.</item>
/// </list>
/// Tags are kept. An image with a digest but no tag gets the tag <see cref="DigestTag"/>
/// (<c>openlm-sha256-&lt;first 32 hex&gt;</c>), which can never be read as an OCI referrers fallback tag
/// (<c>sha256-&lt;64 hex&gt;</c>). The digest, when known, is kept on the target reference.
/// </summary>
public sealed class TargetNameMapper
{
    /// <summary>Where the OpenLM platform images are published.</summary>
    public const string DefaultPlatformSource = "public.ecr.aws/r3q3q2f4";

    /// <summary>The prefix of the tag given to digest-only images.</summary>
    public const string DigestTagPrefix = "openlm-";

    /// <summary>How many hex characters of the digest the digest tag keeps (128 bits).</summary>
    public const int DigestTagHexLength = 32;

    private readonly NameMapRule _platformRule;

    /// <param name="maxPathComponents">Most path components a target repository may have (null: the host's own
    /// limit, see <see cref="AutoMaxPathComponents"/>); deeper names are flattened, see <see cref="Flatten"/>.</param>
    public TargetNameMapper(MirrorTarget target, string platformSource = DefaultPlatformSource, IEnumerable<NameMapRule>? rules = null, int? maxPathComponents = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(platformSource);
        Target = target;
        if (maxPathComponents is < 1)
        {
            throw new InputException($"the most path components a target repository may have must be at least 1 (got {maxPathComponents})") { Setting = Setting.MaxPathComponents };
        }

        MaxPathComponents = maxPathComponents ?? AutoMaxPathComponents(target);
        var prefixComponents = target.Prefix.Length == 0 ? 0 : target.Prefix.Split('/').Length;
        if (MaxPathComponents is { } max && prefixComponents >= max)
        {
            throw new InputException($"the target prefix '{target.Prefix}' has {prefixComponents} path components, but {target.Host} takes repositories of at most {max}: no image name would fit under it; use a shorter prefix")
            {
                Setting = Setting.Target,
                Subject = target.ToString(),
            };
        }

        PlatformSource = NameMapRule.ParseFrom(platformSource, what => $"invalid platform source: '{platformSource}' {what}");
        _platformRule = NameMapRule.Implicit(PlatformSource, string.Empty);

        var list = new List<NameMapRule>();
        foreach (var rule in rules ?? [])
        {
            ArgumentNullException.ThrowIfNull(rule);
            var duplicate = list.FirstOrDefault(r => r.From == rule.From);
            if (duplicate is not null)
            {
                throw new InputException($"name-mapping rules '{duplicate}' and '{rule}' both map '{rule.From}'; give each FROM once")
                {
                    Setting = Setting.NameMap,
                    Subject = rule.ToString(),
                };
            }

            list.Add(rule);
        }

        Rules = list;
    }

    /// <summary>Parses the target and the <c>FROM=TO</c> rule texts, then builds the mapper.</summary>
    public static TargetNameMapper Create(string target, IEnumerable<string>? maps = null, string platformSource = DefaultPlatformSource, int? maxPathComponents = null) =>
        new(MirrorTarget.Parse(target), platformSource, (maps ?? []).Select(NameMapRule.Parse).ToList(), maxPathComponents);

    public MirrorTarget Target { get; }

    /// <summary>Most path components a target repository has after flattening; null: no limit.</summary>
    public int? MaxPathComponents { get; }

    /// <summary>
    /// The depth limit a known registry host sets by itself: GitLab.com (<c>registry.gitlab.com</c>) takes the project
    /// path plus 2 levels, the project path being the target prefix. Other hosts: no limit (Docker Hub, limited to 2,
    /// is refused as a target by <see cref="MirrorTarget"/>; the pre-check enforces a registry kind's limit).
    /// </summary>
    public static int? AutoMaxPathComponents(MirrorTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        var host = target.Host.ToLowerInvariant();
        return host switch
        {
            "registry.gitlab.com" when target.Prefix.Length > 0 => target.Prefix.Split('/').Length + 2,
            _ => null,
        };
    }

    /// <summary>
    /// Joins the components past the <paramref name="max"/>th-but-one with <c>-</c>, so the name has at most
    /// <paramref name="max"/> components: <c>openlm/library/mongo</c> with 2 becomes <c>openlm/library-mongo</c>.
    /// Deterministic; names that already fit are returned unchanged.
    /// </summary>
    public static string Flatten(string repository, int max)
    {
        ArgumentNullException.ThrowIfNull(repository);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        var parts = repository.Split('/');
        return parts.Length <= max ? repository : string.Join('/', parts[..(max - 1)].Append(string.Join('-', parts[(max - 1)..])));
    }

    /// <summary>The normalised platform source (<c>registry/namespace</c>).</summary>
    public string PlatformSource { get; }

    /// <summary>The user's rules in the order given.</summary>
    public IReadOnlyList<NameMapRule> Rules { get; }

    /// <summary>The tag a digest-only image gets: <c>openlm-&lt;algorithm&gt;-&lt;first 32 hex&gt;</c>.</summary>
    public static string DigestTag(Digest digest)
    {
        if (digest.IsEmpty)
        {
            throw new ArgumentException("digest is empty", nameof(digest));
        }

        return $"{DigestTagPrefix}{digest.Algorithm}-{digest.Hex[..DigestTagHexLength]}";
    }

    /// <summary>The rule that decides <paramref name="source"/>'s name (a user rule, the platform rule or the registry fallback).</summary>
    public NameMapRule RuleFor(Reference source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var name = source.Name;
        NameMapRule? best = null;
        foreach (var rule in Rules.Append(_platformRule))
        {
            if (NamePaths.IsUnder(name, rule.From) && (best is null || rule.From.Length > best.From.Length))
            {
                best = rule;
            }
        }

        return best ?? NameMapRule.Implicit(source.Registry, string.Empty);
    }

    /// <summary>The repository <paramref name="source"/> gets in the target registry (with the target prefix).</summary>
    public string TargetRepository(Reference source)
    {
        var rule = RuleFor(source);
        var rest = source.Name.Length == rule.From.Length ? string.Empty : source.Name[(rule.From.Length + 1)..];
        var repository = NamePaths.Join(Target.Prefix, rule.To, rest);
        if (MaxPathComponents is { } max)
        {
            repository = Flatten(repository, max);
        }

        if (repository.Length == 0)
        {
            throw new InputException(
                $"'{source}' would map to an empty repository name in {Target} (rule {Describe(rule)}); " +
                "give the rule a TO path or give the target a prefix")
            {
                Remedy = Remedy.NameMapRule,
                Subject = source.ToString(),
            };
        }

        return repository;
    }

    /// <summary>The target name for one image; see the class summary for the rules.</summary>
    public Reference Map(Reference source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var repository = TargetRepository(source);
        var tag = source.Tag ?? DigestTag(source.Digest ?? throw new ArgumentException($"'{source}' has neither tag nor digest", nameof(source)));
        var text = $"{Target.Host}/{repository}:{tag}{(source.Digest is { } d ? "@" + d : string.Empty)}";
        if (!Reference.TryParse(text, out var target, out var error))
        {
            throw new InputException($"'{source}' cannot be mapped into {Target}: {error}");
        }

        if (target.Registry != Target.Host || target.Repository != repository)
        {
            throw new InputException($"'{source}' cannot be mapped into {Target}: '{text}' would be read as '{target}'");
        }

        return target;
    }

    /// <summary>
    /// Maps every image (duplicates are reported once, in first-seen order) and refuses, with one
    /// <see cref="InputException"/> listing every collision, when different source images would get the same target
    /// <c>repository:tag</c>. Two references are the same image when they have the same name and tag and do not
    /// disagree on the digest.
    /// </summary>
    public IReadOnlyList<ImageMapping> MapAll(IEnumerable<Reference> sources)
    {
        ArgumentNullException.ThrowIfNull(sources);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var mappings = new List<ImageMapping>();
        foreach (var source in sources)
        {
            if (seen.Add(source.ToString()))
            {
                mappings.Add(new ImageMapping(source, Map(source)));
            }
        }

        var collisions = new StringBuilder();
        var count = 0;
        foreach (var group in mappings.GroupBy(m => $"{m.Target.Name}:{m.Target.Tag}", StringComparer.Ordinal))
        {
            var members = group.ToList();
            var conflicting = members
                .Where(a => members.Any(b => !ReferenceEquals(a, b) && !SameImage(a.Source, b.Source)))
                .Select(m => m.Source.ToString())
                .ToList();
            if (conflicting.Count > 0)
            {
                count++;
                collisions.Append($"\n  {group.Key} <- {string.Join(", ", conflicting)}");
            }
        }

        if (count > 0)
        {
            throw new InputException(
                $"{count} target name collision{(count == 1 ? string.Empty : "s")} in {Target}: different images would be stored under one name:" +
                $"{collisions}\n{(MaxPathComponents is { } max ? $"(names are flattened to at most {max} path components, joining the rest with '-') " : string.Empty)}Add name-mapping rules to give them distinct names.")
            {
                Remedy = Remedy.NameMapRule,
            };
        }

        return mappings;
    }

    private static bool SameImage(Reference a, Reference b) =>
        a.Name == b.Name && a.Tag == b.Tag && (a.Digest is null || b.Digest is null || a.Digest == b.Digest);

    private static string Describe(NameMapRule rule) =>
        rule.IsUserRule ? $"'{rule}'" : $"'{rule.From}' -> target";
}
