using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Copy;

/// <summary>A destination registry with an optional repository prefix: <c>host[:port][/prefix]</c>.</summary>
public sealed record RegistryPrefix(string Registry, string? Prefix)
{
    public static RegistryPrefix Parse(string text, string role)
    {
        var trimmed = text.TrimEnd('/');
        var slash = trimmed.IndexOf('/');
        var host = slash < 0 ? trimmed : trimmed[..slash];
        var prefix = slash < 0 ? null : trimmed[(slash + 1)..];
        if (host.Length == 0 || !(host.Contains('.') || host.Contains(':') || host == "localhost"))
        {
            throw new InputException($"{role} '{text}': expected a registry host[:port][/prefix], e.g. registry.example.com:5000/openlm");
        }

        if (trimmed.Contains('@') || (prefix is not null && prefix.Contains(':')))
        {
            throw new InputException($"{role} '{text}': a registry prefix has no tag or digest (each image keeps its own)");
        }

        // Validate host and prefix with the reference grammar.
        var probe = prefix is null ? $"{host}/probe" : $"{host}/{prefix}/probe";
        if (!Reference.TryParse(probe, out _, out var error))
        {
            throw new InputException($"{role} '{text}': {error.Replace($"'{probe}'", $"'{text}'", StringComparison.Ordinal)}");
        }

        return new RegistryPrefix(host, prefix);
    }

    /// <summary><c>registry/prefix/&lt;source repository&gt;:tag</c> (digest kept when the source has one).</summary>
    public Reference Map(Reference source) =>
        Reference.Create(Registry, Prefix is null ? source.Repository : $"{Prefix}/{source.Repository}", source.Tag, source.Tag is null ? source.Digest : null);

    public override string ToString() => Prefix is null ? Registry : $"{Registry}/{Prefix}";
}
