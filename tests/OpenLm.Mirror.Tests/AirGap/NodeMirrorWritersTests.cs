using System.Text.RegularExpressions;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using Xunit;
using YamlDotNet.RepresentationModel;
using static OpenLm.Mirror.Tests.AirGap.TargetNameMapperTests;

namespace OpenLm.Mirror.Tests.AirGap;

public sealed class NodeMirrorWritersTests
{
    private static readonly List<Reference> Bundle =
    [
        Reference.Parse("public.ecr.aws/r3q3q2f4/olm-server:1.2"),
        Reference.Parse("public.ecr.aws/r3q3q2f4/olm-ui:1.2"),
        Reference.Parse($"public.ecr.aws/r3q3q2f4/operator@{DigestOf("op")}"),
        Reference.Parse("docker.io/bitnami/kafka:3.7"),
        Reference.Parse("docker.io/library/mongo:7"),
    ];

    private static YamlMappingNode LoadYaml(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    private static YamlMappingNode Child(YamlMappingNode node, string key) => (YamlMappingNode)node.Children[new YamlScalarNode(key)];

    /// <summary>Applies k3s rewrites the way containerd does (the one matching rule, Go $1 expansion).</summary>
    private static string ApplyRewrites(YamlMappingNode mirror, string repository)
    {
        if (!mirror.Children.TryGetValue(new YamlScalarNode("rewrite"), out var node))
        {
            return repository;
        }

        var matching = ((YamlMappingNode)node).Children
            .Select(kv => (Pattern: ((YamlScalarNode)kv.Key).Value!, Replacement: ((YamlScalarNode)kv.Value).Value!))
            .Where(r => Regex.IsMatch(repository, r.Pattern))
            .ToList();
        Assert.True(matching.Count <= 1, $"{matching.Count} rewrites match {repository}");
        return matching.Count == 0 ? repository : Regex.Replace(repository, matching[0].Pattern, matching[0].Replacement);
    }

    [Fact]
    public void K3sRegistriesWriter_Write_ParsesWithMirrorsRewritesAndConfigs()
    {
        var mapper = TargetNameMapper.Create("registry.corp:5000/openlm");
        var text = new K3sRegistriesWriter(mapper, new NodeMirrorOptions { CaFile = "/etc/openlm/registry-ca.pem" }).Write(Bundle);
        var root = LoadYaml(text);

        var mirrors = Child(root, "mirrors");
        Assert.Equal(["docker.io", "public.ecr.aws", "registry.corp:5000"], mirrors.Children.Keys.Select(k => ((YamlScalarNode)k).Value));
        foreach (var (_, mirror) in mirrors.Children)
        {
            var endpoints = (YamlSequenceNode)((YamlMappingNode)mirror).Children[new YamlScalarNode("endpoint")];
            Assert.Equal("https://registry.corp:5000", ((YamlScalarNode)Assert.Single(endpoints.Children)).Value);
        }

        var ecr = Child(mirrors, "public.ecr.aws");
        var ecrRewrites = Child(ecr, "rewrite");
        Assert.Equal("openlm/$1", ((YamlScalarNode)ecrRewrites.Children[new YamlScalarNode("^r3q3q2f4/(.*)$")]).Value);
        var hub = Child(mirrors, "docker.io");
        Assert.Equal("openlm/$1", ((YamlScalarNode)Child(hub, "rewrite").Children[new YamlScalarNode("^(.*)$")]).Value);
        Assert.False(Child(mirrors, "registry.corp:5000").Children.ContainsKey(new YamlScalarNode("rewrite")));

        var tls = Child(Child(Child(root, "configs"), "registry.corp:5000"), "tls");
        Assert.Equal("/etc/openlm/registry-ca.pem", ((YamlScalarNode)tls.Children[new YamlScalarNode("ca_file")]).Value);
        Assert.Contains("# auth:", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\nauth:", text.Replace(" ", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);

        // Every image resolves to its mapped name through the rewrites.
        foreach (var mapping in mapper.MapAll(Bundle))
        {
            var mirror = Child(mirrors, mapping.Source.Registry);
            Assert.Equal(mapping.Target.Repository, ApplyRewrites(mirror, mapping.Source.Repository));
        }
    }

    [Fact]
    public void K3sRegistriesWriter_Write_NestedRulesBecomeExactNonOverlappingRewrites()
    {
        var mapper = TargetNameMapper.Create("reg.local/p", ["docker.io/bitnami=thirdparty", "docker.io/bitnami/kafka=streaming/kafka"]);
        List<Reference> images =
        [
            Reference.Parse("bitnami/kafka:3"),
            Reference.Parse("bitnami/redis:7"),
            Reference.Parse("bitnami/kafka/sub:1"),
            Reference.Parse("mongo:7"),
            Reference.Parse("public.ecr.aws/r3q3q2f4/olm-server:1"),
            Reference.Parse("public.ecr.aws/other/tool:1"),
            Reference.Parse("quay.io/jetstack/cert-manager:1.14"),
        ];
        var text = new K3sRegistriesWriter(mapper).Write(images);
        var mirrors = Child(LoadYaml(text), "mirrors");
        foreach (var mapping in mapper.MapAll(images))
        {
            Assert.Equal(mapping.Target.Repository, ApplyRewrites(Child(mirrors, mapping.Source.Registry), mapping.Source.Repository));
        }

        Assert.Contains("\"^library/mongo$\": \"p/library/mongo\"", text, StringComparison.Ordinal);
        Assert.Contains("\"^(.*)$\": \"p/$1\"", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\nconfigs:", text, StringComparison.Ordinal);
        Assert.Contains("\n# configs:", text, StringComparison.Ordinal);
    }

    [Fact]
    public void K3sRegistriesWriter_Write_RuleNamingAWholeImageMatchesTheImageItself()
    {
        var mapper = TargetNameMapper.Create("reg.local/p", ["docker.io/bitnami/kafka=streaming"]);
        List<Reference> images = [Reference.Parse("bitnami/kafka:3"), Reference.Parse("quay.io/a/b:1")];
        var text = new K3sRegistriesWriter(mapper).Write(images);
        Assert.Contains("\"^bitnami/kafka(/.*)?$\": \"p/streaming$1\"", text, StringComparison.Ordinal);
        var mirrors = Child(LoadYaml(text), "mirrors");
        foreach (var mapping in mapper.MapAll(images))
        {
            Assert.Equal(mapping.Target.Repository, ApplyRewrites(Child(mirrors, mapping.Source.Registry), mapping.Source.Repository));
        }

        Assert.Equal("p/streaming/sub", ApplyRewrites(Child(mirrors, "docker.io"), "bitnami/kafka/sub"));
        Assert.Equal("bitnami/kafkax", ApplyRewrites(Child(mirrors, "docker.io"), "bitnami/kafkax"));
    }

    [Fact]
    public void K3sRegistriesWriter_Write_NoPrefixNeedsNoRewriteForOtherRegistries()
    {
        var mapper = TargetNameMapper.Create("reg.local");
        var text = new K3sRegistriesWriter(mapper, new NodeMirrorOptions { PlainHttp = true }).Write(Bundle);
        var mirrors = Child(LoadYaml(text), "mirrors");
        Assert.False(Child(mirrors, "docker.io").Children.ContainsKey(new YamlScalarNode("rewrite")));
        Assert.Equal("$1", ((YamlScalarNode)Child(Child(mirrors, "public.ecr.aws"), "rewrite").Children[new YamlScalarNode("^r3q3q2f4/(.*)$")]).Value);
        Assert.Contains("- \"http://reg.local\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public void K3sRegistriesWriter_Write_EscapesRegexAndYamlSpecialCharacters()
    {
        var mapper = TargetNameMapper.Create("reg.local/p", ["docker.io/my.org=x", "docker.io/my.org/a.b=y"]);
        List<Reference> images = [Reference.Parse("docker.io/my.org/a.b:1"), Reference.Parse("docker.io/my.org/c_d:1")];
        var text = new K3sRegistriesWriter(mapper, new NodeMirrorOptions { CaFile = "C:\\certs\\ca \"1\".pem" }).Write(images);
        var root = LoadYaml(text);
        Assert.Contains("\"^my\\\\.org/a\\\\.b$\"", text, StringComparison.Ordinal);
        var mirrors = Child(root, "mirrors");
        foreach (var mapping in mapper.MapAll(images))
        {
            Assert.Equal(mapping.Target.Repository, ApplyRewrites(Child(mirrors, mapping.Source.Registry), mapping.Source.Repository));
        }

        var tls = Child(Child(Child(root, "configs"), "reg.local"), "tls");
        Assert.Equal("C:\\certs\\ca \"1\".pem", ((YamlScalarNode)tls.Children[new YamlScalarNode("ca_file")]).Value);
    }

    [Fact]
    public void K3sRegistriesWriter_Write_RefusesCollisions()
    {
        var mapper = TargetNameMapper.Create("reg.local");
        Assert.Throws<InputException>(() => new K3sRegistriesWriter(mapper).Write(
            [Reference.Parse("public.ecr.aws/r3q3q2f4/library/mongo:7"), Reference.Parse("mongo:7")]));
    }

    [Fact]
    public void ContainerdHostsWriter_Build_PrefixTargetUsesOverridePath()
    {
        var mapper = TargetNameMapper.Create("registry.corp:5000/openlm");
        var config = new ContainerdHostsWriter(mapper, new NodeMirrorOptions { CaFile = "/etc/openlm/ca.pem" }).Build(Bundle);

        var hub = Assert.Single(config.Files, f => f.Directory == "docker.io");
        Assert.Equal("docker.io/hosts.toml", hub.RelativePath);
        var body = string.Join('\n', hub.Content.Split('\n').Where(l => !l.StartsWith('#')));
        Assert.Equal(
            """
            server = "https://registry-1.docker.io"

            [host."https://registry.corp:5000/v2/openlm"]
              capabilities = ["pull", "resolve"]
              ca = "/etc/openlm/ca.pem"
              override_path = true

            """,
            body);

        var own = Assert.Single(config.Files, f => f.Directory == "registry.corp_5000_");
        Assert.Contains("server = \"https://registry.corp:5000\"\nca = \"/etc/openlm/ca.pem\"\n", own.Content, StringComparison.Ordinal);

        // public.ecr.aws/r3q3q2f4/x -> openlm/x drops a path component: containerd cannot do that.
        Assert.DoesNotContain(config.Files, f => f.Directory == "public.ecr.aws");
        Assert.Equal(3, config.NotRedirected.Count);
        Assert.All(config.NotRedirected, m => Assert.Equal("public.ecr.aws", m.Source.Registry));
    }

    [Fact]
    public void ContainerdHostsWriter_Build_MixedRegistryCoversWhatItCanAndSaysSo()
    {
        var mapper = TargetNameMapper.Create("reg.local/p");
        List<Reference> images =
        [
            Reference.Parse("public.ecr.aws/r3q3q2f4/olm-server:1"),
            Reference.Parse("public.ecr.aws/bitnami/kafka:3"),
            Reference.Parse("public.ecr.aws/bitnami/redis:7"),
        ];
        var config = new ContainerdHostsWriter(mapper).Build(images);
        var ecr = Assert.Single(config.Files, f => f.Directory == "public.ecr.aws");
        Assert.Contains("server = \"https://public.ecr.aws\"", ecr.Content, StringComparison.Ordinal);
        Assert.Contains("[host.\"https://reg.local/v2/p\"]", ecr.Content, StringComparison.Ordinal);
        Assert.Contains("# 1 image(s) of public.ecr.aws", ecr.Content, StringComparison.Ordinal);
        Assert.DoesNotContain("ca = ", ecr.Content, StringComparison.Ordinal);
        Assert.Equal("public.ecr.aws/r3q3q2f4/olm-server:1", Assert.Single(config.NotRedirected).Source.ToString());
    }

    [Fact]
    public void ContainerdHostsWriter_Build_NoPrefixNeedsNoOverridePath()
    {
        var mapper = TargetNameMapper.Create("reg.local");
        var config = new ContainerdHostsWriter(mapper, new NodeMirrorOptions { PlainHttp = true }).Build([Reference.Parse("mongo:7")]);
        var hub = Assert.Single(config.Files, f => f.Directory == "docker.io");
        Assert.Contains("[host.\"http://reg.local\"]", hub.Content, StringComparison.Ordinal);
        Assert.DoesNotContain("override_path", hub.Content, StringComparison.Ordinal);
        Assert.Empty(config.NotRedirected);
        Assert.Contains(config.Files, f => f.Directory == "reg.local" && f.Content.Contains("server = \"http://reg.local\"", StringComparison.Ordinal));
    }

    [Fact]
    public void ContainerdHostsWriter_Build_EscapesTomlStrings()
    {
        var mapper = TargetNameMapper.Create("reg.local/p");
        var config = new ContainerdHostsWriter(mapper, new NodeMirrorOptions { CaFile = "C:\\certs\\\"ca\".pem" }).Build([Reference.Parse("mongo:7")]);
        Assert.Contains("ca = \"C:\\\\certs\\\\\\\"ca\\\".pem\"", config.Files[0].Content, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("docker.io", "docker.io")]
    [InlineData("registry.corp:5000", "registry.corp_5000_")]
    [InlineData("localhost:5000", "localhost_5000_")]
    public void ContainerdHostsWriter_HostDirectory_UsesPortForm(string host, string directory)
    {
        Assert.Equal(directory, ContainerdHostsWriter.HostDirectory(host));
    }

    [Fact]
    public void ContainerdHostsWriter_WriteTo_WritesHostsTomlPerDirectory()
    {
        var root = Path.Combine(Path.GetTempPath(), "airgap-hosts-" + Guid.NewGuid().ToString("N"));
        try
        {
            var config = new ContainerdHostsWriter(TargetNameMapper.Create("reg.local:5000/p")).Build([Reference.Parse("mongo:7")]);
            ContainerdHostsWriter.WriteTo(config, root);
            Assert.True(File.Exists(Path.Combine(root, "docker.io", "hosts.toml")));
            Assert.Equal(config.Files[^1].Content, File.ReadAllText(Path.Combine(root, "reg.local_5000_", "hosts.toml")));
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }
}
