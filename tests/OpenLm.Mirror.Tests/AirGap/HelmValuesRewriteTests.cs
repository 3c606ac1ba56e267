using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using Xunit;
using static OpenLm.Mirror.Tests.AirGap.HelmValuesWriterTests;

namespace OpenLm.Mirror.Tests.AirGap;

public sealed class HelmValuesRewriteTests
{
    private const string CustomerValues = """
        # Customer values for the OpenLM platform.
        # Keep this comment.

        global:
          domain: "licenses.example.com"   # public name
          storageClass: fast

        server:
          replicaCount: 3
          deployment:
            # the server image
            image: public.ecr.aws/r3q3q2f4/olm-server:1.2   # pinned by release
            resources: {}
          env:
            - name: LOG_LEVEL
              value: 'debug'

        migrations:
          job:
            image: 'public.ecr.aws/r3q3q2f4/olm-migrations:1.2'
            backoffLimit: 2

        kafka:
          image:
            registry: docker.io
            repository: "bitnami/kafka"
            tag: 3.7.0-debian-12-r0
          persistence:
            size: 8Gi
        mongodb:
          auth:
            enabled: true
        # end of file comment
        """;

    private static HelmValuesRewrite Rewrite(string yaml, IEnumerable<HelmImageUse>? images = null, HelmValuesOptions? options = null) =>
        new HelmValuesWriter(Mapper, options).Rewrite(yaml, images ?? Images(), "values.yaml");

    /// <summary>Every path not in <paramref name="changed"/> must be identical in both files.</summary>
    private static void AssertOnlyChanged(string before, string after, IDictionary<string, string> changed)
    {
        var a = YamlPaths.Flatten(before);
        var b = YamlPaths.Flatten(after);
        foreach (var (path, value) in changed)
        {
            Assert.True(b.TryGetValue(path, out var actual), $"missing {path} in:\n{after}");
            Assert.Equal(value, actual);
        }

        foreach (var (path, value) in a)
        {
            if (!changed.ContainsKey(path))
            {
                Assert.True(b.TryGetValue(path, out var actual), $"path {path} disappeared in:\n{after}");
                Assert.Equal(value, actual);
            }
        }

        foreach (var path in b.Keys)
        {
            Assert.True(a.ContainsKey(path) || changed.ContainsKey(path), $"unexpected new path {path} in:\n{after}");
        }
    }

    private static Dictionary<string, string> ExpectedImages() => new()
    {
        ["server.deployment.image"] = $"registry.corp:5000/openlm/olm-server@{ServerDigest}",
        ["migrations.job.image"] = $"registry.corp:5000/openlm/olm-migrations@{JobDigest}",
        ["kafka.image.registry"] = "registry.corp:5000",
        ["kafka.image.repository"] = "openlm/bitnami/kafka",
        ["kafka.image.tag"] = "3.7.0-debian-12-r0",
        ["kafka.image.digest"] = KafkaDigest.ToString(),
        ["mongodb.image.registry"] = "registry.corp:5000",
        ["mongodb.image.repository"] = "openlm/bitnami/mongodb",
        ["mongodb.image.tag"] = "7.0",
        ["mongodb.image.digest"] = MongoDigest.ToString(),
        ["global.imageRegistry"] = "registry.corp:5000",
    };

