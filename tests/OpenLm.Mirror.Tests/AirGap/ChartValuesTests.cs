using System.Text.Json;
using OpenLm.Mirror.TestFixtures;
using Xunit;
using YamlDotNet.RepresentationModel;
using static OpenLm.Mirror.Tests.AirGap.ChartBundleFixture;

namespace OpenLm.Mirror.Tests.AirGap;

/// <summary>
/// <c>values</c> on bundles that carry their charts: pull secrets in each chart's declared shape, checked the way Helm
/// coalesces a values file over the chart's defaults; one values file per top-level chart; the chart archives delivered.
/// </summary>
public sealed class ChartValuesTests(ChartBundleFixture bundle) : IClassFixture<ChartBundleFixture>
{
    private const string Target = "registry.corp:5000/openlm";
    private const string Host = "registry.corp:5000";
    private const string Secret = "regcred";

    /// <summary>OpenLM's subchart sections (values keys of the umbrella) whose templates read <c>.Values.imagePullSecrets.name</c>.</summary>
    private static readonly string[] OpenLmSections = ["server", "identity", "reporting", "jobs", "legacy-agent", "portal"];

    [Fact]
    public async Task Values_PullSecret_OpenLmSubchartsGetTheNameMappingTheirTemplatesRead()
    {
        // Given a bundle with the umbrella chart alone
        var output = Path.Combine(bundle.NewDirectory(), "values-airgap.yaml");

        // When values is run with a pull secret
        var (exit, stdout, stderr) = await RunAsync("values", bundle.UmbrellaBundlePath, "--to", Target, "--key", bundle.PublicKey, "-o", output, "--pull-secret", Secret);

        // Then every OpenLM subchart gets imagePullSecrets: {name: regcred}, the Bitnami kafka subchart the global list of names,
        // and the umbrella's own kafkaUi (which declares nothing) the Kubernetes list
        Assert.True(exit == 0, stderr);
        var values = YamlPaths.Flatten(File.ReadAllText(output));
        foreach (var section in OpenLmSections)
        {
            Assert.Equal(Secret, values[$"{section}.imagePullSecrets.name"]);
            Assert.DoesNotContain($"{section}.imagePullSecrets[0]", values.Keys);
            Assert.DoesNotContain($"{section}.imagePullSecrets[0].name", values.Keys);
        }

        Assert.Equal(Secret, values["global.imagePullSecrets[0]"]);
        Assert.Equal(Secret, values["kafkaUi.imagePullSecrets[0].name"]);

        // And the install line names the chart as import pushed it
        Assert.Contains($"oci://{Host}/openlm/charts/{TestChartBuilder.UmbrellaName} --version {TestChartBuilder.UmbrellaVersion}", stdout, StringComparison.Ordinal);

        // And, coalesced over the chart's defaults the way Helm does, each OpenLM section's .Values.imagePullSecrets.name is the secret
        var effective = HelmCoalesce(LoadYaml(File.ReadAllText(output)), UmbrellaDefaults());
        foreach (var section in OpenLmSections)
        {
            var secrets = Assert.IsType<YamlMappingNode>(effective[section]["imagePullSecrets"]);
            Assert.Equal(Secret, ((YamlScalarNode)secrets["name"]).Value);
        }
    }

    [Fact]
    public async Task Values_PullSecretWithValuesRewrite_KeepsTheMappingShapeOfTheChartsOwnValuesFile()
    {
        // Given the umbrella's own values.yaml, which writes every section's default as the flow mapping {name: ""}
        var dir = bundle.NewDirectory();
        var input = Path.Combine(dir, "values.yaml");
        var original = System.Text.Encoding.UTF8.GetString(TestChartBuilder.Files(new TestChartOptions { IncludeMalformed = false })
            .Single(f => f.Name == TestChartBuilder.UmbrellaName + "/values.yaml").Content);
        File.WriteAllText(input, original);
        var output = Path.Combine(dir, "values-airgap.yaml");

        // When it is rewritten with a pull secret
        var (exit, _, stderr) = await RunAsync("values", bundle.UmbrellaBundlePath, "--to", Target, "--key", bundle.PublicKey, "--values", input, "-o", output, "--pull-secret", Secret);

        // Then it succeeds and each mapping now names the secret, still a mapping, still on its own line
        Assert.True(exit == 0, stderr);
        var text = File.ReadAllText(output);
        var values = YamlPaths.Flatten(text);
        foreach (var section in OpenLmSections)
        {
            Assert.Equal(Secret, values[$"{section}.imagePullSecrets.name"]);
        }

        Assert.Contains($"  imagePullSecrets: {{name: \"{Secret}\"}}\n", text, StringComparison.Ordinal);
        Assert.Equal($"{Host}/openlm/olm-server@{bundle.DigestOf(TestChartBuilder.DefaultSource + "/olm-server:1.260716.1540")}", values["server.deployment.image"]);
    }

