using OpenLm.Mirror.Yaml;

namespace OpenLm.Mirror.PlatformSpec;

/// <summary>How a chart declares the pull secrets it reads, taken from the default it ships.</summary>
public enum PullSecretShape
{
    /// <summary><c>imagePullSecrets: [{name: X}]</c>: the Kubernetes pod field, passed through (<c>toYaml</c>).</summary>
    ObjectList,

    /// <summary><c>imagePullSecrets: [X]</c>: Bitnami's <c>global.imagePullSecrets</c>.</summary>
    StringList,

    /// <summary><c>imagePullSecrets: {name: X}</c>: OpenLM's subcharts, whose templates read <c>.Values.imagePullSecrets.name</c>.</summary>
    NameMapping,

    /// <summary><c>imagePullSecrets: "X"</c>: a chart that takes one secret name as a string.</summary>
    NameString,
}

/// <summary>A values path that takes pull secrets (<c>server.imagePullSecrets</c>) and the shape its chart declares there.</summary>
public sealed record PullSecretSlot(IReadOnlyList<string> Path, PullSecretShape Shape);

/// <summary>
/// One top-level Helm chart as shipped (e.g. read from the bundle): its scan (every image values path it holds) and
/// its default values, which tell where and in what shape the chart takes pull secrets. A values file must follow the
/// chart's shape: Helm keeps a user's list over a default mapping ("cannot overwrite table with non table") and the
/// template reading <c>.Values.imagePullSecrets.name</c> then fails; a user's mapping over a default list is kept
/// the same way and breaks a template that ranges over the list.
/// </summary>
public sealed class ChartDefaults
{
    private const string PullSecretsKey = "imagePullSecrets";
    private readonly LoadedChart _root;

    private ChartDefaults(ChartScanResult scan, LoadedChart root)
    {
        Scan = scan;
        _root = root;
    }

    public string Name => Scan.ChartName;

    public string Version => Scan.ChartVersion;

    public ChartScanResult Scan { get; }

    /// <summary>Reads a chart archive (<c>.tgz</c>) from a seekable stream; malformed image references are skipped (the scan at export time reported them).</summary>
    public static ChartDefaults Read(Stream archive, string displayName, ChartScanOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(archive);
        options = (options ?? ChartScanOptions.Default) with { SkipInvalid = true };
        var scan = ChartScanner.ScanArchive(archive, displayName, options, out var root);
        return new ChartDefaults(scan, root);
    }

    /// <summary>True when the chart's values (its own, or a subchart's key) have <paramref name="key"/> at the top.</summary>
    public bool HasTopLevelKey(string key) =>
        _root.Values.ContainsKey(key) || _root.Children.Any(c => c.Key == key);

    /// <summary>True when the chart's scan found <paramref name="valuesPath"/> holding <paramref name="reference"/>.</summary>
    public bool Holds(string valuesPath, string reference) =>
        Scan.Findings.Any(f => f.ValuesPath == valuesPath && f.Reference.ToString() == reference);

    /// <summary>True when the chart's scan found <paramref name="valuesPath"/> at all.</summary>
    public bool HoldsPath(string valuesPath) => Scan.Findings.Any(f => f.ValuesPath == valuesPath);

    /// <summary>
    /// Where the pull secrets for the image at <paramref name="imagePath"/> (keys from the top, the <c>image</c> key
    /// last) go: the nearest enclosing mapping, within the chart that owns the image, whose default declares
    /// <c>imagePullSecrets</c>. Null when none does.
    /// </summary>
    public PullSecretSlot? PullSecretsFor(IReadOnlyList<string> imagePath)
    {
        ArgumentNullException.ThrowIfNull(imagePath);
        var ownerDepth = OwningChartDepth(imagePath);
        for (var k = imagePath.Count - 1; k >= ownerDepth; k--)
        {
            var path = imagePath.Take(k).Append(PullSecretsKey).ToList();
            if (Lookup(_root, path) is { } node && ShapeOf(node, global: false) is { } shape)
            {
                return new PullSecretSlot(path, shape);
            }
        }

        return null;
    }

    /// <summary>True when the chart's defaults (its own or a subchart's, as seen from the top) hold a value at <paramref name="path"/>.</summary>
    public bool Declares(IReadOnlyList<string> path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Lookup(_root, path) is not null;
    }

    /// <summary>The shape of <c>global.imagePullSecrets</c> (the umbrella's default, else the first subchart's that declares one); a string list when none does.</summary>
    public PullSecretShape GlobalPullSecretShape()
    {
        var node = FindGlobal(_root);
        return node is null ? PullSecretShape.StringList : ShapeOf(node, global: true) ?? PullSecretShape.StringList;
    }

    /// <summary>How many leading keys of the path lead through subchart keys (the depth of the chart that owns the path).</summary>
    private int OwningChartDepth(IReadOnlyList<string> path)
    {
        var chart = _root;
        var depth = 0;
        while (depth < path.Count - 1 && chart.Children.FirstOrDefault(c => c.Key == path[depth]) is { } link)
        {
            chart = link.Chart;
            depth++;
        }

        return depth;
    }

    /// <summary>The default at <paramref name="path"/>: the chart's own values win over a subchart's (as Helm coalesces them).</summary>
    private static YNode? Lookup(LoadedChart chart, IReadOnlyList<string> path)
    {
        if (Get(chart.Values, path) is { } own && !(own is YScalar { IsNull: true }))
        {
            return own;
        }

        if (path.Count > 1 && chart.Children.FirstOrDefault(c => c.Key == path[0]) is { } link)
        {
            return Lookup(link.Chart, path.Skip(1).ToList());
        }

        return null;
    }

    private static YNode? FindGlobal(LoadedChart chart)
    {
        if (Get(chart.Values, ["global", PullSecretsKey]) is { } own && !(own is YScalar { IsNull: true }))
        {
            return own;
        }

        return chart.Children.Select(c => FindGlobal(c.Chart)).FirstOrDefault(n => n is not null);
    }

    private static YNode? Get(YMapping mapping, IReadOnlyList<string> path)
    {
        YNode? node = mapping;
        foreach (var key in path)
        {
            node = (node as YMapping)?.Get(key);
            if (node is null)
            {
                return null;
            }
        }

        return node;
    }

    private static PullSecretShape? ShapeOf(YNode node, bool global) => node switch
    {
        YMapping => PullSecretShape.NameMapping,
        YSequence { Items.Count: > 0 } list => list.Items[0] is YScalar ? PullSecretShape.StringList : PullSecretShape.ObjectList,
        YSequence => global ? PullSecretShape.StringList : PullSecretShape.ObjectList,
        YScalar { IsNull: false } => PullSecretShape.NameString,
        _ => null,
    };
}
