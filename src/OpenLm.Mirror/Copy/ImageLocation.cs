using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Copy;

/// <summary>
/// One side of a copy: a registry reference (<c>host/path:tag</c>) or an OCI layout
/// (<c>oci:DIR[:REF]</c>, where REF is the image's ref name and may itself contain <c>/</c> and <c>:</c>).
/// </summary>
public abstract record ImageLocation
{
    public const string LayoutPrefix = "oci:";

    public static ImageLocation Parse(string text, string role)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new InputException($"{role} is empty");
        }

        if (text.StartsWith(LayoutPrefix, StringComparison.Ordinal))
        {
            var rest = text[LayoutPrefix.Length..];
            var colon = rest.IndexOf(':');
            var dir = colon < 0 ? rest : rest[..colon];
            var refName = colon < 0 ? null : rest[(colon + 1)..];
            if (dir.Length == 0)
            {
                throw new InputException($"{role} '{text}': the OCI layout directory is empty (expected oci:DIR[:REF])");
            }

            if (refName is { Length: 0 })
            {
                throw new InputException($"{role} '{text}': the ref name after ':' is empty (expected oci:DIR[:REF])");
            }

            return new LayoutLocation(dir, refName);
        }

        if (!Reference.TryParse(text, out var reference, out var error))
        {
            throw new InputException($"{role}: {error}");
        }

        var lastSegment = text[(text.LastIndexOf('/') + 1)..];
        var explicitTag = lastSegment.Contains(':') || lastSegment.Contains('@');
        return new RegistryLocation(reference, explicitTag);
    }
}

/// <summary>An image in a registry. <see cref="ExplicitTagOrDigest"/> is false when the user wrote no tag (":latest" was implied).</summary>
public sealed record RegistryLocation(Reference Reference, bool ExplicitTagOrDigest) : ImageLocation
{
    public override string ToString() => Reference.ToString();
}

/// <summary>An image in an OCI layout directory, named by its ref name.</summary>
public sealed record LayoutLocation(string Directory, string? RefName) : ImageLocation
{
    public override string ToString() => RefName is null ? $"{LayoutPrefix}{Directory}" : $"{LayoutPrefix}{Directory}:{RefName}";
}