    [Fact]
    public async Task Values_ThreeChartBundle_DirectoryGetsOneFilePerChart()
    {
        // Given a bundle with the umbrella and the standalone redis and kafka charts, and an output directory
        var dir = bundle.NewDirectory();

        // When values writes to the directory
        var (exit, stdout, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "-o", dir, "--pull-secret", Secret, "--json");

        // Then there is one file per chart, each with exactly its own chart's image paths
        Assert.True(exit == 0, stderr);
        var files = Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["kafka.values-airgap.yaml", "openlm.values-airgap.yaml", "redis.values-airgap.yaml"], files);
        foreach (var (chart, name, tag) in new[] { (bundle.Redis, "redis", "7.4.2-debian-12-r0"), (bundle.Kafka, "kafka", "3.9.0-debian-12-r4") })
        {
            var values = YamlPaths.Flatten(File.ReadAllText(Path.Combine(dir, $"{name}.values-airgap.yaml")));
            Assert.Equal(Host, values["image.registry"]);
            Assert.Equal($"openlm/bitnami/{name}", values["image.repository"]);
            Assert.Equal(tag, values["image.tag"]);
            Assert.Equal(bundle.DigestOf($"docker.io/bitnami/{name}:{tag}"), values["image.digest"]);
            Assert.Equal("openlm/bitnami/os-shell", values["volumePermissions.image.repository"]);
            Assert.Equal(Host, values["global.imageRegistry"]);
            Assert.Equal(Secret, values["global.imagePullSecrets[0]"]);
            Assert.Equal(
                ["global.imagePullSecrets[0]", "global.imageRegistry", "image.digest", "image.registry", "image.repository", "image.tag",
                 "volumePermissions.image.digest", "volumePermissions.image.registry", "volumePermissions.image.repository", "volumePermissions.image.tag"],
                values.Keys.Order(StringComparer.Ordinal));
            Assert.Equal(2, chart.ExpectedImages.Count);
        }

        var umbrella = YamlPaths.Flatten(File.ReadAllText(Path.Combine(dir, "openlm.values-airgap.yaml")));
        Assert.DoesNotContain("image.repository", umbrella.Keys);
        Assert.Equal("openlm/kafka", umbrella["kafka.image.repository"]);

