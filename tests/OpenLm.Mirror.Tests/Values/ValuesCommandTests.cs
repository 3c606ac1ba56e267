using System.Text.Json;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Tests.AirGap;
using Xunit;
using YamlDotNet.RepresentationModel;
using static OpenLm.Mirror.Tests.Values.ValuesBundleFixture;

namespace OpenLm.Mirror.Tests.Values;

/// <summary>The <c>values</c> command, in process, on a signed bundle built from a TestKit layout.</summary>
public sealed class ValuesCommandTests(ValuesBundleFixture bundle) : IClassFixture<ValuesBundleFixture>
{
    private const string Target = "registry.corp:5000/openlm";
    private const string Host = "registry.corp:5000";

    private const string CustomerValues =
        "# Customer values for OLM\n" +
        "global:\n" +
        "  storageClass: fast   # keep me\n" +
        "\n" +
        "server:\n" +
        "  replicas: 2\n" +
        "  deployment:\n" +
        "    image: public.ecr.aws/r3q3q2f4/olm-server:1.0.0  # upstream\n" +
        "kafka:\n" +
        "  enabled: true\n";

    [Fact]
    public async Task Values_OverrideFile_SetsEveryRecordedPath()
    {
        // Given a signed bundle whose images record full-string, job and split values paths
        var dir = bundle.NewDirectory();
        var output = Path.Combine(dir, "values-airgap.yaml");

        // When values is run with the release key
        var (exit, stdout, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "-o", output);

        // Then the override file parses with YamlDotNet and sets exactly the recorded paths
        Assert.True(exit == 0, stderr);
        Assert.Contains(output, stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("signature not checked", stderr, StringComparison.Ordinal);
        var values = YamlPaths.Flatten(File.ReadAllText(output));
        Assert.Equal($"{Host}/openlm/olm-server@{bundle.DigestOf(Server)}", values["server.deployment.image"]);
        Assert.Equal($"{Host}/openlm/olm-migrate@{bundle.DigestOf(Migrate)}", values["jobs.job.image"]);
        Assert.Equal($"{Host}/openlm/olm-worker@{bundle.DigestOf(Worker)}", values["platform.worker.deployment.image"]);
        Assert.Equal(Host, values["kafka.image.registry"]);
        Assert.Equal("openlm/bitnami/kafka", values["kafka.image.repository"]);
        Assert.Equal("3.7.0-debian-12-r0", values["kafka.image.tag"]);
        Assert.Equal(bundle.DigestOf(Kafka), values["kafka.image.digest"]);

        // And the global.imageRegistry marker became the target host, not a path of its own
        Assert.Equal(Host, values["global.imageRegistry"]);
        Assert.Equal(8, values.Count);
    }

    [Fact]
    public async Task Values_NoKey_WarnsSignatureNotChecked()
    {
        var output = Path.Combine(bundle.NewDirectory(), "v.yaml");

        var (exit, _, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "-o", output);

        Assert.True(exit == 0, stderr);
        Assert.Contains("signature not checked", stderr, StringComparison.Ordinal);
        Assert.True(File.Exists(output));
    }

    [Fact]
    public async Task Values_WrongKey_Exits3AndWritesNothing()
    {
        var dir = bundle.NewDirectory();
        var output = Path.Combine(dir, "v.yaml");

        var (exit, _, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.OtherPublicKey, "-o", output,
            "--k3s-registries-out", Path.Combine(dir, "registries.yaml"));

        Assert.Equal(ExitCodes.Integrity, exit);
        Assert.StartsWith("error: ", stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public async Task Values_PinTagWithPullSecret_NamesTagsAndSecrets()
    {
        var output = Path.Combine(bundle.NewDirectory(), "v.yaml");

        var (exit, _, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "-o", output,
            "--pin", "tag", "--pull-secret", "airgap-pull");

        Assert.True(exit == 0, stderr);
        var values = YamlPaths.Flatten(File.ReadAllText(output));
        Assert.Equal($"{Host}/openlm/olm-server:1.0.0", values["server.deployment.image"]);
        Assert.Equal("3.7.0-debian-12-r0", values["kafka.image.tag"]);
        Assert.Equal(string.Empty, values["kafka.image.digest"]);
        Assert.Equal("airgap-pull", values["server.imagePullSecrets[0].name"]);
        Assert.Equal("airgap-pull", values["jobs.imagePullSecrets[0].name"]);
        Assert.Equal("airgap-pull", values["platform.worker.imagePullSecrets[0].name"]);
        Assert.Equal("airgap-pull", values["global.imagePullSecrets[0]"]);
    }

    [Fact]
    public async Task Values_RewriteCustomerFile_KeepsCommentsAndLeavesInputAlone()
    {
        // Given the customer's own values file with comments
        var dir = bundle.NewDirectory();
        var input = Path.Combine(dir, "values.yaml");
        File.WriteAllText(input, CustomerValues);
        var output = Path.Combine(dir, "values-airgap.yaml");

        // When values rewrites it into -o
        var (exit, _, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "--values", input, "-o", output);

        // Then the input is untouched, and the output keeps comments and other values while setting every image path
        Assert.True(exit == 0, stderr);
        Assert.Equal(CustomerValues, File.ReadAllText(input));
        var text = File.ReadAllText(output);
        Assert.StartsWith("# Customer values for OLM\nglobal:\n  storageClass: fast   # keep me\n", text, StringComparison.Ordinal);
        Assert.Contains($"    image: {Host}/openlm/olm-server@{bundle.DigestOf(Server)}  # upstream\n", text, StringComparison.Ordinal);
        var values = YamlPaths.Flatten(text);
        Assert.Equal("2", values["server.replicas"]);
        Assert.Equal("true", values["kafka.enabled"]);
        Assert.Equal("fast", values["global.storageClass"]);
        Assert.Equal($"{Host}/openlm/olm-migrate@{bundle.DigestOf(Migrate)}", values["jobs.job.image"]);
        Assert.Equal("openlm/bitnami/kafka", values["kafka.image.repository"]);
        Assert.Equal(Host, values["global.imageRegistry"]);
        Assert.Empty(Directory.GetFiles(dir, ".*.tmp"));
    }

    [Fact]
    public async Task Values_RewriteInPlace_WhenOutputIsTheInput()
    {
        var dir = bundle.NewDirectory();
        var input = Path.Combine(dir, "values.yaml");
        File.WriteAllText(input, CustomerValues);

        var (exit, _, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "--values", input, "-o", input);

        Assert.True(exit == 0, stderr);
        var text = File.ReadAllText(input);
        Assert.Contains("# keep me", text, StringComparison.Ordinal);
        Assert.Equal($"{Host}/openlm/olm-server@{bundle.DigestOf(Server)}", YamlPaths.Flatten(text)["server.deployment.image"]);

        // And running it again changes nothing
        var (again, _, againErr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "--values", input, "-o", input);
        Assert.True(again == 0, againErr);
        Assert.Equal(text, File.ReadAllText(input));
    }

    [Fact]
    public async Task Values_ExistingOutput_RefusedUnlessForce()
    {
        var output = Path.Combine(bundle.NewDirectory(), "v.yaml");
        File.WriteAllText(output, "keep: me\n");

        var (exit, _, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "-o", output);
        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("--force", stderr, StringComparison.Ordinal);
        Assert.Equal("keep: me\n", File.ReadAllText(output));

        var (forced, _, forcedErr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "-o", output, "--force");
        Assert.True(forced == 0, forcedErr);
        Assert.Contains("server.deployment.image", YamlPaths.Flatten(File.ReadAllText(output)).Keys);
    }

    [Fact]
    public async Task Values_MappingCollision_Exits2BeforeWritingAnything()
    {
        // Given a --map rule that sends olm-worker:1.0.0 to the name olm-server:1.0.0 already has
        var dir = bundle.NewDirectory();

        // When values is run with every output
        var (exit, stdout, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey,
            "--map", "public.ecr.aws/r3q3q2f4/olm-worker=olm-server",
            "-o", Path.Combine(dir, "v.yaml"),
            "--k3s-registries-out", Path.Combine(dir, "registries.yaml"),
            "--containerd-hosts-dir", Path.Combine(dir, "certs.d"));

        // Then it is a usage error naming both images, and no file or directory was created
        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("collision", stderr, StringComparison.Ordinal);
        Assert.Contains(Server, stderr, StringComparison.Ordinal);
        Assert.Contains(Worker, stderr, StringComparison.Ordinal);
        Assert.Equal(string.Empty, stdout);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public async Task Values_NodeConfigs_WritesRegistriesYamlAndHostsToml()
    {
        // Given a bundle with platform images and a Docker Hub image
        var dir = bundle.NewDirectory();
        var registries = Path.Combine(dir, "registries.yaml");
        var hosts = Path.Combine(dir, "certs.d");

        // When values writes only the node configurations
        var (exit, stdout, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey,
            "--k3s-registries-out", registries, "--containerd-hosts-dir", hosts, "--ca-path", "/etc/openlm/registry-ca.pem");

        // Then registries.yaml mirrors both upstream registries to the target, with the CA on the target's config
        Assert.True(exit == 0, stderr);
        Assert.Contains(registries, stdout, StringComparison.Ordinal);
        Assert.Contains(hosts, stdout, StringComparison.Ordinal);
        var yaml = new YamlStream();
        yaml.Load(new StringReader(File.ReadAllText(registries)));
        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        var mirrors = (YamlMappingNode)root.Children[new YamlScalarNode("mirrors")];
        foreach (var upstream in new[] { "public.ecr.aws", "docker.io", Host })
        {
            var mirror = (YamlMappingNode)mirrors.Children[new YamlScalarNode(upstream)];
            var endpoint = (YamlSequenceNode)mirror.Children[new YamlScalarNode("endpoint")];
            Assert.Equal($"https://{Host}", ((YamlScalarNode)endpoint.Children[0]).Value);
        }

        var flat = YamlPaths.Flatten(File.ReadAllText(registries));
        Assert.Equal("openlm/$1", flat["mirrors.public.ecr.aws.rewrite.^r3q3q2f4/(.*)$"]);
        Assert.Equal("/etc/openlm/registry-ca.pem", flat[$"configs.{Host}.tls.ca_file"]);

        // And the containerd tree has docker.io (path kept under the prefix) and the target itself
        Assert.True(File.Exists(Path.Combine(hosts, "docker.io", "hosts.toml")));
        Assert.True(File.Exists(Path.Combine(hosts, "registry.corp_5000_", "hosts.toml")));
        Assert.Contains("override_path = true", File.ReadAllText(Path.Combine(hosts, "docker.io", "hosts.toml")), StringComparison.Ordinal);

        // And no Helm values were written
        Assert.Equal(["certs.d", "registries.yaml"], Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Values_Json_SummarisesOutputs()
    {
        var dir = bundle.NewDirectory();
        var output = Path.Combine(dir, "v.yaml");

        var (exit, stdout, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "-o", output,
            "--k3s-registries-out", Path.Combine(dir, "registries.yaml"), "--json");

        Assert.True(exit == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        Assert.Equal("verified", root.GetProperty("signature").GetProperty("status").GetString());
        Assert.Equal(bundle.Written.BundleDigest.ToString(), root.GetProperty("bundleDigest").GetString());
        Assert.Equal(Target, root.GetProperty("target").GetString());
        Assert.Equal(output, root.GetProperty("values").GetProperty("path").GetString());
        Assert.Equal("override", root.GetProperty("values").GetProperty("mode").GetString());
        Assert.Equal(Path.Combine(dir, "registries.yaml"), root.GetProperty("k3sRegistries").GetString());
        Assert.Equal(4, root.GetProperty("valuesPaths").GetInt32());
        Assert.Equal(1, root.GetProperty("chartCount").GetInt32());
        var uses = root.GetProperty("imageValues").EnumerateArray().ToList();
        Assert.Contains(uses, u => u.GetProperty("path").GetString() == "kafka.image.*"
                                   && u.GetProperty("target").GetString()!.StartsWith($"{Host}/openlm/bitnami/kafka:3.7.0-debian-12-r0@", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Values_NoOutputGiven_Exits2()
    {
        var (exit, _, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("-o", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Values_ValuesWithoutOutput_Exits2()
    {
        var dir = bundle.NewDirectory();
        var input = Path.Combine(dir, "values.yaml");
        File.WriteAllText(input, CustomerValues);

        var (exit, _, _) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--values", input, "--k3s-registries-out", Path.Combine(dir, "r.yaml"));

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Equal(CustomerValues, File.ReadAllText(input));
        Assert.False(File.Exists(Path.Combine(dir, "r.yaml")));
    }

    [Fact]
    public async Task Values_BadTarget_Exits2()
    {
        var (exit, _, stderr) = await RunAsync("values", bundle.BundlePath, "--to", "registry", "-o", Path.Combine(bundle.NewDirectory(), "v.yaml"));

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("invalid target 'registry'", stderr, StringComparison.Ordinal);
    }
}
