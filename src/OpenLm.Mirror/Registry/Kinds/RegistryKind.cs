using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace OpenLm.Mirror.Registry.Kinds;

/// <summary>Which registry product a target is; each refuses a naive push in its own way (docs/registries.md).</summary>
public enum RegistryKind
{
    /// <summary>Find out from the host name, the response headers and Harbor's system-info API.</summary>
    Auto = 0,

    /// <summary>CNCF Distribution (registry:2, zot and other plain OCI registries).</summary>
    Distribution,

    Harbor,

    /// <summary>Amazon ECR (private): repositories must exist, tags may be immutable.</summary>
    Ecr,

    /// <summary>Azure Container Registry.</summary>
    Acr,

    /// <summary>Google Artifact Registry (no chunked uploads).</summary>
    Gar,

    GitLab,

    Quay,

    Nexus,

    Artifactory,

    /// <summary>Docker Hub (<c>namespace/repository</c> only).</summary>
    DockerHub,
}

/// <summary>What we know about a kind of registry before talking to it.</summary>
public sealed record RegistryProfile
{
    public required RegistryKind Kind { get; init; }

    /// <summary>Repositories must exist before a push (ECR without a creation template).</summary>
    public bool RepositoriesMustExist { get; init; }

    /// <summary>The first path component must exist as a project / organisation (Harbor, Quay).</summary>
    public bool NamespaceMustExist { get; init; }

    /// <summary>Most path components a repository may have, when the kind fixes it (Docker Hub: 2).</summary>
    public int? MaxPathComponents { get; init; }

    /// <summary>Whether PATCH (chunked) uploads work; false means monolithic only (Google Artifact Registry).</summary>
    public bool ChunkedUploads { get; init; } = true;

    /// <summary>Smallest PATCH chunk the registry keeps (ECR drops or refuses parts under 5 MiB, except the last).</summary>
    public long MinChunkBytes { get; init; }

    /// <summary>Tags can be configured immutable (ECR, Harbor, Quay, Artifactory, Nexus).</summary>
    public bool MayHaveImmutableTags { get; init; }

    public static RegistryProfile For(RegistryKind kind) => kind switch
    {
        RegistryKind.Ecr => new() { Kind = kind, RepositoriesMustExist = true, MinChunkBytes = 5L << 20, MayHaveImmutableTags = true },
        RegistryKind.Harbor => new() { Kind = kind, NamespaceMustExist = true, MayHaveImmutableTags = true },
        RegistryKind.Quay => new() { Kind = kind, NamespaceMustExist = true, MayHaveImmutableTags = true },
        RegistryKind.Gar => new() { Kind = kind, ChunkedUploads = false },
        RegistryKind.DockerHub => new() { Kind = kind, NamespaceMustExist = true, MaxPathComponents = 2 },
        RegistryKind.Nexus or RegistryKind.Artifactory => new() { Kind = kind, MayHaveImmutableTags = true },
        _ => new() { Kind = kind },
    };
}

/// <summary>The <c>&lt;account&gt;.dkr.ecr.&lt;region&gt;.amazonaws.com</c> address of an ECR private registry.</summary>
public sealed partial record EcrRegistryAddress(string RegistryId, string Region)
{
    public static bool TryParse(string host, [NotNullWhen(true)] out EcrRegistryAddress? address)
    {
        var match = EcrHost().Match(host ?? string.Empty);
        address = match.Success ? new EcrRegistryAddress(match.Groups[1].Value, match.Groups[2].Value) : null;
        return address is not null;
    }

