using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Registry.Kinds;
using OpenLm.Mirror.Registry.Probe;

namespace OpenLm.Mirror.AirGap;

/// <summary>What <see cref="CheckWorkflow.RunAsync"/> found: one result per root of the bundle, in the bundle's order.</summary>
public sealed record CheckReport
{
    public required AirGapBundle Bundle { get; init; }

    public required IReadOnlyList<ImportCheckResult> Results { get; init; }

    /// <summary>When the registry was first asked (UTC).</summary>
    public required DateTimeOffset Started { get; init; }

    public required TimeSpan Elapsed { get; init; }

    /// <summary>What the capability probe found about the target (kind, API, push access per repository, referrers).</summary>
    public ProbeReport? Probe { get; init; }

    /// <summary>True when every image and chart is in the target, complete and with the bundle's digest.</summary>
    public bool Complete => Results.All(r => r.Status == ImportCheckStatus.Ok);

    public int Count(ImportCheckStatus status) => Results.Count(r => r.Status == status);
}

/// <summary>
/// Audits an import: every image and chart of an opened bundle must be tagged in the target with the bundle's digest,
/// and its whole graph must be present there. Nothing is written.
/// </summary>
public static class CheckWorkflow
{
    /// <summary>
    /// Checks every root of <paramref name="bundle"/> under the name the import gives it. The bundle is opened (its
    /// signature checked, its names mapped) first, so a bad bundle is refused before any registry is asked.
    /// </summary>
    public static async Task<CheckReport> RunAsync(
        AirGapBundle bundle, RegistryConnector connector, ImportCheckOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        ArgumentNullException.ThrowIfNull(connector);
        var targets = bundle.Mappings.ToDictionary(m => m.Source.ToString(), m => m.Target, StringComparer.Ordinal);
        var items = bundle.Roots
            .Select(r => new ImportCheckItem(r.Source, targets[r.Source.ToString()], r.Descriptor, r.IsChart))
            .ToList();
        var started = DateTimeOffset.UtcNow;
        var probe = await RegistryProbe.ProbeAsync(
            connector.Client(bundle.Mapper.Target.Host), options?.RegistryKind ?? RegistryKind.Auto, items.Select(i => i.Target.Repository).Distinct(StringComparer.Ordinal).ToList(), options?.Concurrency ?? 8, cancellationToken).ConfigureAwait(false);
        var results = await new ImportChecker(connector, options).CheckAsync(items, null, cancellationToken).ConfigureAwait(false);
        return new CheckReport { Bundle = bundle, Results = results, Started = started, Elapsed = DateTimeOffset.UtcNow - started, Probe = probe };
    }
}
