using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.EngineLoad;

/// <summary>
/// Platform names as engines report them and as images declare them, and the choice of one child manifest of a
/// multi-platform image, following containerd's rules: architectures are normalised (<c>x86_64</c> is <c>amd64</c>,
/// <c>aarch64</c> is <c>arm64</c>), and a missing variant means the architecture's default (<c>arm64</c> is <c>v8</c>,
/// <c>arm</c> is <c>v7</c>).
/// </summary>
public static class PlatformMatcher
{
    /// <summary>The Go architecture name for what <c>uname -m</c>, Docker or an image config may report.</summary>
    public static string NormalizeArchitecture(string architecture)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        return architecture.Trim().ToLowerInvariant() switch
        {
            "x86_64" or "x86-64" or "x64" => "amd64",
            "aarch64" or "armv8" or "armv8l" => "arm64",
            "i386" or "i486" or "i586" or "i686" or "x86" => "386",
            "armhf" or "armel" or "armv7l" or "armv6l" or "armv5l" or "armv7" or "armv6" or "armv5" => "arm",
            var other => other,
        };
    }

    /// <summary>The variant an architecture name implies (<c>armv6l</c> is <c>v6</c>, <c>aarch64</c> is <c>v8</c>), if any.</summary>
    private static string? ImpliedVariant(string architecture) => architecture.Trim().ToLowerInvariant() switch
    {
        "armv7l" or "armv7" or "armhf" => "v7",
        "armv6l" or "armv6" or "armel" => "v6",
        "armv5l" or "armv5" => "v5",
        _ => null,
    };

    /// <summary>The variant a platform without one is taken to have (containerd's defaults).</summary>
    public static string? DefaultVariant(string normalizedArchitecture) => normalizedArchitecture switch
    {
        "arm64" => "v8",
        "arm" => "v7",
        _ => null,
    };

    /// <summary>The platform with its architecture normalised and, where the name implies one, a variant.</summary>
    public static Platform Normalize(Platform platform)
    {
        ArgumentNullException.ThrowIfNull(platform);
        var architecture = NormalizeArchitecture(platform.Architecture);
        var variant = string.IsNullOrEmpty(platform.Variant) ? ImpliedVariant(platform.Architecture) : platform.Variant;
        return platform with { Os = platform.Os.Trim().ToLowerInvariant(), Architecture = architecture, Variant = variant };
    }

    /// <summary>The engine's own platform from its <c>/version</c> answer (<c>Os</c>, <c>Arch</c>).</summary>
    public static Platform FromEngine(string? os, string? architecture)
    {
        if (string.IsNullOrWhiteSpace(os) || string.IsNullOrWhiteSpace(architecture))
        {
            throw new OperationException($"the Docker engine did not report its platform (os '{os}', architecture '{architecture}'); choose the platform explicitly")
            {
                Remedy = Remedy.Platform,
            };
        }

        return Normalize(new Platform { Os = os, Architecture = architecture });
    }

    /// <summary>
    /// True when <paramref name="candidate"/> runs as <paramref name="wanted"/>: same os and architecture, and the
    /// same variant when <paramref name="wanted"/> names one (a missing variant counts as the default one).
    /// </summary>
    public static bool Matches(Platform wanted, Platform? candidate)
    {
        ArgumentNullException.ThrowIfNull(wanted);
        if (candidate is null)
        {
            return false;
        }

        var w = Normalize(wanted);
        var c = Normalize(candidate);
        if (w.Os != c.Os || w.Architecture != c.Architecture)
        {
            return false;
        }

        return w.Variant is null || EffectiveVariant(w) == EffectiveVariant(c);
    }

    /// <summary>
    /// The child manifest of an index to load for <paramref name="wanted"/>, or null when there is none. Only image
    /// manifests with a platform are candidates (attestations, <c>unknown/unknown</c>, nested indexes are not). When
    /// several match (no variant asked for), the one with the architecture's default variant wins, else the first in
    /// index order.
    /// </summary>
    public static Descriptor? SelectManifest(IEnumerable<Descriptor> children, Platform wanted)
    {
        ArgumentNullException.ThrowIfNull(children);
        ArgumentNullException.ThrowIfNull(wanted);
        var candidates = children
            .Where(c => MediaTypes.IsImageManifest(c.MediaType) && c.Platform is not null && Matches(wanted, c.Platform))
            .ToList();
        if (candidates.Count <= 1)
        {
            return candidates.FirstOrDefault();
        }

        var preferred = EffectiveVariant(Normalize(wanted));
        return candidates.FirstOrDefault(c => EffectiveVariant(Normalize(c.Platform!)) == preferred) ?? candidates[0];
    }

    /// <summary>The platforms an index offers, for messages (<c>linux/amd64, linux/arm64/v8</c>).</summary>
    public static string Describe(IEnumerable<Descriptor> children)
    {
        var platforms = children
            .Where(c => MediaTypes.IsImageManifest(c.MediaType) && c.Platform is { Os: not "unknown" })
            .Select(c => c.Platform!.ToString())
            .Distinct(StringComparer.Ordinal)
            .ToList();
        return platforms.Count == 0 ? "no platforms" : string.Join(", ", platforms);
    }

    private static string? EffectiveVariant(Platform normalized) => normalized.Variant ?? DefaultVariant(normalized.Architecture);
}
