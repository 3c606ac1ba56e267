using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.PlatformSpec;

/// <summary>How an image was written in the chart's values.</summary>
public enum ImageFindingKind
{
    /// <summary>A whole reference in one string at a key named <c>image</c>: <c>image: public.ecr.aws/r3q3q2f4/olm-server:1.2</c>.</summary>
    FullString,

    /// <summary>A mapping at a key named <c>image</c> with <c>repository</c> (+ <c>registry</c>, <c>tag</c>, <c>digest</c>), Bitnami style.</summary>
    Split,
}

/// <summary>One chart of the scanned tree (the umbrella or a subchart at any depth).</summary>
public sealed record ScannedChart
{
    /// <summary>Chart names (or dependency aliases) from the umbrella down, joined by '/': <c>openlm/portal/portal-ui</c>.</summary>
    public required string ChartPath { get; init; }

    /// <summary>The <c>name</c> from Chart.yaml.</summary>
    public required string Name { get; init; }

    public required string Version { get; init; }

    public string? AppVersion { get; init; }

    /// <summary>The dependency alias the parent uses, if any.</summary>
    public string? Alias { get; init; }

    /// <summary>Values path prefix of this chart as seen from the umbrella (empty for the umbrella; <c>portal.portal-ui</c>).</summary>
    public required string ValuesPrefix { get; init; }

    /// <summary>Chart.yaml inside the archive or directory, e.g. <c>openlm/charts/server/Chart.yaml</c>.</summary>
    public required string File { get; init; }

    /// <summary>False when a dependency condition/tag or an <c>enabled: false</c> turns the chart (or an ancestor) off.</summary>
    public required bool Enabled { get; init; }

    /// <summary>True when the chart's effective values declare <c>global.imageRegistry</c> (even empty).</summary>
    public required bool DeclaresGlobalImageRegistry { get; init; }
}

/// <summary>An image found in a chart's values.</summary>
public sealed record ChartImageFinding
{
    /// <summary>Chart.yaml <c>name</c> of the chart whose values hold the image.</summary>
    public required string ChartName { get; init; }

    public required string ChartVersion { get; init; }

    /// <summary>See <see cref="ScannedChart.ChartPath"/>, e.g. <c>openlm/server</c>.</summary>
    public required string ChartPath { get; init; }

    /// <summary>The values file that set the (winning part of the) image, e.g. <c>openlm/charts/server/values.yaml</c>; files inside nested archives read <c>openlm/charts/reporting-1.0.0.tgz!/reporting/values.yaml</c>.</summary>
    public required string File { get; init; }

    public required int Line { get; init; }

    /// <summary>Values path from the umbrella; split-key images end in <c>.*</c> (see <see cref="ValuesPath"/>).</summary>
    public required string ValuesPath { get; init; }

    public required ImageFindingKind Kind { get; init; }

    /// <summary>The normalised reference (docker.io defaults applied, global.imageRegistry applied).</summary>
    public required Reference Reference { get; init; }

    /// <summary>False when the chart is disabled or a mapping on the path has <c>enabled: false</c>. Informational: everything is mirrored.</summary>
    public required bool Enabled { get; init; }

    /// <summary>Split-key image in a chart whose values declare <c>global.imageRegistry</c>: setting that one value redirects the image.</summary>
    public required bool UsesGlobalImageRegistry { get; init; }

    /// <summary>Split-key image without tag or digest whose tag was taken from the chart's <c>appVersion</c> (the <c>helm create</c> convention).</summary>
    public bool TagFromAppVersion { get; init; }

    public override string ToString() => $"{File}:{Line}: {ValuesPath}: {Reference}";
}

/// <summary>A value that looks like an image but does not parse as a reference.</summary>
public sealed record InvalidImageReference
{
    public required string ChartName { get; init; }

    public required string ChartVersion { get; init; }

    public required string ChartPath { get; init; }

    public required string File { get; init; }

    public required int Line { get; init; }

    public required string ValuesPath { get; init; }

    /// <summary>The text as written (split keys are shown composed: <c>registry/repository:tag@digest</c>).</summary>
    public required string Raw { get; init; }

    public required string Error { get; init; }

    public required bool Enabled { get; init; }

    public override string ToString() => $"{File}:{Line}: {ValuesPath} (chart {ChartPath} {ChartVersion}): {Error}";
}

/// <summary>What <see cref="ChartScanner.Scan"/> found in one chart (umbrella and all subcharts).</summary>
public sealed record ChartScanResult
{
    /// <summary>The path that was scanned (.tgz or directory).</summary>
    public required string SourcePath { get; init; }

    /// <summary>The umbrella chart's name.</summary>
    public required string ChartName { get; init; }

    public required string ChartVersion { get; init; }

    /// <summary>Every chart in the tree, umbrella first, then in values-prefix order.</summary>
    public required IReadOnlyList<ScannedChart> Charts { get; init; }

    /// <summary>Images found, sorted by values path (ordinal), then file.</summary>
    public required IReadOnlyList<ChartImageFinding> Findings { get; init; }

    /// <summary>Malformed references; non-empty only with <see cref="ChartScanOptions.SkipInvalid"/> (otherwise Scan throws).</summary>
    public required IReadOnlyList<InvalidImageReference> Invalid { get; init; }
}

/// <summary>Options of <see cref="ChartScanner.Scan"/>.</summary>
public sealed record ChartScanOptions
{
    public static ChartScanOptions Default { get; } = new();

    /// <summary>Return malformed references in <see cref="ChartScanResult.Invalid"/> instead of throwing.</summary>
    public bool SkipInvalid { get; init; }

    /// <summary>Largest total decompressed size of one archive (nested archives count separately).</summary>
    public long MaxArchiveBytes { get; init; } = 512L * 1024 * 1024;

    /// <summary>Largest single file that is read (Chart.yaml, values.yaml, a nested chart archive).</summary>
    public long MaxFileBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>Largest number of entries in one archive.</summary>
    public int MaxEntries { get; init; } = 100_000;

    /// <summary>Deepest subchart nesting (the umbrella is depth 0).</summary>
    public int MaxDepth { get; init; } = 16;
}