    [Fact]
    public void HelmValuesWriter_Rewrite_ChangesOnlyImagePaths()
    {
        var result = Rewrite(CustomerValues);
        AssertOnlyChanged(CustomerValues, result.Text, ExpectedImages());
        Assert.Empty(result.Warnings);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_KeepsCommentsQuotingOrderAndBlankLines()
    {
        var text = Rewrite(CustomerValues).Text;
        foreach (var comment in new[]
                 {
                     "# Customer values for the OpenLM platform.", "# Keep this comment.", "# public name", "# the server image",
                     "# pinned by release", "# end of file comment",
                 })
        {
            Assert.Contains(comment, text, StringComparison.Ordinal);
        }

        Assert.Contains($"    image: registry.corp:5000/openlm/olm-server@{ServerDigest}   # pinned by release\n", text, StringComparison.Ordinal);
        Assert.Contains($"    image: 'registry.corp:5000/openlm/olm-migrations@{JobDigest}'\n", text, StringComparison.Ordinal);
        Assert.Contains("    repository: \"openlm/bitnami/kafka\"\n", text, StringComparison.Ordinal);
        Assert.Contains("    registry: registry.corp:5000\n", text, StringComparison.Ordinal);
        Assert.Contains("  domain: \"licenses.example.com\"   # public name\n", text, StringComparison.Ordinal);
        Assert.Contains("      value: 'debug'\n", text, StringComparison.Ordinal);

        // Same number of blank lines, and untouched lines keep their order.
        Assert.Equal(CustomerValues.Split('\n').Count(l => l.Length == 0), text.Split('\n').Count(l => l.Length == 0));
        var untouched = CustomerValues.Split('\n').Where(l => !l.Contains("image", StringComparison.Ordinal) && !l.Contains("registry:") &&
                                                              !l.Contains("repository:") && !l.Contains("tag:")).ToList();
        var outputLines = text.Split('\n').ToList();
        var last = -1;
        foreach (var line in untouched)
        {
            var index = outputLines.IndexOf(line, last + 1);
            Assert.True(index > last, $"line '{line}' missing or out of order in:\n{text}");
            last = index;
        }
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_AddsMissingKeysWithMatchingIndentation()
    {
        var text = Rewrite(CustomerValues).Text;
        Assert.Contains($"    tag: 3.7.0-debian-12-r0\n    digest: \"{KafkaDigest}\"\n  persistence:", text, StringComparison.Ordinal);
        Assert.Contains("mongodb:\n  auth:\n    enabled: true\n  image:\n    registry: \"registry.corp:5000\"\n", text, StringComparison.Ordinal);
        Assert.Contains("  storageClass: fast\n  imageRegistry: \"registry.corp:5000\"\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_IsIdempotent()
    {
        var once = Rewrite(CustomerValues).Text;
        Assert.Equal(once, Rewrite(once).Text);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_PullSecrets()
    {
        var yaml = """
            server:
              imagePullSecrets: []
              deployment:
                image: x
            migrations:
              imagePullSecrets:
              job:
                image: y
            """;
        var result = Rewrite(yaml, Images(), new HelmValuesOptions { PullSecret = "airgap" });
        var values = YamlPaths.Flatten(result.Text);
        Assert.Equal("airgap", values["server.imagePullSecrets[0].name"]);
        Assert.Equal("airgap", values["migrations.imagePullSecrets[0].name"]);
        Assert.Equal("airgap", values["global.imagePullSecrets[0]"]);
        Assert.Empty(result.Warnings);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_LeavesExistingPullSecretListsAndWarns()
    {
        var yaml = """
            server:
              imagePullSecrets:
                - name: corp-secret
              deployment:
                image: x
            migrations:
              imagePullSecrets: [{name: airgap}]
              job:
                image: y
            """;
        var result = Rewrite(yaml, Images().Take(2), new HelmValuesOptions { PullSecret = "airgap" });
        var values = YamlPaths.Flatten(result.Text);
        Assert.Equal("corp-secret", values["server.imagePullSecrets[0].name"]);
        Assert.False(values.ContainsKey("server.imagePullSecrets[1].name"));
        var warning = Assert.Single(result.Warnings);
        Assert.Contains("server.imagePullSecrets", warning);
        Assert.Contains("airgap", warning);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_EmptyFileGetsEverything()
    {
        foreach (var yaml in new[] { string.Empty, "# only a comment\n", "# no newline", "---\n", "{}\n", "~\n", "--- {}\n", "--- ~\n...\n", "---\n...\n", "--- # c\n", "---", "# a\n---\n# b\n" })
        {
            var text = Rewrite(yaml).Text;
            var values = YamlPaths.Flatten(text);
            foreach (var (path, value) in ExpectedImages())
            {
                Assert.Equal(value, values[path]);
            }

            foreach (var comment in yaml.Split('\n').Where(l => l.Contains('#')).Select(l => l[l.IndexOf('#')..]))
            {
                Assert.Contains(comment, text, StringComparison.Ordinal);
            }

            Assert.Equal(yaml.Split('\n').Count(l => l.StartsWith("---", StringComparison.Ordinal)), text.Split('\n').Count(l => l.StartsWith("---", StringComparison.Ordinal)));
        }
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_FillsNullAndEmptyIntermediateMappings()
    {
        var yaml = """
            server:
              deployment:   # to be filled
            migrations: ~
            kafka: {}
            mongodb:
              image:
            global: null
            """;
        var text = Rewrite(yaml).Text;
        var values = YamlPaths.Flatten(text);
        foreach (var (path, value) in ExpectedImages())
        {
            Assert.Equal(value, values[path]);
        }

        Assert.Contains("# to be filled", text, StringComparison.Ordinal);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_FillsEmptyScalar()
    {
        var yaml = "server:\n  deployment:\n    image:\n    replicas: 1\n";
        var text = Rewrite(yaml, Images().Take(1)).Text;
        Assert.Equal($"server:\n  deployment:\n    image: \"registry.corp:5000/openlm/olm-server@{ServerDigest}\"\n    replicas: 1\n", text);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_KeepsCrLfAndMissingFinalNewline()
    {
        var yaml = "server:\r\n  deployment:\r\n    replicas: 1";
        var text = Rewrite(yaml, Images().Take(1)).Text;
        Assert.Equal($"server:\r\n  deployment:\r\n    replicas: 1\r\n    image: \"registry.corp:5000/openlm/olm-server@{ServerDigest}\"\r\n", text);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_NestedInsertionsAtTheSamePlaceKeepStructure()
    {
        var yaml = "server:\n  deployment:\n    replicas: 1\nother: 1\n";
        var text = Rewrite(yaml, Images().Take(1), new HelmValuesOptions { PullSecret = "s" }).Text;
        Assert.Equal(
            $"server:\n  deployment:\n    replicas: 1\n    image: \"registry.corp:5000/openlm/olm-server@{ServerDigest}\"\n  imagePullSecrets: [{{name: \"s\"}}]\nother: 1\n",
            text);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_KeepsUnicodeAndBlockScalarsElsewhere()
    {
        var yaml = "# 日本語 😀 comment\nnotes: |\n  line one\n  line two\n\nserver:\n  deployment:\n    image: old # ✓\n";
        var text = Rewrite(yaml, Images().Take(1)).Text;
        Assert.Equal($"# 日本語 😀 comment\nnotes: |\n  line one\n  line two\n\nserver:\n  deployment:\n    image: registry.corp:5000/openlm/olm-server@{ServerDigest} # ✓\n", text);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_KeepsByteOrderMark()
    {
        var yaml = "\uFEFFserver:\n  deployment:\n    image: x\n";
        var text = Rewrite(yaml, Images().Take(1)).Text;
        Assert.Equal($"\uFEFFserver:\n  deployment:\n    image: registry.corp:5000/openlm/olm-server@{ServerDigest}\n", text);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_AddsAfterTrailingBlockScalar()
    {
        var yaml = "server:\n  deployment:\n    script: |\n      echo hi\n\nnext: 1\n";
        var text = Rewrite(yaml, Images().Take(1)).Text;
        var values = YamlPaths.Flatten(text);
        Assert.Equal("echo hi\n", values["server.deployment.script"]);
        Assert.Equal("1", values["next"]);
        Assert.Equal($"registry.corp:5000/openlm/olm-server@{ServerDigest}", values["server.deployment.image"]);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_QuotesPlainValuesThatWouldChangeType()
    {
        var yaml = "mongodb:\n  image:\n    registry: docker.io\n    repository: bitnami/mongodb\n    tag: 6.0\n    digest: \"\"\n";
        var text = Rewrite(yaml, Images().Skip(3)).Text;
        Assert.Contains("    tag: \"7.0\"\n", text, StringComparison.Ordinal);
        Assert.Contains($"    digest: \"{MongoDigest}\"\n", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("base: &b\n  deployment:\n    image: x\nserver: *b\n", "server", "alias")]
    [InlineData("server: &s\n  deployment:\n    image: x\n", "server", "anchor")]
    [InlineData("server:\n  deployment:\n    image: &i x\n", "server.deployment.image", "anchor")]
    [InlineData("server:\n  deployment: {replicas: 1}\n", "server.deployment", "flow mapping")]
    [InlineData("server:\n  deployment:\n    image: |\n      x\n", "server.deployment.image", "block scalar")]
    [InlineData("server:\n  deployment: [a]\n", "server.deployment", "list")]
    [InlineData("server:\n  deployment: text\n", "server.deployment", "scalar 'text'")]
    [InlineData("server:\n  deployment:\n    image:\n      name: x\n", "server.deployment.image", "mapping")]
    [InlineData("server:\n  <<: {replicas: 1}\n", "server", "merge key")]
    [InlineData("server:\n  deployment: 1\n  deployment: 2\n", "server.deployment", "more than once")]
    [InlineData("- a\n- b\n", "(top level)", "not a mapping")]
    public void HelmValuesWriter_Rewrite_RefusesUnsupportedStructureNamingThePath(string yaml, string path, string why)
    {
        var e = Assert.Throws<InputException>(() => Rewrite(yaml, Images().Take(1)));
        Assert.Contains($"'{path}'", e.Message);
        Assert.Contains(why, e.Message);
        Assert.Contains("values.yaml: line ", e.Message);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_RefusesInvalidYamlAndMultipleDocuments()
    {
        var bad = Assert.Throws<InputException>(() => Rewrite("a: [\n", Images().Take(1)));
        Assert.Contains("values.yaml", bad.Message);
        var multi = Assert.Throws<InputException>(() => Rewrite("a: 1\n---\nb: 2\n", Images().Take(1)));
        Assert.Contains("second YAML document", multi.Message);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_QuotedKeysAndSpecialCharacters()
    {
        var yaml = "\"server\":\n  'deployment':\n    \"image\": \"old \\\"quoted\\\" # not a comment\"\n    note: 'it''s: fine # really'\n";
        var text = Rewrite(yaml, Images().Take(1)).Text;
        var values = YamlPaths.Flatten(text);
        Assert.Equal($"registry.corp:5000/openlm/olm-server@{ServerDigest}", values["server.deployment.image"]);
        Assert.Equal("it's: fine # really", values["server.deployment.note"]);
        Assert.Contains("'it''s: fine # really'", text, StringComparison.Ordinal);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_AliasElsewhereIsFine()
    {
        var yaml = "defaults: &d\n  cpu: 1\nserver:\n  resources: *d\n  deployment:\n    image: x\n";
        var text = Rewrite(yaml, Images().Take(1)).Text;
        var values = YamlPaths.Flatten(text);
        Assert.Equal("1", values["server.resources.cpu"]);
        Assert.Equal($"registry.corp:5000/openlm/olm-server@{ServerDigest}", values["server.deployment.image"]);
    }

    [Theory]
    [InlineData("base: &b\n  deployment:\n    image: x\nserver: *b\n")]
    [InlineData("server: &s\n  deployment:\n    image: x\n")]
    public void HelmValuesWriter_Rewrite_SharedNodeRefusalPointsAtOverrideFileWithoutNamingACliFlag(string yaml)
    {
        // Given a values file whose image path goes through an alias or an anchor
        // When it is rewritten
        var e = Assert.Throws<InputException>(() => Rewrite(yaml, Images().Take(1)));

        // Then the library suggests the override file in its own words; CLI flags are the CLI's business
        Assert.Contains("use the generated override file instead of rewriting this file", e.Message);
        Assert.DoesNotContain("--", e.Message);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_AliasToUnknownAnchorOffThePathIsLeftAlone()
    {
        // Given an alias that names no anchor, away from every image path (the rewriter keeps aliases as written)
        var yaml = "other: *nowhere\nserver:\n  deployment:\n    image: x\n";

        // When it is rewritten
        var text = Rewrite(yaml, Images().Take(1)).Text;

        // Then only the image changes and the alias text stays
        Assert.StartsWith("other: *nowhere\n", text, StringComparison.Ordinal);
        Assert.Contains($"    image: registry.corp:5000/openlm/olm-server@{ServerDigest}\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_RefusesAbsurdNestingNamingFileAndLine()
    {
        // Given a values file nested far deeper than any chart reads (untrusted input)
        var yaml = string.Concat(Enumerable.Repeat("[", 300)) + string.Concat(Enumerable.Repeat("]", 300)) + "\n";

        // When it is rewritten, Then it is refused as input, not by exhausting the stack
        var e = Assert.Throws<InputException>(() => Rewrite(yaml, Images().Take(1)));
        Assert.Contains("values.yaml: line 1: nesting deeper than", e.Message);
    }

    [Fact]
    public void HelmValuesWriter_Rewrite_PinByTagKeepsDigestKeyEmpty()
    {
        var yaml = $"kafka:\n  image:\n    tag: old\n    digest: {KafkaDigest}\n";
        var text = new HelmValuesWriter(Mapper, new HelmValuesOptions { Pin = ImagePin.Tag })
            .Rewrite(yaml, [new("kafka.image.*", Reference.Parse($"bitnami/kafka:3.7@{KafkaDigest}"))]).Text;
        var values = YamlPaths.Flatten(text);
        Assert.Equal("3.7", values["kafka.image.tag"]);
        Assert.Equal(string.Empty, values["kafka.image.digest"]);
    }
}
