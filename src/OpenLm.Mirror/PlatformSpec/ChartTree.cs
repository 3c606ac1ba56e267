using OpenLm.Mirror.Yaml;

namespace OpenLm.Mirror.PlatformSpec;

/// <summary>What a chart's <c>Chart.yaml</c> (and a Helm 2 <c>requirements.yaml</c>) say about it.</summary>
/// <param name="File">Display path of the Chart.yaml, used in messages and <see cref="ScannedChart.File"/>.</param>
internal sealed record ChartMeta(string Name, string Version, string? AppVersion, IReadOnlyList<ChartDependency> Dependencies, string File);

/// <summary>One entry of <c>dependencies:</c>.</summary>
/// <param name="Condition">Comma-separated values paths; the first that holds a boolean turns the subchart on or off.</param>
/// <param name="Tags">Names under the umbrella's <c>tags:</c> that turn the subchart on when any of them is true.</param>
internal sealed record ChartDependency(string Name, string? Version, string? Alias, string? Condition, IReadOnlyList<string> Tags);

/// <summary>
/// A loaded chart: its metadata, its own <c>values.yaml</c> (an empty mapping when it has none) and the subcharts
/// found under <c>charts/</c>, already matched to the dependencies that name them.
/// </summary>
internal sealed record LoadedChart(ChartMeta Meta, YMapping Values, IReadOnlyList<SubchartLink> Children);

/// <summary>
/// A subchart as its parent sees it. <paramref name="Key"/> is where the parent's values for it live (the
/// dependency's alias, else the chart name); <paramref name="Dependency"/> is null for a chart under <c>charts/</c>
/// that Chart.yaml does not list (Helm loads those too, always enabled).
/// </summary>
internal sealed record SubchartLink(string Key, LoadedChart Chart, ChartDependency? Dependency);
