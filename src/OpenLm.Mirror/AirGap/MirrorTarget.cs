using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.AirGap;

/// <summary>
/// The air-gapped registry images are imported into: <c>HOST[:PORT][/PREFIX]</c>, e.g.
/// <c>registry.corp:5000/openlm</c>. No scheme, no tag, no digest.
/// </summary>
public sealed record MirrorTarget
{
    private MirrorTarget(string host, string prefix)
    {
        Host = host;
        Prefix = prefix;
    }

    /// <summary>Registry host with optional port, exactly as written (e.g. <c>registry.corp:5000</c>).</summary>
    public string Host { get; }

    /// <summary>Repository path prefix under the host (e.g. <c>openlm/platform</c>), or empty.</summary>
    public string Prefix { get; }

    /// <summary>Parses <c>HOST[:PORT][/PREFIX]</c>; throws <see cref="InputException"/> quoting the text when it is not valid.</summary>
    public static MirrorTarget Parse(string text)
    {
        if (TryParse(text, out var target, out var error))
        {
            return target;
        }

        throw new InputException(error);
    }

    public static bool TryParse(string? text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out MirrorTarget? target, out string error)
    {
        target = null;
        string Fail(string why) => $"invalid target '{text}': {why} (expected HOST[:PORT][/PREFIX], e.g. registry.corp:5000/openlm)";

        if (string.IsNullOrWhiteSpace(text))
        {
            error = $"invalid target '{text}': it is empty (expected HOST[:PORT][/PREFIX], e.g. registry.corp:5000/openlm)";
            return false;
        }

        if (text.Any(char.IsWhiteSpace))
        {
            error = Fail("it contains whitespace");
            return false;
        }

        if (text.Contains("://", StringComparison.Ordinal))
        {
            error = Fail("give the registry without a scheme such as https://");
            return false;
        }

        if (text.Contains('@'))
        {
            error = Fail("a target has no digest");
            return false;
        }

        var trimmed = text.TrimEnd('/');
        var slash = trimmed.IndexOf('/');
        var host = slash < 0 ? trimmed : trimmed[..slash];
        var prefix = slash < 0 ? string.Empty : trimmed[(slash + 1)..];

        if (!NamePaths.IsRegistryHost(host))
        {
            error = Fail($"'{host}' is not a registry host; it needs a '.' or a ':port', or must be 'localhost' " +
                         "(a single word would be read as a Docker Hub repository by Kubernetes)");
            return false;
        }

        if (Reference.TryParse(host + "/x", out var probe) && probe.Registry == Reference.DockerHub)
        {
            error = Fail("Docker Hub cannot be the air-gapped target");
            return false;
        }

        if (prefix.Length > 0 && !NamePaths.IsRepositoryPath(prefix, out var why))
        {
            error = Fail($"prefix '{prefix}': {why}");
            return false;
        }

        target = new MirrorTarget(host, prefix);
        error = string.Empty;
        return true;
    }

    public override string ToString() => Prefix.Length == 0 ? Host : $"{Host}/{Prefix}";
}

/// <summary>Validation and joining of registry hosts and repository paths.</summary>
internal static class NamePaths
{
    private const string ProbeHost = "probe.invalid";

    /// <summary>True when <paramref name="host"/> is a <c>host[:port]</c> that image references read as a registry.</summary>
    public static bool IsRegistryHost(string host)
    {
        if (host.Length == 0 || host.Contains('/'))
        {
            return false;
        }

        if (!host.Contains('.') && !host.Contains(':') && host != "localhost")
        {
            return false;
        }

        return Reference.TryParse(host + "/x", out var probe) && (probe.Registry == host || probe.Registry == Reference.DockerHub);
    }

    /// <summary>Normalises Docker Hub's alternative host names to <c>docker.io</c>.</summary>
    public static string NormalizeHost(string host) =>
        host is "index.docker.io" or "registry-1.docker.io" ? Reference.DockerHub : host;

    /// <summary>True when <paramref name="path"/> is one or more valid repository path components.</summary>
    public static bool IsRepositoryPath(string path, out string why)
    {
        if (path.Length == 0)
        {
            why = "it is empty";
            return false;
        }

        if (path.StartsWith('/') || path.EndsWith('/') || path.Contains("//", StringComparison.Ordinal))
        {
            why = "it has an empty path component";
            return false;
        }

        if (!Reference.TryParse($"{ProbeHost}/{path}", out var probe) || probe.Repository != path || probe.Tag != Reference.DefaultTag)
        {
            why = path.Any(char.IsAsciiLetterUpper)
                ? "repository paths must be lowercase"
                : "each '/'-separated component must be lowercase letters and digits joined by single '.', '_', '__' or '-'";
            return false;
        }

        why = string.Empty;
        return true;
    }

    public static string Join(params string[] parts) =>
        string.Join('/', parts.Where(p => p.Length > 0));

    /// <summary>True when <paramref name="name"/> equals <paramref name="prefix"/> or lies under it at a '/' boundary.</summary>
    public static bool IsUnder(string name, string prefix) =>
        name.Length == prefix.Length
            ? string.Equals(name, prefix, StringComparison.Ordinal)
            : name.Length > prefix.Length && name[prefix.Length] == '/' && name.StartsWith(prefix, StringComparison.Ordinal);
}
