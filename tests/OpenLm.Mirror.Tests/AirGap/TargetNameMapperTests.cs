using System.Text;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.AirGap;

public sealed class TargetNameMapperTests
{
    internal static Digest DigestOf(string text) => Digest.Sha256(Encoding.UTF8.GetBytes(text));

    private static Reference Map(string target, string source, params string[] maps) =>
        TargetNameMapper.Create(target, maps).Map(Reference.Parse(source));

    [Fact]
    public void TargetNameMapper_Map_SourceImagesGoUnderPrefix()
    {
        var target = Map("registry.corp:5000/openlm", "public.ecr.aws/r3q3q2f4/olm-server:1.2");
        Assert.Equal("registry.corp:5000/openlm/olm-server:1.2", target.ToString());
        Assert.Equal("registry.corp:5000", target.Registry);
        Assert.Equal("openlm/olm-server", target.Repository);
    }

    [Fact]
    public void TargetNameMapper_Map_SourceImagesWithoutPrefixGoToTheRoot()
    {
        Assert.Equal("registry.corp/olm-server:1.2", Map("registry.corp", "public.ecr.aws/r3q3q2f4/olm-server:1.2").ToString());
    }

    [Fact]
    public void TargetNameMapper_Map_OtherImagesKeepTheirRepositoryPath()
    {
        Assert.Equal("registry.corp:5000/openlm/library/mongo:7", Map("registry.corp:5000/openlm", "docker.io/library/mongo:7").ToString());
        Assert.Equal("registry.corp:5000/openlm/library/mongo:7", Map("registry.corp:5000/openlm", "mongo:7").ToString());
        Assert.Equal("registry.corp:5000/openlm/bitnami/kafka:3.7", Map("registry.corp:5000/openlm", "bitnami/kafka:3.7").ToString());
        Assert.Equal("registry.corp:5000/openlm/other/thing:1", Map("registry.corp:5000/openlm", "public.ecr.aws/other/thing:1").ToString());
    }

    [Fact]
    public void TargetNameMapper_Map_SourceMatchesOnlyAtPathBoundary()
    {
        // r3q3q2f4x is not under r3q3q2f4: it keeps its whole path.
        Assert.Equal("reg.local/p/r3q3q2f4x/a:1", Map("reg.local/p", "public.ecr.aws/r3q3q2f4x/a:1").ToString());
    }

    [Fact]
    public void TargetNameMapper_Map_KeepsDigest()
    {
        var digest = DigestOf("server");
        var target = Map("reg.local/p", $"public.ecr.aws/r3q3q2f4/olm-server:1.2@{digest}");
        Assert.Equal($"reg.local/p/olm-server:1.2@{digest}", target.ToString());
    }

    [Fact]
    public void TargetNameMapper_Map_UserRuleOverridesDefaults()
    {
        Assert.Equal("reg.local/p/thirdparty/bitnami/kafka:3.7", Map("reg.local/p", "docker.io/bitnami/kafka:3.7", "docker.io/bitnami=thirdparty/bitnami").ToString());
        Assert.Equal("reg.local/p/platform/olm-server:1", Map("reg.local/p", "public.ecr.aws/r3q3q2f4/olm-server:1", "public.ecr.aws/r3q3q2f4=platform").ToString());
    }

    [Fact]
    public void TargetNameMapper_Map_LongestFromPrefixWins()
    {
        string[] maps = ["docker.io=hub", "docker.io/bitnami=bn", "docker.io/bitnami/kafka=streaming/kafka"];
        Assert.Equal("reg.local/hub/library/mongo:7", Map("reg.local", "mongo:7", maps).ToString());
        Assert.Equal("reg.local/bn/redis:7", Map("reg.local", "bitnami/redis:7", maps).ToString());
        Assert.Equal("reg.local/streaming/kafka:3", Map("reg.local", "bitnami/kafka:3", maps).ToString());
        Assert.Equal("reg.local/bn/kafka-exporter:1", Map("reg.local", "bitnami/kafka-exporter:1", maps).ToString());
    }

    [Fact]
    public void TargetNameMapper_Map_EmptyToPutsImagesDirectlyUnderTarget()
    {
        Assert.Equal("reg.local/p/kafka:3", Map("reg.local/p", "bitnami/kafka:3", "docker.io/bitnami=").ToString());
    }

