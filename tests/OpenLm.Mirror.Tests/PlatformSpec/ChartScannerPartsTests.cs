using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.TestFixtures;
using OpenLm.Mirror.Yaml;
using Xunit;

namespace OpenLm.Mirror.Tests.PlatformSpec;

public sealed class ChartScannerPartsTests : IDisposable
{
    private readonly ScratchDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static YMapping Values(string yaml, string file = "values.yaml") => (YMapping)YamlTree.Parse(yaml, file)!;

    [Fact]
    public void ValuesCoalescer_Coalesce_ParentWinsMergesNestedAndNullDeletes()
    {
        // Given subchart defaults and umbrella overrides
        var defaults = Values("image:\n  repository: a\n  tag: '1'\nkeep: k\ndrop: d\n");
        var overrides = Values("image:\n  tag: '2'\ndrop: null\nextra: e\n");

        // When coalesced
        var result = new ValuesCoalescer().Coalesce(overrides, defaults);

        // Then the parent's tag wins, the default repository stays, null deletes and new keys are added
        var image = (YMapping)result.Get("image")!;
        Assert.Equal("a", image.GetText("repository"));
        Assert.Equal("2", image.GetText("tag"));
        Assert.Equal("k", result.GetText("keep"));
        Assert.False(result.ContainsKey("drop"));
        Assert.Equal("e", result.GetText("extra"));
    }

    [Fact]
    public void ValuesCoalescer_ForChart_ParentGlobalsOverrideOwnGlobals()
    {
        var own = Values("global:\n  imageRegistry: own.example\n  other: o\n");
        var parentGlobal = Values("imageRegistry: parent.example\n");

        var (effective, global) = new ValuesCoalescer().ForChart(null, own, parentGlobal, "Chart.yaml");

        Assert.Equal("parent.example", global.GetText("imageRegistry"));
        Assert.Equal("o", global.GetText("other"));
        Assert.Same(global, effective.Get("global"));
    }

    [Fact]
    public void ValuesCoalescer_Expand_ExplicitKeysWinOverMergedOnes()
    {
        var root = Values("base: &b\n  repository: r\n  tag: t\nimage:\n  <<: *b\n  tag: mine\n");

        var image = new ValuesCoalescer().Expand((YMapping)root.Get("image")!);

        Assert.Equal("r", image.GetText("repository"));
        Assert.Equal("mine", image.GetText("tag"));
        Assert.False(image.ContainsKey("<<"));
    }

    [Theory]
    [InlineData("sub:\n  enabled: false\n", "sub.enabled", false)]
    [InlineData("sub:\n  enabled: true\n", "missing.path,sub.enabled", true)]
    [InlineData("other: 1\n", "sub.enabled", true)]
    public void ValuesCoalescer_DependencyEnabled_FirstBooleanConditionDecides(string parent, string condition, bool expected)
    {
        var parentValues = Values(parent);
        var dependency = new ChartDependency("sub", "1.0.0", null, condition, []);
        var child = new ValuesCoalescer().Coalesce(parentValues.Get("sub") as YMapping, null);

        Assert.Equal(expected, ValuesCoalescer.DependencyEnabled(dependency, "sub", parentValues, child, topTags: null));
    }

    [Fact]
    public void ImageFinder_SearchEntry_FindsFullAndSplitImagesWithPathsAndLines()
    {
        // Given values with a full-string image, a split image under global.imageRegistry and a non-image key
        var values = Values("server:\n  image: docker.io/a/server:1\nkafka:\n  image:\n    registry: docker.io\n    repository: bitnami/kafka\n    tag: '3.7'\ninitImage: x/y:1\n");
        var global = Values("imageRegistry: mirror.example\n", "global.yaml");
        var finder = new ImageFinder(new ValuesCoalescer(), new Dictionary<string, int> { ["values.yaml"] = 0, ["global.yaml"] = 1 });
        var scope = new ImageScope(new ChartMeta("c", "1.0.0", null, [], "c/Chart.yaml"), "c", global);

        // When every top-level entry is searched
        foreach (var entry in values.Effective)
        {
            finder.SearchEntry(scope, entry.KeyText!, entry.Value, "prefix", enabled: true);
        }

        // Then both images are found; the split one uses the global registry and is blamed on values.yaml (closer to the umbrella)
        Assert.Empty(finder.Invalid);
        Assert.Collection(
            finder.Findings.OrderBy(f => f.ValuesPath, StringComparer.Ordinal),
            kafka =>
            {
                Assert.Equal("prefix.kafka.image.*", kafka.ValuesPath);
                Assert.Equal("mirror.example/bitnami/kafka:3.7", kafka.Reference.ToString());
                Assert.True(kafka.UsesGlobalImageRegistry);
                Assert.Equal("values.yaml", kafka.File);
                Assert.Equal(6, kafka.Line);
            },
            server =>
            {
                Assert.Equal("prefix.server.image", server.ValuesPath);
                Assert.Equal("docker.io/a/server:1", server.Reference.ToString());
                Assert.Equal(2, server.Line);
            });
    }

    [Fact]
    public void ImageFinder_SearchEntry_ReportsTemplatesAsInvalidAndSkipsNumbers()
    {
        var values = Values("a:\n  image: '{{ .Values.x }}'\nb:\n  image: 3\n");
        var finder = new ImageFinder(new ValuesCoalescer(), new Dictionary<string, int>());
        var scope = new ImageScope(new ChartMeta("c", "1.0.0", null, [], "c/Chart.yaml"), "c", Values("{}\n"));

        foreach (var entry in values.Effective)
        {
            finder.SearchEntry(scope, entry.KeyText!, entry.Value, string.Empty, enabled: false);
        }

        Assert.Empty(finder.Findings);
        var invalid = Assert.Single(finder.Invalid);
        Assert.Equal("a.image", invalid.ValuesPath);
        Assert.False(invalid.Enabled);
        Assert.Contains("template expression", invalid.Error);
    }

    [Fact]
    public void ChartLoader_Load_MatchesAliasedDependencyAndReportsMissingOne()
    {
        // Given an umbrella with one vendored, aliased subchart and one dependency that is not vendored
        var root = Path.Combine(_dir.Path, "umbrella");
        Directory.CreateDirectory(Path.Combine(root, "charts", "sub"));
        File.WriteAllText(Path.Combine(root, "Chart.yaml"), "name: umbrella\nversion: 1.0.0\ndependencies:\n  - name: sub\n    alias: first\n    condition: first.enabled\n  - name: gone\n");
        File.WriteAllText(Path.Combine(root, "charts", "sub", "Chart.yaml"), "name: sub\nversion: 2.0.0\nappVersion: '9'\n");
        var options = ChartScanOptions.Default;
        var loader = new ChartLoader(options);

        // When it is loaded
        var chart = loader.Load(ChartLoader.Open(root, options));

        // Then the subchart is linked under its alias and the missing one is one error naming Chart.yaml
        Assert.NotNull(chart);
        var link = Assert.Single(chart.Children);
        Assert.Equal("first", link.Key);
        Assert.Equal("sub", link.Chart.Meta.Name);
        Assert.Equal("9", link.Chart.Meta.AppVersion);
        Assert.Equal("first.enabled", link.Dependency!.Condition);
        var error = Assert.Single(loader.Errors);
        Assert.Contains("umbrella/Chart.yaml: dependency 'gone' is not present under charts/", error);
        Assert.Equal(0, loader.ValuesFileDepth["umbrella/values.yaml"]);
        Assert.Equal(1, loader.ValuesFileDepth["umbrella/charts/sub/values.yaml"]);
    }
}
