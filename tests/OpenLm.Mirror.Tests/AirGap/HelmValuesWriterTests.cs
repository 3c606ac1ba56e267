using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using Xunit;
using static OpenLm.Mirror.Tests.AirGap.TargetNameMapperTests;

namespace OpenLm.Mirror.Tests.AirGap;

public sealed class HelmValuesWriterTests
{
    internal static readonly Digest ServerDigest = DigestOf("server");
    internal static readonly Digest JobDigest = DigestOf("job");
    internal static readonly Digest KafkaDigest = DigestOf("kafka");
    internal static readonly Digest MongoDigest = DigestOf("mongo");

    internal static readonly TargetNameMapper Mapper = TargetNameMapper.Create("registry.corp:5000/openlm");

    internal static List<HelmImageUse> Images() =>
    [
        new("server.deployment.image", Reference.Parse($"public.ecr.aws/r3q3q2f4/olm-server:1.2@{ServerDigest}")),
        new("migrations.job.image", Reference.Parse($"public.ecr.aws/r3q3q2f4/olm-migrations:1.2@{JobDigest}")),
        new("kafka.image.*", Reference.Parse($"docker.io/bitnami/kafka:3.7.0-debian-12-r0@{KafkaDigest}"), UsesGlobalImageRegistry: true),
        new("mongodb.image.*", Reference.Parse($"docker.io/bitnami/mongodb:7.0@{MongoDigest}")),
    ];

    [Fact]
    public void HelmValuesWriter_WriteOverrides_PinsFullStringPathsByDigest()
    {
        var values = YamlPaths.Flatten(new HelmValuesWriter(Mapper).WriteOverrides(Images()));
        Assert.Equal($"registry.corp:5000/openlm/olm-server@{ServerDigest}", values["server.deployment.image"]);
        Assert.Equal($"registry.corp:5000/openlm/olm-migrations@{JobDigest}", values["migrations.job.image"]);
    }

    [Fact]
    public void HelmValuesWriter_WriteOverrides_SetsSplitKeysAndGlobalRegistry()
    {
        var values = YamlPaths.Flatten(new HelmValuesWriter(Mapper).WriteOverrides(Images()));
        Assert.Equal("registry.corp:5000", values["kafka.image.registry"]);
        Assert.Equal("openlm/bitnami/kafka", values["kafka.image.repository"]);
        Assert.Equal("3.7.0-debian-12-r0", values["kafka.image.tag"]);
        Assert.Equal(KafkaDigest.ToString(), values["kafka.image.digest"]);
        Assert.Equal("7.0", values["mongodb.image.tag"]);
        Assert.Equal("registry.corp:5000", values["global.imageRegistry"]);
        Assert.DoesNotContain(values.Keys, k => k.Contains("imagePullSecrets", StringComparison.Ordinal));
        Assert.Equal(11, values.Count);
    }

