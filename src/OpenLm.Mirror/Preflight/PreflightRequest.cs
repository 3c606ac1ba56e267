using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Export;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Preflight;

/// <summary>
/// What preflight checks: the source registries of a release (from its platform manifest or lock: one image per
/// registry host is fetched), or the air-gapped target registry (its API and credentials only: it may still be empty).
/// </summary>
public sealed record PreflightRequest
{
    private PreflightRequest(string input, IReadOnlyList<Reference> images, MirrorTarget? target, RegistryMirrors mirrors)
    {
        Input = input;
        Images = images;
        Target = target;
        ManifestMirrors = mirrors;
    }

    /// <summary>What was read, for a person: <c>manifest platform.yaml</c>, <c>lock lock.json</c>, <c>target HOST</c>.</summary>
    public string Input { get; }

    /// <summary>The release's images (source names); empty for a target.</summary>
    public IReadOnlyList<Reference> Images { get; }

    /// <summary>The air-gapped registry, or null for the release side.</summary>
    public MirrorTarget? Target { get; }

    /// <summary>The manifest's <c>registryMirrors</c> (the caller's mirrors win over them, as in resolve).</summary>
    public RegistryMirrors ManifestMirrors { get; }

    /// <summary>
    /// The images of a platform manifest: its image list and what its charts reference (chart values that do not parse
    /// are left out: preflight only needs the hosts).
    /// </summary>
    public static PreflightRequest FromManifest(string path)
    {
        var manifest = PlatformManifest.Load(path);
        var scans = PlatformImageList.ScanCharts(manifest, new ChartScanOptions { SkipInvalid = true });
        var images = PlatformImageList.Build(manifest, scans).Select(i => i.Reference).ToList();
        return images.Count == 0
            ? throw new InputException($"platform manifest '{path}' lists no images (directly or in its charts): there is nothing to check")
            : new PreflightRequest($"manifest {path}", images, null, manifest.RegistryMirrors);
    }

    /// <summary>The images of a lock file, each pinned to its digest.</summary>
    public static PreflightRequest FromLock(string path)
    {
        var lockFile = LockFile.Load(path);
        var images = lockFile.Images
            .Select(i => Reference.Parse(i.Reference).WithDigest(Digest.Parse(i.Digest)))
            .ToList();
        return images.Count == 0
            ? throw new InputException($"lock file '{path}' lists no images: there is nothing to check")
            : new PreflightRequest($"lock {path}", images, null, RegistryMirrors.None);
    }

    /// <summary>The air-gapped registry <c>HOST[:PORT][/PREFIX]</c>.</summary>
    public static PreflightRequest ForTarget(string target)
    {
        var parsed = MirrorTarget.Parse(target);
        return new PreflightRequest($"target {parsed.Host}", [], parsed, RegistryMirrors.None);
    }
}
