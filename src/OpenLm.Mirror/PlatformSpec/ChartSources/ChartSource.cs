using System.Diagnostics.CodeAnalysis;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.PlatformSpec.ChartSources;

/// <summary>Where a chart of the platform manifest comes from: a local path, an OCI registry or a Helm HTTP repository.</summary>
public abstract record ChartSource
{
    /// <summary>The source as a user would write it, for messages and the lock (e.g. <c>oci://host/charts/openlm:1.2</c>).</summary>
    public abstract override string ToString();
}

/// <summary>A chart directory or <c>.tgz</c> on disk.</summary>
/// <param name="Path">The path as written.</param>
/// <param name="FullPath">Absolute path (relative paths resolved against the manifest's directory).</param>
public sealed record LocalChartSource(string Path, string FullPath) : ChartSource
{
    public override string ToString() => Path;
}

/// <summary>
/// A chart stored the way <c>helm push</c> stores it: an OCI image manifest whose config is
/// <c>application/vnd.cncf.helm.config.v1+json</c> and whose layer is the <c>.tgz</c>. The tag is the chart version
/// with <c>+</c> written as <c>_</c> (OCI tags cannot hold <c>+</c>; Helm does the same).
/// </summary>
public sealed record OciChartSource(Reference Reference) : ChartSource
{
    public const string Scheme = "oci://";

    /// <summary>Parses <c>oci://host/path/chart:version</c> (optionally <c>@sha256:…</c>); a <c>+</c> in the version becomes <c>_</c>.</summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out OciChartSource? source, out string error)
    {
        source = null;
        if (!text.StartsWith(Scheme, StringComparison.Ordinal))
        {
            error = $"'{text}' is not an OCI chart reference: it must start with {Scheme} (e.g. {Scheme}public.ecr.aws/openlm/charts/openlm:1.2.0)";
            return false;
        }

        var body = text[Scheme.Length..];
        var at = body.IndexOf('@', StringComparison.Ordinal);
        var name = at < 0 ? body : body[..at];
        var slash = name.LastIndexOf('/');
        var colon = name.LastIndexOf(':');
        if (slash < 0 || colon < slash)
        {
            error = $"'{text}' names no chart version: write it as the tag ({Scheme}host/path/chart:VERSION)";
            return false;
        }

        // Helm stores a SemVer build suffix ("1.2.0+build.7") as "1.2.0_build.7" in the tag.
        var tagged = name[..colon] + ":" + name[(colon + 1)..].Replace('+', '_') + (at < 0 ? string.Empty : body[at..]);
        if (!Reference.TryParse(tagged, out var reference, out var parseError))
        {
            error = $"'{text}' is not a valid OCI chart reference: {parseError}";
            return false;
        }

        source = new OciChartSource(reference);
        error = string.Empty;
        return true;
    }

    public override string ToString() => Scheme + Reference;
}

/// <summary>A chart in a Helm HTTP repository: <c>index.yaml</c> under <see cref="Repository"/> lists its versions and URLs.</summary>
public sealed record HelmRepositoryChartSource(Uri Repository, string Name, string Version) : ChartSource
{
    /// <summary>The repository URL with a trailing slash, so relative URLs and <c>index.yaml</c> resolve under it (as Helm does).</summary>
    public Uri BaseUri => Repository.AbsoluteUri.EndsWith('/') ? Repository : new Uri(Repository.AbsoluteUri + "/");

    public Uri IndexUri => new(BaseUri, "index.yaml");

    /// <summary>The repository URL for messages, without the trailing slash.</summary>
    public string Display => Repository.AbsoluteUri.TrimEnd('/');

    /// <summary>Parses a repository URL: absolute http or https, no query or fragment.</summary>
    public static bool TryParseRepository(string text, [NotNullWhen(true)] out Uri? repository, out string error)
    {
        repository = null;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            error = $"'{text}' is not a Helm repository URL: expected https://host/path (or http:// on a trusted network)";
            return false;
        }

        if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
        {
            error = $"'{text}': a Helm repository URL has no query or fragment";
            return false;
        }

        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            error = $"'{text}': do not put credentials in the repository URL; store them for host {uri.Authority} like registry credentials";
            return false;
        }

        repository = uri;
        error = string.Empty;
        return true;
    }

    public override string ToString() => $"{Display} {Name} {Version}";
}