    [GeneratedRegex(@"^(\d{12})\.dkr(?:-fips)?\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?(?::\d+)?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex EcrHost();
}

public static class RegistryKinds
{
    /// <summary>The names accepted for a kind, in the order they are documented.</summary>
    public static IReadOnlyList<string> Names { get; } = ["auto", "distribution", "harbor", "ecr", "acr", "gar", "gitlab", "quay", "nexus", "artifactory", "dockerhub"];

    public static bool TryParse(string? text, out RegistryKind kind)
    {
        var index = text is null ? -1 : Names.ToList().FindIndex(n => string.Equals(n, text.Trim(), StringComparison.OrdinalIgnoreCase));
        kind = index < 0 ? RegistryKind.Auto : (RegistryKind)index;
        return index >= 0;
    }

    public static string Name(RegistryKind kind) => Names[(int)kind];

    /// <summary>The kind a host name alone gives away (cloud registries have fixed host patterns), or null.</summary>
    public static RegistryKind? FromHost(string host)
    {
        var name = (host ?? string.Empty).ToLowerInvariant();
        var colon = name.LastIndexOf(':');
        if (colon > 0 && !name.EndsWith(']'))
        {
            name = name[..colon];
        }

        if (EcrRegistryAddress.TryParse(name, out _))
        {
            return RegistryKind.Ecr;
        }

        return name switch
        {
            _ when name.EndsWith(".azurecr.io", StringComparison.Ordinal) || name.EndsWith(".azurecr.cn", StringComparison.Ordinal) => RegistryKind.Acr,
            _ when name.EndsWith("-docker.pkg.dev", StringComparison.Ordinal) => RegistryKind.Gar,
            "docker.io" or "registry-1.docker.io" or "index.docker.io" => RegistryKind.DockerHub,
            "quay.io" => RegistryKind.Quay,
            "registry.gitlab.com" => RegistryKind.GitLab,
            _ => null,
        };
    }

    /// <summary>
    /// The kind the Bearer challenge of <c>GET /v2/</c> gives away, or null. Its realm is the product's token service and
    /// survives only in the challenge (the answer after authentication carries no <c>WWW-Authenticate</c>): GitLab's
    /// registry sends <c>realm="https://&lt;gitlab host&gt;/jwt/auth",service="container_registry"</c> (GitLab's
    /// container registry administration docs; the realm is the Rails instance, not the registry host, so a
    /// self-managed GitLab is found whatever its host names), Harbor <c>realm="https://&lt;harbor&gt;/service/token"</c>.
    /// </summary>
    public static RegistryKind? FromChallenge(OpenLm.Mirror.Registry.Auth.Challenge? challenge)
    {
        if (challenge is null || !challenge.IsBearer || challenge.Realm is not { } realm || !Uri.TryCreate(realm, UriKind.Absolute, out var uri))
        {
            return null;
        }

        var path = uri.AbsolutePath.TrimEnd('/');
        return path switch
        {
            _ when path.EndsWith("/jwt/auth", StringComparison.Ordinal) => RegistryKind.GitLab,
            _ when path.EndsWith("/service/token", StringComparison.Ordinal) => RegistryKind.Harbor,
            _ => null,
        };
    }

    /// <summary>The kind response headers give away (<c>Server</c>, JFrog's and Harbor's own headers), or null.</summary>
    public static RegistryKind? FromHeaders(IEnumerable<KeyValuePair<string, IEnumerable<string>>> headers)
    {
        foreach (var (name, values) in headers)
        {
            var value = string.Join(" ", values);
            if (name.StartsWith("X-JFrog", StringComparison.OrdinalIgnoreCase) || name.StartsWith("X-Artifactory", StringComparison.OrdinalIgnoreCase))
            {
                return RegistryKind.Artifactory;
            }

            if (name.Equals("Server", StringComparison.OrdinalIgnoreCase) && value.Contains("Nexus", StringComparison.OrdinalIgnoreCase))
            {
                return RegistryKind.Nexus;
            }

            if (name.Equals("Server", StringComparison.OrdinalIgnoreCase) && value.Contains("Artifactory", StringComparison.OrdinalIgnoreCase))
            {
                return RegistryKind.Artifactory;
            }

            if (name.StartsWith("X-Harbor", StringComparison.OrdinalIgnoreCase))
            {
                return RegistryKind.Harbor;
            }

            if (name.Equals("WWW-Authenticate", StringComparison.OrdinalIgnoreCase))
            {
                if (value.Contains("/service/token", StringComparison.Ordinal))
                {
                    return RegistryKind.Harbor;
                }

                if (value.Contains("/jwt/auth", StringComparison.Ordinal))
                {
                    return RegistryKind.GitLab;
                }

                if (value.Contains(".dkr.ecr.", StringComparison.Ordinal) || value.Contains("service=\"ecr.amazonaws.com\"", StringComparison.Ordinal))
                {
                    return RegistryKind.Ecr;
                }
            }
        }

        return null;
    }
}
