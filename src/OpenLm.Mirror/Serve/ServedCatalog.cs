using System.Text;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Serve;

/// <summary>One bundle root (image or chart) and every <c>repository:tag</c> it answers under.</summary>
/// <param name="Source">Its full source reference (the ref name in the bundle's <c>index.json</c>).</param>
/// <param name="Descriptor">Its root manifest or index.</param>
/// <param name="Names">Every <c>repository:tag</c> it is served as, source names first.</param>
public sealed record ServedImage(Reference Source, Descriptor Descriptor, IReadOnlyList<string> Names);

/// <summary>
/// One repository of the served registry: its tags and everything reachable from the images tagged in it. A blob or
/// manifest is served under a repository only when it is in <see cref="Content"/>, as Distribution scopes blobs to the
/// repositories whose manifests link them.
/// </summary>
public sealed class ServedRepository
{
    private readonly SortedDictionary<string, Descriptor> _tags = new(StringComparer.Ordinal);
    private readonly Dictionary<Digest, Descriptor> _content = [];

    internal ServedRepository(string name) => Name = name;

    /// <summary>The repository path without a registry host, e.g. <c>r3q3q2f4/olm-server</c>.</summary>
    public string Name { get; }

    /// <summary>Tags in lexical (ordinal) order, each with its root descriptor.</summary>
    public IReadOnlyDictionary<string, Descriptor> Tags => _tags;

    /// <summary>Every manifest, index and blob reachable from this repository's tagged roots, by digest.</summary>
    public IReadOnlyDictionary<Digest, Descriptor> Content => _content;

    internal void Add(string tag, Descriptor root, IReadOnlyDictionary<Digest, Descriptor> reachable)
    {
        _tags[tag] = root;
        foreach (var (digest, descriptor) in reachable)
        {
            _content.TryAdd(digest, descriptor);
        }
    }
}

/// <summary>
/// The names a bundle is served under, decided before anything listens. Every root answers under its source
/// repository path without the registry host (<c>public.ecr.aws/r3q3q2f4/olm-server:1.2</c> as
/// <c>r3q3q2f4/olm-server:1.2</c>, <c>docker.io/library/mongo:7</c> as <c>library/mongo:7</c>) and, when a target
/// naming is given, also under the repository path the import would give it (<see cref="TargetNameMapper"/>), so values
/// and node configs written for that target work against the served registry unchanged. A digest-only root gets the
/// import's digest tag (<see cref="TargetNameMapper.DigestTag"/>) under every name. Two roots claiming one
/// <c>repository:tag</c> with different digests are refused, naming both.
/// </summary>
public sealed class ServedCatalog
{
    private readonly SortedDictionary<string, ServedRepository> _repositories;

    private ServedCatalog(SortedDictionary<string, ServedRepository> repositories, IReadOnlyList<ServedImage> images)
    {
        _repositories = repositories;
        Images = images;
    }

    /// <summary>Repositories in lexical (ordinal) order.</summary>
    public IReadOnlyDictionary<string, ServedRepository> Repositories => _repositories;

    /// <summary>The bundle's roots in <c>index.json</c> order, with their served names.</summary>
    public IReadOnlyList<ServedImage> Images { get; }

    /// <summary>
    /// Names every root of a bundle. <paramref name="roots"/> are <c>index.json</c>'s descriptors (each with its ref
    /// name); <paramref name="documents"/> every manifest of the bundle; <paramref name="targetNames"/> the import naming
    /// to answer under as well (null: source names only).
    /// </summary>
    public static ServedCatalog Build(IReadOnlyList<Descriptor> roots, IReadOnlyDictionary<Digest, ManifestDocument> documents, TargetNameMapper? targetNames)
    {
        ArgumentNullException.ThrowIfNull(roots);
        ArgumentNullException.ThrowIfNull(documents);
        var repositories = new SortedDictionary<string, ServedRepository>(StringComparer.Ordinal);
        var claims = new Dictionary<string, List<(Reference Source, Descriptor Root)>>(StringComparer.Ordinal);
        var images = new List<ServedImage>();
        foreach (var root in roots)
        {
            var refName = root.RefName ?? throw new IntegrityException($"bundle index.json entry {root.Digest} has no ref name");
            if (!Reference.TryParse(refName, out var source, out var error))
            {
                throw new InputException($"bundle image '{refName}' is not a valid image reference: {error}");
            }

            var names = NamesOf(source, root, targetNames);
            var reachable = ImageGraph.Reachable(root, documents);
            foreach (var (repository, tag) in names)
            {
                var key = $"{repository}:{tag}";
                if (!claims.TryGetValue(key, out var claimants))
                {
                    claims[key] = claimants = [];
                }

                claimants.Add((source, root));
                if (!repositories.TryGetValue(repository, out var served))
                {
                    repositories[repository] = served = new ServedRepository(repository);
                }

                served.Add(tag, root, reachable);
            }

            images.Add(new ServedImage(source, root, names.Select(n => $"{n.Repository}:{n.Tag}").ToList()));
        }

        RefuseCollisions(claims);
        return new ServedCatalog(repositories, images);
    }

    /// <summary>The source name, then (when different) the import name; both with the same tag rule.</summary>
    private static List<(string Repository, string Tag)> NamesOf(Reference source, Descriptor root, TargetNameMapper? targetNames)
    {
        var names = new List<(string Repository, string Tag)> { (source.Repository, source.Tag ?? TargetNameMapper.DigestTag(root.Digest)) };
        if (targetNames is not null)
        {
            // The import names a digest-only image by the digest its reference carries; the bundle root has that digest.
            var target = targetNames.Map(source.Tag is null ? source.WithDigest(root.Digest) : source);
            var name = (target.Repository, target.Tag!);
            if (!names.Contains(name))
            {
                names.Add(name);
            }
        }

        return names;
    }

    private static void RefuseCollisions(Dictionary<string, List<(Reference Source, Descriptor Root)>> claims)
    {
        var message = new StringBuilder();
        var count = 0;
        foreach (var (name, claimants) in claims.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            if (claimants.Select(c => c.Root.Digest).Distinct().Count() > 1)
            {
                count++;
                message.Append($"\n  {name} <- {string.Join(", ", claimants.Select(c => $"{c.Source} ({c.Root.Digest})"))}");
            }
        }

        if (count > 0)
        {
            throw new InputException(
                $"{count} name collision{(count == 1 ? string.Empty : "s")}: different images would be served under one repository:tag:{message}\n" +
                "Give the target naming rules that keep them apart, or serve them from separate bundles.");
        }
    }
}
