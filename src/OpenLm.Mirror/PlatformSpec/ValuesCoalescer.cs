using OpenLm.Mirror.Yaml;

namespace OpenLm.Mirror.PlatformSpec;

/// <summary>A chart's values after coalescing, and the <c>global</c> mapping they hold.</summary>
internal sealed record ChartValues(YMapping Effective, YMapping Global);

/// <summary>
/// Helm's value coalescing over <see cref="YNode"/> trees, without rendering anything: a parent's values override
/// its subchart's defaults, nested mappings merge, a parent <c>null</c> deletes a default, parent globals override
/// subchart globals, and YAML merge keys (<c>&lt;&lt;: *base</c>) are expanded. Input trees are never changed;
/// results share the nodes they did not need to change.
/// </summary>
internal sealed class ValuesCoalescer
{
    private readonly Dictionary<YMapping, YMapping> _expanded = new(ReferenceEqualityComparer.Instance);

    /// <summary>
    /// The values a chart sees: <paramref name="overrides"/> (what its parent sets at the chart's key) over the
    /// chart's own <paramref name="defaults"/>, with <c>global</c> set to the parent's globals over the chart's own.
    /// </summary>
    /// <param name="parentGlobal">The parent's effective globals; null for the umbrella.</param>
    /// <param name="chartFile">Where an empty <c>global</c> made up for the umbrella is said to come from.</param>
    public ChartValues ForChart(YMapping? overrides, YMapping defaults, YMapping? parentGlobal, string chartFile)
    {
        var effective = Coalesce(overrides, defaults);
        var ownGlobal = effective.Get("global") as YMapping;
        var global = parentGlobal is null ? ownGlobal ?? new YMapping(chartFile, 1) : Coalesce(parentGlobal, ownGlobal);
        return new ChartValues(WithEntry(effective, "global", global), global);
    }

    /// <summary>Helm's coalescing: <paramref name="overrides"/> (parent) wins; nested mappings merge; a parent null deletes the key.</summary>
    public YMapping Coalesce(YMapping? overrides, YMapping? defaults)
    {
        if (overrides is null)
        {
            return defaults is null ? new YMapping("<none>", 1) : Expand(defaults);
        }

        var over = Expand(overrides);
        if (defaults is null)
        {
            return over;
        }

        var under = Expand(defaults);
        var result = new YMapping(under.File, under.Line);
        foreach (var entry in under.Effective)
        {
            var overriding = over.Get(entry.KeyText!);
            if (overriding is null)
            {
                result.Add(entry);
            }
            else if (overriding is YScalar { IsNull: true })
            {
                // deleted by the parent
            }
            else if (overriding is YMapping overMap && entry.Value is YMapping underMap)
            {
                result.Add(entry with { Value = Coalesce(overMap, underMap) });
            }
            else
            {
                result.Add(entry with { Value = overriding });
            }
        }

        foreach (var entry in over.Effective)
        {
            if (!under.ContainsKey(entry.KeyText!) && entry.Value is not YScalar { IsNull: true })
            {
                result.Add(entry);
            }
        }

        return result;
    }

    /// <summary>Applies YAML merge keys (<c>&lt;&lt;: *base</c>) and drops non-scalar keys; explicit keys win over merged ones.</summary>
    public YMapping Expand(YMapping mapping)
    {
        if (!mapping.ContainsKey("<<") && mapping.Entries.All(e => e.KeyText is not null))
        {
            return mapping;
        }

        if (_expanded.TryGetValue(mapping, out var cached))
        {
            return cached;
        }

        var result = new YMapping(mapping.File, mapping.Line);
        _expanded[mapping] = result;
        foreach (var entry in mapping.Effective)
        {
            if (entry.KeyText != "<<")
            {
                result.Add(entry);
            }
        }

        var sources = mapping.Get("<<") switch
        {
            YMapping single => [single],
            YSequence many => many.Items.OfType<YMapping>().ToList(),
            _ => new List<YMapping>(),
        };
        foreach (var source in sources)
        {
            foreach (var entry in Expand(source).Effective)
            {
                if (!result.ContainsKey(entry.KeyText!))
                {
                    result.Add(entry);
                }
            }
        }

        return result;
    }

    /// <summary>
    /// Whether Helm installs the subchart at <paramref name="key"/>: the first condition path that resolves to a
    /// boolean decides; otherwise the umbrella's tags; otherwise it is enabled. A condition path that starts with
    /// the subchart's own key is read from the subchart's coalesced values, any other from the parent's.
    /// </summary>
    public static bool DependencyEnabled(ChartDependency? dependency, string key, YMapping parentValues, YMapping childValues, YMapping? topTags)
    {
        if (dependency is null)
        {
            return true;
        }

        if (dependency.Condition is { } condition)
        {
            foreach (var path in condition.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var segments = path.Split('.');
                var value = segments[0] == key && segments.Length > 1
                    ? Lookup(childValues, segments.AsSpan(1))
                    : Lookup(parentValues, segments);
                if (value is YScalar scalar && scalar.AsBoolean() is { } decided)
                {
                    return decided;
                }
            }
        }

        if (dependency.Tags.Count > 0 && topTags is not null)
        {
            var states = dependency.Tags.Select(t => (topTags.Get(t) as YScalar)?.AsBoolean()).Where(b => b is not null).ToList();
            if (states.Count > 0)
            {
                return states.Any(b => b == true);
            }
        }

        return true;
    }

    /// <summary>True when the node is a scalar Helm reads as boolean false (<c>enabled: false</c>, <c>no</c>, <c>off</c>).</summary>
    public static bool IsFalse(YNode? node) => node is YScalar scalar && scalar.AsBoolean() == false;

    private static YMapping WithEntry(YMapping mapping, string key, YNode value)
    {
        var result = new YMapping(mapping.File, mapping.Line);
        var replaced = false;
        foreach (var entry in mapping.Effective)
        {
            if (entry.KeyText == key)
            {
                result.Add(entry with { Value = value });
                replaced = true;
            }
            else
            {
                result.Add(entry);
            }
        }

        if (!replaced)
        {
            result.Add(new YEntry(new YScalar(mapping.File, mapping.Line, key, YamlDotNet.Core.ScalarStyle.Plain, tag: null), value));
        }

        return result;
    }

    private static YNode? Lookup(YMapping mapping, ReadOnlySpan<string> segments)
    {
        YNode? current = mapping;
        foreach (var segment in segments)
        {
            current = (current as YMapping)?.Get(segment);
            if (current is null)
            {
                return null;
            }
        }

        return current;
    }
}