    [Fact]
    public void TargetNameMapper_Map_WholeNameRuleWithEmptyToAndNoPrefixIsRefused()
    {
        var e = Assert.Throws<InputException>(() => Map("reg.local", "bitnami/kafka:3", "docker.io/bitnami/kafka="));
        Assert.Contains("empty repository", e.Message);
    }

    [Fact]
    public void TargetNameMapper_Map_DigestOnlyImageGetsOpenLmDigestTag()
    {
        var digest = DigestOf("operator");
        var target = Map("reg.local/p", $"public.ecr.aws/r3q3q2f4/operator@{digest}");
        Assert.Equal($"openlm-sha256-{digest.Hex[..32]}", target.Tag);
        Assert.Equal(digest, target.Digest);
        Assert.Equal($"reg.local/p/operator:openlm-sha256-{digest.Hex[..32]}@{digest}", target.ToString());
    }

    [Theory]
    [InlineData("a")]
    [InlineData("b")]
    [InlineData("")]
    public void TargetNameMapper_DigestTag_IsValidAndNeverTheReferrersTag(string content)
    {
        var digest = DigestOf(content);
        var tag = TargetNameMapper.DigestTag(digest);
        Assert.True(Reference.IsValidTag(tag));
        Assert.NotEqual(digest.ToTagForm(), tag);
        Assert.False(tag.StartsWith("sha256-", StringComparison.Ordinal));
        Assert.StartsWith("openlm-sha256-", tag, StringComparison.Ordinal);
        Assert.Equal("openlm-sha256-".Length + 32, tag.Length);

        var sha512 = Digest.FromHash("sha512", System.Security.Cryptography.SHA512.HashData(Encoding.UTF8.GetBytes(content)));
        var tag512 = TargetNameMapper.DigestTag(sha512);
        Assert.True(Reference.IsValidTag(tag512));
        Assert.NotEqual(sha512.ToTagForm(), tag512);
    }

    [Fact]
    public void TargetNameMapper_MapAll_RefusesCollisionsNamingBothImages()
    {
        var mapper = TargetNameMapper.Create("reg.local/p");
        var e = Assert.Throws<InputException>(() => mapper.MapAll(
        [
            Reference.Parse("public.ecr.aws/r3q3q2f4/library/mongo:7"),
            Reference.Parse("docker.io/library/mongo:7"),
            Reference.Parse("docker.io/library/redis:7"),
        ]));
        Assert.Contains("public.ecr.aws/r3q3q2f4/library/mongo:7", e.Message);
        Assert.Contains("docker.io/library/mongo:7", e.Message);
        Assert.Contains("reg.local/p/library/mongo:7", e.Message);
        Assert.DoesNotContain("redis", e.Message);
    }

    [Fact]
    public void TargetNameMapper_MapAll_ListsEveryCollision()
    {
        var mapper = TargetNameMapper.Create("reg.local", ["quay.io/a=x", "quay.io/b=x"]);
        var e = Assert.Throws<InputException>(() => mapper.MapAll(
        [
            Reference.Parse("quay.io/a/one:1"),
            Reference.Parse("quay.io/b/one:1"),
            Reference.Parse("quay.io/a/two:1"),
            Reference.Parse("quay.io/b/two:1"),
        ]));
        Assert.Contains("2 target name collisions", e.Message);
        Assert.Contains("quay.io/a/two:1", e.Message);
        Assert.Contains("quay.io/b/two:1", e.Message);
    }

    [Fact]
    public void TargetNameMapper_MapAll_RefusesSameTagWithDifferentDigests()
    {
        var mapper = TargetNameMapper.Create("reg.local");
        var a = Reference.Parse($"mongo:7@{DigestOf("a")}");
        var b = Reference.Parse($"mongo:7@{DigestOf("b")}");
        var e = Assert.Throws<InputException>(() => mapper.MapAll([a, b]));
        Assert.Contains(a.ToString(), e.Message);
        Assert.Contains(b.ToString(), e.Message);
    }

    [Fact]
    public void TargetNameMapper_MapAll_RefusesDigestOnlyImagesFromDifferentSourcesWithOneTag()
    {
        var mapper = TargetNameMapper.Create("reg.local", ["quay.io/a=x", "quay.io/b=x"]);
        var digest = DigestOf("same");
        var a = Reference.Parse($"quay.io/a/op@{digest}");
        var b = Reference.Parse($"quay.io/b/op@{digest}");
        var e = Assert.Throws<InputException>(() => mapper.MapAll([a, b]));
        Assert.Contains(a.ToString(), e.Message);
        Assert.Contains(b.ToString(), e.Message);
    }