    [Fact]
    public void HelmValuesWriter_WriteOverrides_QuotesNumericLookingTags()
    {
        var text = new HelmValuesWriter(Mapper).WriteOverrides(Images());
        Assert.Contains("tag: \"7.0\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public void HelmValuesWriter_WriteOverrides_NoGlobalRegistryWhenNoChartUsesIt()
    {
        var images = Images().Where(i => !i.UsesGlobalImageRegistry).ToList();
        var values = YamlPaths.Flatten(new HelmValuesWriter(Mapper).WriteOverrides(images));
        Assert.False(values.ContainsKey("global.imageRegistry"));
    }

    [Fact]
    public void HelmValuesWriter_WriteOverrides_PinByTag()
    {
        var writer = new HelmValuesWriter(Mapper, new HelmValuesOptions { Pin = ImagePin.Tag });
        var values = YamlPaths.Flatten(writer.WriteOverrides(Images()));
        Assert.Equal("registry.corp:5000/openlm/olm-server:1.2", values["server.deployment.image"]);
        Assert.Equal("3.7.0-debian-12-r0", values["kafka.image.tag"]);
        Assert.Equal(string.Empty, values["kafka.image.digest"]);
    }

    [Fact]
    public void HelmValuesWriter_WriteOverrides_DigestOnlyImageUsesDigestTagWhenPinnedByTag()
    {
        var digest = DigestOf("operator");
        List<HelmImageUse> images = [new("operator.deployment.image", Reference.Parse($"public.ecr.aws/r3q3q2f4/operator@{digest}"))];
        var byTag = YamlPaths.Flatten(new HelmValuesWriter(Mapper, new HelmValuesOptions { Pin = ImagePin.Tag }).WriteOverrides(images));
        Assert.Equal($"registry.corp:5000/openlm/operator:openlm-sha256-{digest.Hex[..32]}", byTag["operator.deployment.image"]);
        var byDigest = YamlPaths.Flatten(new HelmValuesWriter(Mapper).WriteOverrides(images));
        Assert.Equal($"registry.corp:5000/openlm/operator@{digest}", byDigest["operator.deployment.image"]);
    }

    [Fact]
    public void HelmValuesWriter_WriteOverrides_PullSecrets()
    {
        var writer = new HelmValuesWriter(Mapper, new HelmValuesOptions { PullSecret = "airgap-registry" });
        var text = writer.WriteOverrides(Images());
        var values = YamlPaths.Flatten(text);
        Assert.Equal("airgap-registry", values["server.imagePullSecrets[0].name"]);
        Assert.Equal("airgap-registry", values["migrations.imagePullSecrets[0].name"]);
        Assert.Equal("airgap-registry", values["global.imagePullSecrets[0]"]);
        Assert.False(values.ContainsKey("kafka.imagePullSecrets[0].name"));
        Assert.Contains("imagePullSecrets: [{name: \"airgap-registry\"}]", text, StringComparison.Ordinal);
    }

    [Fact]
    public void HelmValuesWriter_WriteOverrides_PullSecretOwnerForNestedAndOtherPaths()
    {
        var writer = new HelmValuesWriter(Mapper, new HelmValuesOptions { PullSecret = "s" });
        List<HelmImageUse> images =
        [
            new("platform.reports.deployment.image", Reference.Parse($"public.ecr.aws/r3q3q2f4/reports:1@{ServerDigest}")),
            new("agent.sidecar.image", Reference.Parse($"public.ecr.aws/r3q3q2f4/sidecar:1@{JobDigest}")),
        ];
        var values = YamlPaths.Flatten(writer.WriteOverrides(images));
        Assert.Equal("s", values["platform.reports.imagePullSecrets[0].name"]);
        Assert.Equal("s", values["agent.imagePullSecrets[0].name"]);
    }

    [Fact]
    public void HelmValuesWriter_WriteOverrides_IsDeterministicWithGlobalFirst()
    {
        var a = new HelmValuesWriter(Mapper).WriteOverrides(Images());
        var reversed = Images();
        reversed.Reverse();
        var b = new HelmValuesWriter(Mapper).WriteOverrides(reversed);
        Assert.Equal(a, b);
        var firstKey = a.Split('\n').First(l => !l.StartsWith('#'));
        Assert.Equal("global:", firstKey);
    }

    [Fact]
    public void HelmValuesWriter_WriteOverrides_RefusesMissingDigestWhenPinningByDigest()
    {
        List<HelmImageUse> images = [new("server.deployment.image", Reference.Parse("public.ecr.aws/r3q3q2f4/olm-server:1.2"))];
        var e = Assert.Throws<InputException>(() => new HelmValuesWriter(Mapper).WriteOverrides(images));
        Assert.Contains("server.deployment.image", e.Message);
        Assert.Contains("no digest", e.Message);
    }

    [Fact]
    public void HelmValuesWriter_WriteOverrides_RefusesConflictingPaths()
    {
        List<HelmImageUse> twice =
        [
            new("server.deployment.image", Reference.Parse($"public.ecr.aws/r3q3q2f4/a:1@{ServerDigest}")),
            new("server.deployment.image", Reference.Parse($"public.ecr.aws/r3q3q2f4/b:1@{JobDigest}")),
        ];
        var e = Assert.Throws<InputException>(() => new HelmValuesWriter(Mapper).WriteOverrides(twice));
        Assert.Contains("server.deployment.image", e.Message);

        List<HelmImageUse> nested =
        [
            new("server.image", Reference.Parse($"public.ecr.aws/r3q3q2f4/a:1@{ServerDigest}")),
            new("server.image.*", Reference.Parse($"public.ecr.aws/r3q3q2f4/b:1@{JobDigest}")),
        ];
        Assert.Throws<InputException>(() => new HelmValuesWriter(Mapper).WriteOverrides(nested));
    }

    [Fact]
    public void HelmValuesWriter_WriteOverrides_SamePathSameImageIsFine()
    {
        var image = Reference.Parse($"public.ecr.aws/r3q3q2f4/a:1@{ServerDigest}");
        var text = new HelmValuesWriter(Mapper).WriteOverrides([new("a.deployment.image", image), new("a.deployment.image", image)]);
        Assert.Single(YamlPaths.Flatten(text));
    }

    [Fact]
    public void HelmValuesWriter_WriteOverrides_RefusesCollidingImages()
    {
        List<HelmImageUse> images =
        [
            new("a.deployment.image", Reference.Parse($"public.ecr.aws/r3q3q2f4/library/mongo:7@{ServerDigest}")),
            new("b.deployment.image", Reference.Parse($"mongo:7@{JobDigest}")),
        ];
        var e = Assert.Throws<InputException>(() => new HelmValuesWriter(Mapper).WriteOverrides(images));
        Assert.Contains("collision", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("server..image")]
    [InlineData("server.*.image")]
    [InlineData(".*")]
    [InlineData("server image")]
    public void HelmValuesWriter_WriteOverrides_RefusesBadPaths(string path)
    {
        var e = Assert.Throws<InputException>(() =>
            new HelmValuesWriter(Mapper).WriteOverrides([new(path, Reference.Parse($"mongo:7@{MongoDigest}"))]));
        Assert.Contains("values path", e.Message);
    }

    [Theory]
    [InlineData("Upper")]
    [InlineData("-dash")]
    [InlineData("has space")]
    [InlineData("")]
    public void HelmValuesWriter_Constructor_RefusesBadPullSecretName(string name)
    {
        Assert.Throws<InputException>(() => new HelmValuesWriter(Mapper, new HelmValuesOptions { PullSecret = name }));
    }

    [Fact]
    public void HelmValuesWriter_WriteOverrides_EmptyInputIsAnEmptyMapping()
    {
        var text = new HelmValuesWriter(Mapper).WriteOverrides([]);
        Assert.DoesNotContain(YamlPaths.Flatten(text), kv => kv.Key.Length > 0);
        Assert.EndsWith("{}\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void HelmValuesWriter_WriteOverrides_QuotesYamlSpecialKeysAndValues()
    {
        var mapper = TargetNameMapper.Create("reg.local/p", ["docker.io/library=yes"]);
        List<HelmImageUse> images =
        [
            new("on.deployment.image", Reference.Parse($"mongo:7@{MongoDigest}")),
            new("weird-key_1.image.*", Reference.Parse($"mongo:1e5@{MongoDigest}")),
        ];
        var text = new HelmValuesWriter(mapper).WriteOverrides(images);
        Assert.Contains("\"on\":", text, StringComparison.Ordinal);
        Assert.Contains("tag: \"1e5\"", text, StringComparison.Ordinal);
        var values = YamlPaths.Flatten(text);
        Assert.Equal($"reg.local/p/yes/mongo@{MongoDigest}", values["on.deployment.image"]);
        Assert.Equal("p/yes/mongo", values["weird-key_1.image.repository"]);
        Assert.Equal("1e5", values["weird-key_1.image.tag"]);
    }
}
