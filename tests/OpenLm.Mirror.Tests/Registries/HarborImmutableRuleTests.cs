using System.Text.Json.Nodes;
using OpenLm.Mirror.Harbor;
using Xunit;

namespace OpenLm.Mirror.Tests.Registries;

/// <summary>Harbor's tag immutability rules as its API lists them, matched with doublestar semantics.</summary>
public sealed class HarborImmutableRuleTests
{
    [Theory]
    [InlineData("**", "team/olm-server", true)]
    [InlineData("*", "olm-server", true)]
    [InlineData("*", "team/olm-server", false)]
    [InlineData("team/**", "team/a/b", true)]
    [InlineData("olm-*", "olm-server", true)]
    [InlineData("olm-*", "mongo", false)]
    [InlineData("{olm-server,mongo}", "mongo", true)]
    [InlineData("{olm-server,mongo}", "redis", false)]
    [InlineData("1.?", "1.2", true)]
    [InlineData("1.?", "1.20", false)]
    [InlineData("v[0-9]*", "v1.2", true)]
    [InlineData("v[!0-9]*", "v1.2", false)]
    [InlineData("a.b", "axb", false)]
    public void HarborPattern_Matches_FollowsDoublestar(string pattern, string value, bool expected) =>
        Assert.Equal(expected, HarborPattern.Matches(pattern, value));

    [Fact]
    public void ParseList_HarborShape_ProtectsOnlyWhatBothSelectorsSelect()
    {
        // Given the list Harbor's API answers: one enabled rule for olm-* except tag 'latest', one disabled for everything
        var body = JsonNode.Parse("""
            [
              {"id":1,"project_id":3,"disabled":false,"priority":0,"action":"immutable","template":"immutable_template",
               "tag_selectors":[{"kind":"doublestar","decoration":"excludes","pattern":"latest"}],
               "scope_selectors":{"repository":[{"kind":"doublestar","decoration":"repoMatches","pattern":"olm-*"}]}},
              {"id":2,"project_id":3,"disabled":true,"action":"immutable","template":"immutable_template",
               "tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"**"}],
               "scope_selectors":{"repository":[{"kind":"doublestar","decoration":"repoMatches","pattern":"**"}]}}
            ]
            """);

        var rules = HarborImmutableRule.ParseList(body);

        Assert.Equal(2, rules.Count);
        Assert.Contains(rules, r => r.Protects("olm-server", "1.2"));
        Assert.DoesNotContain(rules, r => r.Protects("olm-server", "latest"));
        Assert.DoesNotContain(rules, r => r.Protects("mongo", "7"));
    }

    [Fact]
    public void ParseList_RepoExcludes_ProtectsEveryOtherRepository()
    {
        var body = JsonNode.Parse("""
            [{"disabled":false,"action":"immutable","tag_selectors":[{"decoration":"matches","pattern":"**"}],
              "scope_selectors":{"repository":[{"decoration":"repoExcludes","pattern":"scratch/**"}]}}]
            """);

        var rule = Assert.Single(HarborImmutableRule.ParseList(body));

        Assert.True(rule.Protects("olm-server", "1"));
        Assert.False(rule.Protects("scratch/x", "1"));
    }
}