        using var json = JsonDocument.Parse(stdout);
        var listed = json.RootElement.GetProperty("valuesFiles").EnumerateArray().Select(f => f.GetProperty("chart").GetString()).Order(StringComparer.Ordinal);
        Assert.Equal(["kafka", "openlm", "redis"], listed);
    }

    [Fact]
    public async Task Values_ThreeChartBundle_OneFileWithoutChartIsRefusedNamingTheCharts()
    {
        var output = Path.Combine(bundle.NewDirectory(), "values-airgap.yaml");

        var (exit, _, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "-o", output);

        Assert.Equal(2, exit);
        Assert.Contains("--chart", stderr, StringComparison.Ordinal);
        Assert.Contains("3 top-level charts (kafka, openlm, redis)", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task Values_ChartOption_PicksOneRelease()
    {
        var output = Path.Combine(bundle.NewDirectory(), "redis-airgap.yaml");

        var (exit, stdout, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "-o", output, "--chart", "redis");

        Assert.True(exit == 0, stderr);
        var values = YamlPaths.Flatten(File.ReadAllText(output));
        Assert.Equal("openlm/bitnami/redis", values["image.repository"]);
        Assert.DoesNotContain("server.deployment.image", values.Keys);
        Assert.Contains($"helm upgrade --install redis oci://{Host}/openlm/charts/redis --version {RedisVersion}", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Values_UnknownChart_IsRefusedListingTheCharts()
    {
        var output = Path.Combine(bundle.NewDirectory(), "v.yaml");

        var (exit, _, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "-o", output, "--chart", "mongodb");

        Assert.Equal(2, exit);
        Assert.Contains("--chart", stderr, StringComparison.Ordinal);
        Assert.Contains("no chart 'mongodb'", stderr, StringComparison.Ordinal);
        Assert.Contains("redis", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task Values_ChartOut_WritesEachChartArchiveByteForByte()
    {
        var dir = Path.Combine(bundle.NewDirectory(), "charts");

        var (exit, stdout, stderr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "--chart-out", dir);

        Assert.True(exit == 0, stderr);
        foreach (var chart in new[] { bundle.Umbrella, bundle.Redis, bundle.Kafka })
        {
            var written = Path.Combine(dir, $"{chart.ChartName}-{chart.ChartVersion}.tgz");
            Assert.Equal(File.ReadAllBytes(chart.Path), File.ReadAllBytes(written));
            Assert.Contains(written, stdout, StringComparison.Ordinal);
        }

        Assert.Equal(3, Directory.GetFiles(dir).Length);

        // And without a registry named, the archives alone are written just the same
        var alone = Path.Combine(bundle.NewDirectory(), "charts");
        var (aloneExit, _, aloneErr) = await RunAsync("values", bundle.BundlePath, "--key", bundle.PublicKey, "--chart-out", alone);
        Assert.True(aloneExit == 0, aloneErr);
        Assert.Equal(3, Directory.GetFiles(alone).Length);

        // And a second run refuses to overwrite them
        var (again, _, againErr) = await RunAsync("values", bundle.BundlePath, "--to", Target, "--key", bundle.PublicKey, "--chart-out", dir);
        Assert.Equal(2, again);
        Assert.Contains("--force", againErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Values_ChartOutWithAnExistingValuesFile_WritesNoArchive()
    {
        // Given a values file already there
        var dir = bundle.NewDirectory();
        var output = Path.Combine(dir, "values-airgap.yaml");
        await File.WriteAllTextAsync(output, "mine: 1\n");
        var charts = Path.Combine(dir, "charts");

        // When values would write it again, with the chart archives, without --force
        var (exit, _, stderr) = await RunAsync("values", bundle.UmbrellaBundlePath, "--to", Target, "--key", bundle.PublicKey, "-o", output, "--chart-out", charts);

        // Then nothing is written: neither the values nor any archive
        Assert.Equal(2, exit);
        Assert.Contains("--force", stderr, StringComparison.Ordinal);
        Assert.Equal("mine: 1\n", await File.ReadAllTextAsync(output));
        Assert.False(Directory.Exists(charts) && Directory.EnumerateFileSystemEntries(charts).Any());
    }

    [Fact]
    public async Task Values_NoRegistry_NamesExactlyTheNodeArchiveReferencesWithIfNotPresent()
    {
        // Given the node archive of the umbrella bundle
        var dir = bundle.NewDirectory();
        var archive = Path.Combine(dir, "openlm-images.tar");
        var (archiveExit, archiveJson, archiveErr) = await RunAsync("node-archive", bundle.UmbrellaBundlePath, "--key", bundle.PublicKey, "-o", archive, "--json");
        Assert.True(archiveExit == 0, archiveErr);
        using var report = JsonDocument.Parse(archiveJson);
        var names = report.RootElement.GetProperty("images").EnumerateArray()
            .SelectMany(i => new[] { i.GetProperty("source").GetString()!, i.GetProperty("digestReference").GetString()! })
            .ToHashSet(StringComparer.Ordinal);

        // When values is written for no registry
        var output = Path.Combine(dir, "values-airgap.yaml");
        var (exit, stdout, stderr) = await RunAsync("values", bundle.UmbrellaBundlePath, "--no-registry", "--key", bundle.PublicKey, "-o", output);

        // Then every image value is a digest reference the archive names the image by
        Assert.True(exit == 0, stderr);
        var values = YamlPaths.Flatten(File.ReadAllText(output));
        var expected = TestChartBuilder.Describe(bundle.Umbrella.Path, new TestChartOptions { IncludeMalformed = false }).ExpectedImages;
        foreach (var image in expected)
        {
            var digest = bundle.DigestOf(image.Reference);
            var source = Oci.Reference.Parse(image.Reference);
            var written = image.Split
                ? $"{values[image.ValuesPath[..^1] + "registry"]}/{values[image.ValuesPath[..^1] + "repository"]}@{values[image.ValuesPath[..^1] + "digest"]}"
                : values[image.ValuesPath]!;
            Assert.Equal($"{source.Name}@{digest}", written);
            Assert.Contains(written, names);
        }

        // And IfNotPresent where the chart exposes a pull policy, and no registry is forced on the Bitnami subchart
        Assert.Equal("IfNotPresent", values["server.deployment.imagePullPolicy"]);
        Assert.Equal("IfNotPresent", values["identity.image.pullPolicy"]);
        Assert.Equal("IfNotPresent", values["kafka.image.pullPolicy"]);
        Assert.DoesNotContain("global.imageRegistry", values.Keys);
        Assert.DoesNotContain("server.migrations.imagePullPolicy", values.Keys);

        // And it says where the archive goes on every node
        Assert.Contains("/var/lib/rancher/k3s/agent/images/", stdout, StringComparison.Ordinal);
        Assert.Contains("/var/lib/rancher/rke2/agent/images/", stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--to", "registry.corp:5000")]
    [InlineData("--k3s-registries-out", "r.yaml")]
    public async Task Values_NoRegistryWithRegistrySettings_IsRefused(string flag, string value)
    {
        var dir = bundle.NewDirectory();

        var (exit, _, stderr) = await RunAsync("values", bundle.UmbrellaBundlePath, "--no-registry", flag, Path.Combine(dir, value), "--key", bundle.PublicKey, "-o", Path.Combine(dir, "v.yaml"));

        Assert.Equal(2, exit);
        Assert.Contains("--no-registry", stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public async Task Values_WithoutTargetOrNoRegistry_IsRefused()
    {
        var (exit, _, stderr) = await RunAsync("values", bundle.UmbrellaBundlePath, "--key", bundle.PublicKey, "-o", Path.Combine(bundle.NewDirectory(), "v.yaml"));

        Assert.Equal(2, exit);
        Assert.Contains("--to is required", stderr, StringComparison.Ordinal);
    }

    /// <summary>The umbrella's defaults as Helm sees them for the pull-secret keys: umbrella values over each subchart's.</summary>
    private static YamlMappingNode UmbrellaDefaults()
    {
        var files = TestChartBuilder.Files(new TestChartOptions { IncludeMalformed = false });
        var umbrella = LoadYaml(System.Text.Encoding.UTF8.GetString(files.Single(f => f.Name == TestChartBuilder.UmbrellaName + "/values.yaml").Content));
        var server = LoadYaml(System.Text.Encoding.UTF8.GetString(files.Single(f => f.Name == TestChartBuilder.UmbrellaName + "/charts/server/values.yaml").Content));
        return HelmCoalesce(umbrella, new YamlMappingNode { { "server", server } });
    }

    private static YamlMappingNode LoadYaml(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    /// <summary>
    /// Helm's coalesceTablesFullKey: the user's value wins; a table merges with a table; a user's non-table over a
    /// default table is kept ("cannot overwrite table with non table"); a user's table over a default non-table is kept too.
    /// </summary>
    private static YamlMappingNode HelmCoalesce(YamlMappingNode user, YamlMappingNode defaults)
    {
        var result = new YamlMappingNode();
        foreach (var (key, value) in user.Children)
        {
            result.Add(key, value);
        }

        foreach (var (key, value) in defaults.Children)
        {
            if (!result.Children.TryGetValue(key, out var mine))
            {
                result.Add(key, value);
            }
            else if (mine is YamlMappingNode a && value is YamlMappingNode b)
            {
                result.Children[key] = HelmCoalesce(a, b);
            }
        }

        return result;
    }
}
