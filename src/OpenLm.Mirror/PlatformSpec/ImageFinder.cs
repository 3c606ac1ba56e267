using System.Text;
using System.Text.RegularExpressions;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Yaml;

namespace OpenLm.Mirror.PlatformSpec;

/// <summary>The chart whose effective values are being searched, and its effective <c>global</c> mapping.</summary>
/// <param name="ChartPath">See <see cref="ScannedChart.ChartPath"/>.</param>
internal sealed record ImageScope(ChartMeta Meta, string ChartPath, YMapping Global);

/// <summary>
/// Finds images in coalesced chart values. Image rule: a key named exactly <c>image</c> whose value is (a) a
/// string, a whole reference, or (b) a mapping with a <c>repository</c> key: split keys <c>registry</c>/
/// <c>repository</c>/<c>tag</c>/<c>digest</c>, where a non-empty effective <c>global.imageRegistry</c> replaces
/// <c>registry</c> and a chart's <c>appVersion</c> stands in for a missing tag. Every finding names its values
/// path (as seen from the umbrella) and the file and line that set it.
/// </summary>
internal sealed partial class ImageFinder(ValuesCoalescer values, IReadOnlyDictionary<string, int> valuesFileDepth)
{
    /// <summary>Bounds the walk: aliases share nodes, so a small file can stand for a huge tree ("billion laughs").</summary>
    private const int MaxVisitedNodes = 5_000_000;

    private int _visited;

    public List<ChartImageFinding> Findings { get; } = [];

    public List<InvalidImageReference> Invalid { get; } = [];

    /// <summary>Searches the value at <paramref name="key"/> of a mapping at <paramref name="path"/>.</summary>
    /// <param name="enabled">False when the chart or a mapping above is turned off; findings are kept and flagged.</param>
    public void SearchEntry(ImageScope scope, string key, YNode value, string path, bool enabled)
    {
        var childPath = ValuesPath.AppendKey(path, key);
        if (key == "image" && TryImage(scope, value, childPath, enabled))
        {
            return;
        }

        Search(scope, value, childPath, enabled);
    }

    private void Search(ImageScope scope, YNode node, string path, bool enabled)
    {
        if (++_visited > MaxVisitedNodes)
        {
            throw new InputException($"{node.File}: values too large or too many YAML aliases (more than {MaxVisitedNodes} nodes visited)");
        }

        switch (node)
        {
            case YMapping raw:
                var mapping = values.Expand(raw);
                var here = enabled && !ValuesCoalescer.IsFalse(mapping.Get("enabled"));
                foreach (var entry in mapping.Effective)
                {
                    SearchEntry(scope, entry.KeyText!, entry.Value, path, here);
                }

                break;
            case YSequence sequence:
                for (var i = 0; i < sequence.Items.Count; i++)
                {
                    Search(scope, sequence.Items[i], ValuesPath.AppendIndex(path, i), enabled);
                }

                break;
        }
    }

    /// <summary>Handles the value of a key named <c>image</c>; false when it is not an image (then the caller descends into it).</summary>
    private bool TryImage(ImageScope scope, YNode value, string path, bool enabled)
    {
        switch (value)
        {
            case YScalar scalar:
                // image: 3 or image: true is a chart's own setting, not a reference; an empty slot holds nothing to mirror.
                if (!scalar.IsNull && !IsNonStringPlain(scalar) && !string.IsNullOrWhiteSpace(scalar.Value))
                {
                    Record(scope, ImageFindingKind.FullString, path, scalar.Value, scalar, enabled, usesGlobal: false, tagFromAppVersion: false);
                }

                return true;
            case YMapping raw:
                var mapping = values.Expand(raw);
                if (!mapping.ContainsKey("repository"))
                {
                    return false;
                }

                SplitImage(scope, mapping, path + ValuesPath.SplitSuffix, enabled && !ValuesCoalescer.IsFalse(mapping.Get("enabled")));
                return true;
            default:
                return false;
        }
    }