    [Fact]
    public void TargetNameMapper_MapAll_AcceptsTheSameImageTwiceAndTagWithAndWithoutDigest()
    {
        var mapper = TargetNameMapper.Create("reg.local");
        var digest = DigestOf("mongo");
        var result = mapper.MapAll(
        [
            Reference.Parse("mongo:7"),
            Reference.Parse($"mongo:7@{digest}"),
            Reference.Parse("docker.io/library/mongo:7"),
            Reference.Parse($"mongo@{digest}"),
        ]);
        Assert.Equal(3, result.Count);
        Assert.Equal("reg.local/library/mongo:7", result[0].Target.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("registry")]
    [InlineData("https://registry.corp")]
    [InlineData("registry.corp/Upper")]
    [InlineData("registry.corp/a//b")]
    [InlineData("registry.corp/a:tag")]
    [InlineData("registry.corp/a@sha256:00")]
    [InlineData("-bad-.corp/a")]
    [InlineData("registry.corp:port/a")]
    [InlineData("registry corp/a")]
    [InlineData("docker.io/openlm")]
    public void TargetNameMapper_Create_RefusesBadTarget(string target)
    {
        var e = Assert.Throws<InputException>(() => TargetNameMapper.Create(target));
        Assert.Contains($"'{target}'", e.Message);
    }

    [Theory]
    [InlineData("registry.corp", "registry.corp", "")]
    [InlineData("registry.corp:5000/", "registry.corp:5000", "")]
    [InlineData("localhost:5000/a/b", "localhost:5000", "a/b")]
    [InlineData("localhost/a", "localhost", "a")]
    [InlineData("10.0.0.5:443/open_lm/x-y", "10.0.0.5:443", "open_lm/x-y")]
    public void MirrorTarget_Parse_SplitsHostAndPrefix(string text, string host, string prefix)
    {
        var target = MirrorTarget.Parse(text);
        Assert.Equal(host, target.Host);
        Assert.Equal(prefix, target.Prefix);
    }

    [Theory]
    [InlineData("docker.io/bitnami")]
    [InlineData("bitnami=x")]
    [InlineData("docker.io/Bitnami=x")]
    [InlineData("docker.io/bitnami/kafka:3=x")]
    [InlineData("docker.io/bitnami=other.registry/x")]
    [InlineData("docker.io/bitnami=a//b")]
    [InlineData("docker.io/bitnami=UP")]
    [InlineData("=x")]
    public void TargetNameMapper_Create_RefusesBadMapRules(string map)
    {
        var e = Assert.Throws<InputException>(() => TargetNameMapper.Create("reg.local", [map]));
        Assert.Equal(Setting.NameMap, e.Setting);
    }

    [Fact]
    public void TargetNameMapper_Create_RefusesDuplicateFrom()
    {
        var e = Assert.Throws<InputException>(() => TargetNameMapper.Create("reg.local", ["docker.io/bitnami=a", "docker.io/bitnami/=b"]));
        Assert.Contains("docker.io/bitnami=a", e.Message);
        Assert.Contains("docker.io/bitnami=b", e.Message);
    }

    [Fact]
    public void NameMapRule_Parse_NormalisesDockerHubAliases()
    {
        var rule = NameMapRule.Parse("index.docker.io/bitnami/=/thirdparty/");
        Assert.Equal("docker.io/bitnami", rule.From);
        Assert.Equal("thirdparty", rule.To);
        Assert.Equal("reg.local/thirdparty/kafka:1", new TargetNameMapper(MirrorTarget.Parse("reg.local"), rules: [rule]).Map(Reference.Parse("bitnami/kafka:1")).ToString());
    }

    [Fact]
    public void TargetNameMapper_Map_CustomPlatformSource()
    {
        var mapper = TargetNameMapper.Create("reg.local/p", platformSource: "ghcr.io/openlm");
        Assert.Equal("reg.local/p/server:1", mapper.Map(Reference.Parse("ghcr.io/openlm/server:1")).ToString());
        Assert.Equal("reg.local/p/r3q3q2f4/server:1", mapper.Map(Reference.Parse("public.ecr.aws/r3q3q2f4/server:1")).ToString());
    }
}
