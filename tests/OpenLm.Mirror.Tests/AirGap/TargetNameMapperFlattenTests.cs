using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.AirGap;

/// <summary>Path flattening in the name mapper: every command that maps names (import, check, values, nodes) gets it.</summary>
public sealed class TargetNameMapperFlattenTests
{
    private static string Map(string target, string source, int? max = null) =>
        TargetNameMapper.Create(target, maxPathComponents: max).Map(Reference.Parse(source)).ToString();

    [Fact]
    public void Map_DeeperThanLimit_JoinsExcessComponentsWithDash()
    {
        Assert.Equal("registry.corp/openlm/library-mongo:7", Map("registry.corp/openlm", "docker.io/library/mongo:7", 2));
        Assert.Equal("registry.corp/openlm/a/b-c-d:1", Map("registry.corp/openlm", "quay.io/a/b/c/d:1", 3));
        Assert.Equal("registry.corp/library-mongo:7", Map("registry.corp", "docker.io/library/mongo:7", 1));
    }

    [Fact]
    public void Map_WithinLimit_Unchanged()
    {
        Assert.Equal("registry.corp/openlm/olm-server:1.2", Map("registry.corp/openlm", "public.ecr.aws/r3q3q2f4/olm-server:1.2", 2));
        Assert.Equal("registry.corp/openlm/library/mongo:7", Map("registry.corp/openlm", "docker.io/library/mongo:7"));
    }

    [Theory]
    [InlineData("registry.corp/openlm", "registry.corp/openlm/library/mongo:7")]
    [InlineData("registry.gitlab.com/group/project", "registry.gitlab.com/group/project/library/mongo:7")]
    [InlineData("registry.gitlab.com/group", "registry.gitlab.com/group/library/mongo:7")]
    public void Map_KnownHost_AppliesItsOwnLimit(string target, string expected)
    {
        Assert.Equal(expected, Map(target, "docker.io/library/mongo:7"));
    }

    [Fact]
    public void Map_GitLabDeeperThanProjectPlusTwo_Flattened()
    {
        Assert.Equal(
            "registry.gitlab.com/group/project/quay-a/b-c:1",
            Map("registry.gitlab.com/group/project", "quay.io/quay-a/b/c:1"));
        Assert.Equal(
            "registry.gitlab.com/group/project/a/b-c:1",
            Map("registry.gitlab.com/group/project", "quay.io/a/b/c:1"));
    }

    [Fact]
    public void Map_ExplicitLimitOverridesTheHost()
    {
        Assert.Equal("registry.gitlab.com/g/library-mongo:7", Map("registry.gitlab.com/g", "docker.io/library/mongo:7", 2));
    }

    [Fact]
    public void Flatten_IsDeterministic()
    {
        Assert.Equal("openlm/library-mongo", TargetNameMapper.Flatten("openlm/library/mongo", 2));
        Assert.Equal(TargetNameMapper.Flatten("a/b/c/d/e", 2), TargetNameMapper.Flatten("a/b/c/d/e", 2));
        Assert.Equal("a/b", TargetNameMapper.Flatten("a/b", 2));
    }

    [Fact]
    public void MapAll_FlatteningCollision_RefusedNamingBothSourcesAndTheFlattening()
    {
        var mapper = TargetNameMapper.Create("registry.corp/openlm", maxPathComponents: 2);

        var error = Assert.Throws<InputException>(() => mapper.MapAll([Reference.Parse("quay.io/a/b-c:1"), Reference.Parse("quay.io/a-b/c:1")]));

        Assert.Contains("openlm/a-b-c:1", error.Message);
        Assert.Contains("quay.io/a/b-c:1", error.Message);
        Assert.Contains("quay.io/a-b/c:1", error.Message);
        Assert.Contains("flattened to at most 2 path components", error.Message);
    }

    [Fact]
    public void Create_PrefixAsDeepAsTheLimit_RefusedNamingThePrefix()
    {
        var error = Assert.Throws<InputException>(() => TargetNameMapper.Create("registry.corp/openlm/sub", maxPathComponents: 2));

        Assert.Contains("'openlm/sub' has 2 path components", error.Message);
        Assert.Equal(Setting.Target, error.Setting);
    }

    [Fact]
    public void Create_LimitBelowOne_Refused()
    {
        var error = Assert.Throws<InputException>(() => TargetNameMapper.Create("registry.corp", maxPathComponents: 0));

        Assert.Equal(Setting.MaxPathComponents, error.Setting);
    }
}