    private void SplitImage(ImageScope scope, YMapping mapping, string path, bool enabled)
    {
        var repositoryNode = mapping.Get("repository");
        if (repositoryNode is not YScalar repositoryScalar)
        {
            AddInvalid(scope, path, mapping, $"<{repositoryNode?.KindName}>", "image.repository must be a string", enabled);
            return;
        }

        var repository = repositoryScalar.Text?.Trim();
        if (string.IsNullOrEmpty(repository))
        {
            // An image slot left empty on purpose (optional sidecar): nothing to mirror.
            return;
        }

        var contributors = new List<YScalar> { repositoryScalar };
        var registry = Part(mapping, "registry", contributors);
        var tag = Part(mapping, "tag", contributors);
        var digest = Part(mapping, "digest", contributors);
        var usesGlobal = scope.Global.ContainsKey("imageRegistry");
        if (scope.Global.Get("imageRegistry") is YScalar globalRegistry && !string.IsNullOrWhiteSpace(globalRegistry.Text))
        {
            registry = globalRegistry.Text.Trim();
            contributors.Add(globalRegistry);
        }

        var tagFromAppVersion = false;
        if (tag is null && digest is null && !string.IsNullOrWhiteSpace(scope.Meta.AppVersion))
        {
            // The helm create convention: the templates default the tag to .Chart.AppVersion.
            tag = scope.Meta.AppVersion.Trim();
            tagFromAppVersion = true;
        }

        // Blame the file closest to the umbrella: that is where the effective value was set.
        var blame = contributors.OrderBy(c => valuesFileDepth.GetValueOrDefault(c.File, int.MaxValue)).First();
        Record(scope, ImageFindingKind.Split, path, Compose(registry, repository, tag, digest), blame, enabled, usesGlobal, tagFromAppVersion);
    }

    /// <summary>The trimmed text of a split key, remembering the scalar that set it; null when absent or blank.</summary>
    private static string? Part(YMapping mapping, string key, List<YScalar> contributors)
    {
        if (mapping.Get(key) is YScalar s && !string.IsNullOrWhiteSpace(s.Text))
        {
            contributors.Add(s);
            return s.Text.Trim();
        }

        return null;
    }

    private static string Compose(string? registry, string repository, string? tag, string? digest)
    {
        var composed = new StringBuilder();
        if (registry is not null)
        {
            composed.Append(registry.TrimEnd('/')).Append('/');
        }

        composed.Append(repository);
        if (tag is not null)
        {
            composed.Append(':').Append(tag);
        }

        if (digest is not null)
        {
            composed.Append('@').Append(digest);
        }

        return composed.ToString();
    }

    private void Record(ImageScope scope, ImageFindingKind kind, string path, string raw, YNode at, bool enabled, bool usesGlobal, bool tagFromAppVersion)
    {
        if (raw.Contains("{{", StringComparison.Ordinal))
        {
            AddInvalid(scope, path, at, raw, $"'{raw}' is a template expression; charts are read as data and templates are not rendered", enabled);
            return;
        }

        if (!Reference.TryParse(raw, out var reference, out var error))
        {
            AddInvalid(scope, path, at, raw, error, enabled);
            return;
        }

        Findings.Add(new ChartImageFinding
        {
            ChartName = scope.Meta.Name,
            ChartVersion = scope.Meta.Version,
            ChartPath = scope.ChartPath,
            File = at.File,
            Line = at.Line,
            ValuesPath = path,
            Kind = kind,
            Reference = reference,
            Enabled = enabled,
            UsesGlobalImageRegistry = usesGlobal && kind == ImageFindingKind.Split,
            TagFromAppVersion = tagFromAppVersion,
        });
    }

    private void AddInvalid(ImageScope scope, string path, YNode at, string raw, string error, bool enabled) =>
        Invalid.Add(new InvalidImageReference
        {
            ChartName = scope.Meta.Name,
            ChartVersion = scope.Meta.Version,
            ChartPath = scope.ChartPath,
            File = at.File,
            Line = at.Line,
            ValuesPath = path,
            Raw = raw,
            Error = error,
            Enabled = enabled,
        });

    private static bool IsNonStringPlain(YScalar scalar) =>
        scalar.IsPlain && scalar.Tag is null && (scalar.AsBoolean() is not null || NumberPattern().IsMatch(scalar.Value));

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$|^0x[0-9a-fA-F_]+$|^0o?[0-7_]+$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$", RegexOptions.CultureInvariant)]
    private static partial Regex NumberPattern();
}
