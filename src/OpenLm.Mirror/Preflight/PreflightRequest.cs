using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Export;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.PlatformSpec.ChartSources;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Preflight;

/// <summary>
/// What preflight checks: the source registries of a release (from its platform manifest or lock: one image per
/// registry host is fetched) and where its remote charts come from (OCI registries and Helm repositories), or the
/// air-gapped target registry (its API and credentials only: it may still be empty).
/// </summary>
public sealed record PreflightRequest
{
    private PreflightRequest(string input, IReadOnlyList<Reference> images, MirrorTarget? target, RegistryMirrors mirrors, IReadOnlyList<PreflightChart>? charts = null)
    {
        Input = input;
        Images = images;
        Target = target;
        ManifestMirrors = mirrors;
        Charts = charts ?? [];
    }

    /// <summary>What was read, for a person: <c>manifest platform.yaml</c>, <c>lock lock.json</c>, <c>target HOST</c>.</summary>
    public string Input { get; }

    /// <summary>The release's images (source names); empty for a target.</summary>
    public IReadOnlyList<Reference> Images { get; }

    /// <summary>The release's charts from a registry or a Helm repository (local charts need no network); empty for a target.</summary>
    public IReadOnlyList<PreflightChart> Charts { get; }

    /// <summary>The air-gapped registry, or null for the release side.</summary>
    public MirrorTarget? Target { get; }

    /// <summary>The manifest's <c>registryMirrors</c> (the caller's mirrors win over them, as in resolve).</summary>
    public RegistryMirrors ManifestMirrors { get; }

    /// <summary>
    /// The images and remote charts of a platform manifest: its image list, what its local charts reference (chart
    /// values that do not parse are left out: preflight only needs the hosts), and each <c>ref:</c> or <c>repo:</c> chart.
    /// </summary>
    public static PreflightRequest FromManifest(string path)
    {
        var manifest = PlatformManifest.Load(path);
        // Remote charts are not downloaded to be scanned: preflight checks their sources, not the images inside them.
        var options = new ChartScanOptions { SkipInvalid = true };
        var scans = manifest.Charts.Where(c => c.FullPath is not null).Select(c => ChartScanner.Scan(c.FullPath!, options)).ToList();
        var images = PlatformImageList.Build(manifest, scans).Select(i => i.Reference).ToList();
        var charts = manifest.Charts.Where(c => c.Source is not LocalChartSource).Select(c => new PreflightChart(c.Source, null)).ToList();
        return images.Count == 0 && charts.Count == 0
            ? throw new InputException($"platform manifest '{path}' lists no images (directly or in its charts) and no remote charts: there is nothing to check")
            : new PreflightRequest($"manifest {path}", images, null, manifest.RegistryMirrors, charts);
    }

    /// <summary>The images of a lock file, each pinned to its digest, and its charts from a registry or repository, each pinned to its archive's sha256.</summary>
    public static PreflightRequest FromLock(string path)
    {
        var lockFile = LockFile.Load(path);
        var images = lockFile.Images
            .Select(i => Reference.Parse(i.Reference).WithDigest(Digest.Parse(i.Digest)))
            .ToList();
        var charts = lockFile.Charts.Where(c => c.Path is null).Select(c => new PreflightChart(c.Source(), Digest.Parse(c.Digest))).ToList();
        return images.Count == 0 && charts.Count == 0
            ? throw new InputException($"lock file '{path}' lists no images and no remote charts: there is nothing to check")
            : new PreflightRequest($"lock {path}", images, null, RegistryMirrors.None, charts);
    }

    /// <summary>The air-gapped registry <c>HOST[:PORT][/PREFIX]</c>.</summary>
    public static PreflightRequest ForTarget(string target)
    {
        var parsed = MirrorTarget.Parse(target);
        return new PreflightRequest($"target {parsed.Host}", [], parsed, RegistryMirrors.None);
    }
}

/// <summary>A chart preflight checks the source of: an OCI reference or a Helm repository entry, and the lock's pin of its archive (null from a manifest).</summary>
public sealed record PreflightChart(ChartSource Source, Digest? Pinned);
