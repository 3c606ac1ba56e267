using System.Globalization;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Yaml;

namespace OpenLm.Mirror.PlatformSpec.ChartSources;

/// <summary>One version of a chart as a Helm repository's <c>index.yaml</c> lists it.</summary>
/// <param name="Urls">The entry's <c>urls</c>, as written (absolute, or relative to the repository URL).</param>
/// <param name="Digest">The entry's <c>digest</c> (sha256 of the .tgz, as Helm writes it: bare hex), when present.</param>
public sealed record HelmIndexEntry(string Name, string Version, IReadOnlyList<string> Urls, Digest? Digest, int Line);

/// <summary>
/// A Helm chart repository index (<c>index.yaml</c>: <c>apiVersion: v1</c>, <c>entries: {name: [{name, version, urls,
/// digest}, …]}</c>), as served at <c>REPO/index.yaml</c>. Only what selecting and downloading a chart needs is read.
/// </summary>
public sealed class HelmRepositoryIndex
{
    /// <summary>Largest index read (large public repositories publish indexes of tens of MiB).</summary>
    public const long MaxIndexBytes = 64L * 1024 * 1024;

    private const int MaxNodes = 40_000_000;

    private readonly Dictionary<string, List<HelmIndexEntry>> _entries;

    private HelmRepositoryIndex(string source, Dictionary<string, List<HelmIndexEntry>> entries)
    {
        Source = source;
        _entries = entries;
    }

    /// <summary>Where the index came from, for messages (its URL).</summary>
    public string Source { get; }

    public IReadOnlyCollection<string> ChartNames => _entries.Keys;

    /// <summary>The versions listed for <paramref name="name"/>, in index order (empty when the chart is unknown).</summary>
    public IReadOnlyList<HelmIndexEntry> Versions(string name) => _entries.TryGetValue(name, out var list) ? list : [];

    /// <summary>Parses index text; <paramref name="source"/> (the index URL) names it in messages.</summary>
    /// <exception cref="InputException">Not YAML, or not shaped like a Helm repository index.</exception>
    public static HelmRepositoryIndex Parse(string text, string source)
    {
        YNode? root;
        try
        {
            root = YamlTree.Parse(text, source, allowMultipleDocuments: false, maxNodes: MaxNodes);
        }
        catch (YamlTreeException ex)
        {
            throw new InputException($"{source} is not a Helm repository index: {ex.Message}", ex);
        }

        if (root is not YMapping top || top.Get("entries") is not { } entriesNode)
        {
            throw new InputException($"{source} is not a Helm repository index: it has no 'entries' mapping");
        }

        var entries = new Dictionary<string, List<HelmIndexEntry>>(StringComparer.Ordinal);
        if (entriesNode is YScalar { IsNull: true })
        {
            return new HelmRepositoryIndex(source, entries);
        }

        if (entriesNode is not YMapping byName)
        {
            throw new InputException(Invariant($"{source}:{entriesNode.Line}: entries: expected a mapping of chart name to versions, got a {entriesNode.KindName}"));
        }

        foreach (var chart in byName.Effective)
        {
            if (chart.KeyText is not { } name || chart.Value is not YSequence versions)
            {
                continue;
            }

            var list = new List<HelmIndexEntry>();
            foreach (var item in versions.Items.OfType<YMapping>())
            {
                if (ReadEntry(item, name, source) is { } entry)
                {
                    list.Add(entry);
                }
            }

            entries[name] = list;
        }

        return new HelmRepositoryIndex(source, entries);
    }

    /// <summary>
    /// The entry for <paramref name="name"/> at exactly <paramref name="version"/>. An unknown chart or version is the
    /// manifest's mistake (exit 2): the message lists what the repository has.
    /// </summary>
    public HelmIndexEntry Select(string name, string version)
    {
        if (!_entries.TryGetValue(name, out var versions) || versions.Count == 0)
        {
            var names = _entries.Keys.Order(StringComparer.Ordinal).ToList();
            var listed = names.Count == 0 ? "it lists no charts"
                : names.Count <= 20 ? "it has: " + string.Join(", ", names)
                : $"it has {names.Count} charts, e.g. " + string.Join(", ", names.Take(20));
            throw new InputException($"chart '{name}' is not in the Helm repository index {Source}; {listed}");
        }

        // Helm matches a version exactly once a constraint names one; a leading 'v' is tolerated either way.
        var match = versions.FirstOrDefault(v => v.Version == version)
            ?? versions.FirstOrDefault(v => v.Version.TrimStart('v') == version.TrimStart('v'));
        if (match is null)
        {
            var available = versions.Select(v => v.Version).Distinct(StringComparer.Ordinal).ToList();
            var shown = available.Count <= 30 ? string.Join(", ", available) : string.Join(", ", available.Take(30)) + $", … ({available.Count} in all)";
            throw new InputException($"chart '{name}' has no version '{version}' in the Helm repository index {Source}; available versions: {shown}");
        }

        if (match.Urls.Count == 0)
        {
            throw new InputException(Invariant($"{Source}:{match.Line}: chart '{name}' {match.Version} lists no download urls"));
        }

        return match;
    }

    /// <summary>
    /// Resolves an entry URL the way Helm does: an absolute URL stands; a relative one is taken relative to the
    /// repository URL (with a trailing slash), which is the directory holding <c>index.yaml</c>.
    /// </summary>
    public static Uri ResolveUrl(Uri repository, string url)
    {
        var text = repository.AbsoluteUri;
        var baseUri = text.EndsWith('/') ? repository : new Uri(text + "/");
        if (Uri.TryCreate(url, UriKind.Absolute, out var absolute) && (absolute.Scheme == Uri.UriSchemeHttp || absolute.Scheme == Uri.UriSchemeHttps))
        {
            return absolute;
        }

        if (!Uri.TryCreate(baseUri, url, out var resolved) || (resolved.Scheme != Uri.UriSchemeHttp && resolved.Scheme != Uri.UriSchemeHttps))
        {
            throw new InputException($"chart URL '{url}' in the index of {text} is neither an http(s) URL nor a path relative to the repository");
        }

        return resolved;
    }

    private static HelmIndexEntry? ReadEntry(YMapping item, string name, string source)
    {
        var version = item.GetText("version")?.Trim();
        if (string.IsNullOrEmpty(version))
        {
            return null;
        }

        var urls = item.Get("urls") is YSequence list
            ? list.Items.OfType<YScalar>().Select(u => u.Text?.Trim()).Where(u => !string.IsNullOrEmpty(u)).Select(u => u!).ToList()
            : [];
        Digest? digest = null;
        if (item.GetText("digest")?.Trim() is { Length: > 0 } text)
        {
            // Helm writes the bare hex of the archive's sha256; accept the prefixed form too.
            var prefixed = text.Contains(':', StringComparison.Ordinal) ? text : "sha256:" + text.ToLowerInvariant();
            if (!Digest.TryParse(prefixed, out var parsed, out var error))
            {
                throw new InputException(Invariant($"{source}:{item.Get("digest")!.Line}: chart '{name}' {version}: digest '{text}' is not a sha256 hex digest: {error}"));
            }

            digest = parsed;
        }

        return new HelmIndexEntry(item.GetText("name")?.Trim() ?? name, version, urls, digest, item.Line);
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
