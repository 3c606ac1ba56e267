using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Oci;

/// <summary>
/// A normalised image reference <c>registry/repository[:tag][@digest]</c>, following the grammar of
/// distribution/reference with Docker Hub defaults (<c>mongo</c> is <c>docker.io/library/mongo:latest</c>).
/// </summary>
public sealed partial record Reference
{
    public const string DockerHub = "docker.io";
    public const string DefaultTag = "latest";
    private const int MaxNameLength = 255;

    private Reference(string registry, string repository, string? tag, Digest? digest)
    {
        Registry = registry;
        Repository = repository;
        Tag = tag;
        Digest = digest;
    }

    /// <summary>Registry host with optional port, e.g. <c>public.ecr.aws</c> or <c>127.0.0.1:5000</c>.</summary>
    public string Registry { get; }

    /// <summary>Repository path inside the registry, e.g. <c>r3q3q2f4/olm-server</c>.</summary>
    public string Repository { get; }

    public string? Tag { get; }

    public Digest? Digest { get; }

    /// <summary><c>registry/repository</c> without tag or digest.</summary>
    public string Name => $"{Registry}/{Repository}";

    /// <summary>The tag if any, else the digest string: what to ask the registry for.</summary>
    public string TagOrDigest => Digest?.ToString() ?? Tag ?? DefaultTag;

    public static Reference Create(string registry, string repository, string? tag = null, Digest? digest = null)
    {
        var text = $"{registry}/{repository}{(tag is null ? string.Empty : ":" + tag)}{(digest is null ? string.Empty : "@" + digest)}";
        return Parse(text);
    }

    public static Reference Parse(string value)
    {
        if (TryParse(value, out var reference, out var error))
        {
            return reference;
        }

        throw new InputException(error);
    }

    public static bool TryParse([NotNullWhen(true)] string? value, [NotNullWhen(true)] out Reference? reference) =>
        TryParse(value, out reference, out _);

    public static bool TryParse([NotNullWhen(true)] string? value, [NotNullWhen(true)] out Reference? reference, out string error)
    {
        reference = null;
        if (string.IsNullOrWhiteSpace(value))
        {
            error = "invalid reference '': it is empty";
            return false;
        }

        string Fail(string why) => $"invalid reference '{value}': {why}";

        if (value.Trim() != value || value.Any(char.IsWhiteSpace))
        {
            error = Fail("it contains whitespace");
            return false;
        }

        var remainder = value;
        Digest? digest = null;
        var at = remainder.IndexOf('@');
        if (at >= 0)
        {
            var digestText = remainder[(at + 1)..];
            if (!Oci.Digest.TryParse(digestText, out var parsed, out var digestError))
            {
                error = Fail(digestError);
                return false;
            }

            digest = parsed;
            remainder = remainder[..at];
        }

        string? tag = null;
        var lastSlash = remainder.LastIndexOf('/');
        var lastSegment = remainder[(lastSlash + 1)..];
        var colonCount = lastSegment.Count(c => c == ':');
        if (colonCount > 1)
        {
            error = Fail($"'{lastSegment}' has {colonCount} ':' separators; a reference has at most one tag (name:tag)");
            return false;
        }

        if (colonCount == 1)
        {
            var colon = remainder.LastIndexOf(':');
            tag = remainder[(colon + 1)..];
            remainder = remainder[..colon];
            if (!TagPattern().IsMatch(tag))
            {
                error = Fail($"tag '{tag}' is not valid (letters, digits, '_', '.', '-'; at most 128 characters; not starting with '.' or '-')");
                return false;
            }
        }

        if (remainder.Length == 0)
        {
            error = Fail("the repository name is empty");
            return false;
        }

        string registry;
        string repository;
        var firstSlash = remainder.IndexOf('/');
        var first = firstSlash < 0 ? remainder : remainder[..firstSlash];
        if (firstSlash >= 0 && (first.Contains('.') || first.Contains(':') || first == "localhost" || first.Any(char.IsAsciiLetterUpper)))
        {
            registry = first;
            repository = remainder[(firstSlash + 1)..];
            if (!DomainPattern().IsMatch(registry))
            {
                error = Fail($"registry host '{registry}' is not a valid host[:port]");
                return false;
            }
        }
        else
        {
            registry = DockerHub;
            repository = remainder;
        }

        if (registry is "index.docker.io" or "registry-1.docker.io")
        {
            registry = DockerHub;
        }

        if (registry == DockerHub && !repository.Contains('/'))
        {
            repository = "library/" + repository;
        }

        foreach (var component in repository.Split('/'))
        {
            if (!ComponentPattern().IsMatch(component))
            {
                error = component.Any(char.IsAsciiLetterUpper)
                    ? Fail($"repository '{repository}' must be lowercase")
                    : Fail($"repository path component '{component}' is not valid (lowercase letters, digits and single separators '.', '_', '__', '-')");
                return false;
            }
        }

        if (registry.Length + 1 + repository.Length > MaxNameLength)
        {
            error = Fail($"the name is longer than {MaxNameLength} characters");
            return false;
        }

        if (tag is null && digest is null)
        {
            tag = DefaultTag;
        }

        reference = new Reference(registry, repository, tag, digest);
        error = string.Empty;
        return true;
    }

    public Reference WithTag(string? tag) => new(Registry, Repository, tag, Digest);

    public Reference WithDigest(Digest? digest) => new(Registry, Repository, Tag, digest);

    public Reference WithRepository(string registry, string repository) => Create(registry, repository, Tag, Digest);

    public override string ToString() =>
        $"{Name}{(Tag is null ? string.Empty : ":" + Tag)}{(Digest is null ? string.Empty : "@" + Digest)}";

    internal static bool IsValidTag(string tag) => TagPattern().IsMatch(tag);

    // distribution's \w is ASCII-only (Go RE2); .NET's \w also matches other scripts, and '$' matches before a final '\n'.
    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\z", RegexOptions.CultureInvariant)]
    private static partial Regex TagPattern();

    [GeneratedRegex(@"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\z", RegexOptions.CultureInvariant)]
    private static partial Regex ComponentPattern();

    [GeneratedRegex(@"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?\z", RegexOptions.CultureInvariant)]
    private static partial Regex DomainPattern();
}
