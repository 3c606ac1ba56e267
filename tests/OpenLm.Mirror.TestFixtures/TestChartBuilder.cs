using System.Text;

namespace OpenLm.Mirror.TestFixtures;

/// <summary>Knobs for the generated chart, so integration tests can point every image at a local registry.</summary>
public sealed record TestChartOptions
{
    /// <summary>Registry + namespace of the OpenLM images (<c>public.ecr.aws/r3q3q2f4</c>). The Bitnami-style kafka chart splits it into registry and namespace.</summary>
    public string Source { get; init; } = TestChartBuilder.DefaultSource;

    /// <summary>Tag of the OpenLM service images.</summary>
    public string ImageTag { get; init; } = "1.260716.1540";

    /// <summary>Tag the umbrella's values pin for identity, overriding the subchart default (<see cref="ImageTag"/>).</summary>
    public string IdentityOverrideTag { get; init; } = "1.260716.1541";

    /// <summary>The one third-party image, set in the umbrella's own values at <c>kafkaUi.image</c>.</summary>
    public string ThirdPartyImage { get; init; } = "docker.io/provectuslabs/kafka-ui:v0.7.1";

    /// <summary>Tags of the Bitnami-style kafka and jmx-exporter images.</summary>
    public string KafkaTag { get; init; } = "3.9.0-debian-12-r4";

    public string JmxExporterTag { get; init; } = "1.1.0-debian-12-r1";

    /// <summary>Include the malformed <c>redis:alpine3.17:25.6.17.422</c> at <c>identity.redis.image</c> (as the real chart has).</summary>
    public bool IncludeMalformed { get; init; } = true;
}

/// <summary>An image the scanner must find in the generated chart.</summary>
public sealed record ExpectedImage
{
    /// <summary>Values path from the umbrella; split-key images end in <c>.*</c>.</summary>
    public required string ValuesPath { get; init; }

    /// <summary>Normalised reference string.</summary>
    public required string Reference { get; init; }

    /// <summary>Chart path (names/aliases from the umbrella), e.g. <c>openlm/jobs</c>.</summary>
    public required string ChartPath { get; init; }

    /// <summary>Values file that sets (the winning part of) the image.</summary>
    public required string File { get; init; }

    public required bool Enabled { get; init; }

    /// <summary>Bitnami-style registry/repository/tag mapping rather than one string.</summary>
    public required bool Split { get; init; }

    public bool UsesGlobalImageRegistry { get; init; }

    public bool TagFromAppVersion { get; init; }
}

/// <summary>A malformed reference the scanner must report.</summary>
public sealed record ExpectedInvalid
{
    public required string ValuesPath { get; init; }

    public required string Raw { get; init; }

    public required string ChartPath { get; init; }

    public required string ChartName { get; init; }

    public required string File { get; init; }
}

/// <summary>A generated chart on disk and what a scan of it must return.</summary>
public sealed record TestChart
{
    /// <summary>The chart directory or .tgz.</summary>
    public required string Path { get; init; }

    public required string ChartName { get; init; }

    public required string ChartVersion { get; init; }

    public required IReadOnlyList<ExpectedImage> ExpectedImages { get; init; }

    public required IReadOnlyList<ExpectedInvalid> ExpectedInvalid { get; init; }

    /// <summary>The (values path, reference) pairs, sorted by values path.</summary>
    public IReadOnlyList<(string ValuesPath, string Reference)> ExpectedFindings =>
        ExpectedImages.OrderBy(e => e.ValuesPath, StringComparer.Ordinal).Select(e => (e.ValuesPath, e.Reference)).ToList();

    /// <summary>Distinct references, sorted ordinal (what the platform image list must contain).</summary>
    public IReadOnlyList<string> ExpectedReferences =>
        ExpectedImages.Select(e => e.Reference).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
}

/// <summary>
/// Builds an umbrella chart shaped like the real OpenLM chart (<c>openlm</c> + subcharts), as a directory or a .tgz:
/// <list type="bullet">
/// <item><c>server</c> (directory): full-string images at <c>deployment.image</c>, <c>migrations.image</c> and in an <c>initContainers</c> list;</item>
/// <item><c>identity</c> (directory): split <c>image.repository</c>/<c>tag</c> whose tag the umbrella overrides, plus the malformed redis reference;</item>
/// <item><c>reporting</c> (nested .tgz): <c>image</c> and <c>worker.image</c>;</item>
/// <item><c>olm-jobs</c> aliased <c>jobs</c>: <c>job.image</c> and the same image again at <c>cronJobs.cleanup.image</c>;</item>
/// <item><c>kafka</c> (Bitnami style): <c>image.registry/repository/tag/digest</c>, its own <c>global.imageRegistry</c>, and a disabled <c>metrics.jmx.image</c>;</item>
/// <item><c>legacy-agent</c>: disabled by the umbrella (<c>legacy-agent.enabled: false</c>, condition);</item>
/// <item><c>portal</c> (directory) with its own nested subchart <c>portal-ui</c> as .tgz, whose empty tag falls back to appVersion;</item>
/// <item>the umbrella's own <c>kafkaUi.image</c>: the docker.io third-party image.</item>
/// </list>
/// </summary>
public static class TestChartBuilder
{
    public const string DefaultSource = "public.ecr.aws/r3q3q2f4";
    public const string UmbrellaName = "openlm";
    public const string UmbrellaVersion = "1.260810.1250";
    public const string MalformedReference = "redis:alpine3.17:25.6.17.422";
    public const string KafkaChartVersion = "31.5.0";

    /// <summary>Writes the chart as directory <c>&lt;parentDirectory&gt;/openlm</c> (subcharts reporting and portal-ui stay .tgz inside it).</summary>
    public static TestChart WriteDirectory(string parentDirectory, TestChartOptions? options = null)
    {
        options ??= new TestChartOptions();
        var root = Path.Combine(parentDirectory, UmbrellaName);
        foreach (var (name, content) in Files(options))
        {
            var path = Path.Combine(parentDirectory, name.Replace('/', Path.DirectorySeparatorChar));
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, content);
        }

        return Describe(root, options);
    }

    /// <summary>Writes the chart as <c>&lt;parentDirectory&gt;/&lt;fileName&gt;</c> (default <c>openlm-1.260810.1250.tgz</c>), the way <c>helm package</c> would.</summary>
    public static TestChart WriteTgz(string parentDirectory, TestChartOptions? options = null, string? fileName = null)
    {
        options ??= new TestChartOptions();
        var path = Path.Combine(parentDirectory, fileName ?? $"{UmbrellaName}-{UmbrellaVersion}.tgz");
        TarGz.Write(path, Files(options).Select(f => new TarGzEntry(f.Name, f.Content)));
        return Describe(path, options);
    }

    /// <summary>The chart's files as archive entries (<c>openlm/Chart.yaml</c>, …), for tests that build custom archives.</summary>
    public static IReadOnlyList<(string Name, byte[] Content)> Files(TestChartOptions? options = null)
    {
        options ??= new TestChartOptions();
        var files = new List<(string Name, byte[] Content)>();
        Render(Umbrella(options), UmbrellaName + "/", files);
        return files;
    }

    /// <summary>Tag of the Bitnami os-shell image both standalone Bitnami-style charts use at <c>volumePermissions.image</c>.</summary>
    public const string OsShellTag = "12-debian-12-r30";

    /// <summary>
    /// A standalone Bitnami-style chart (installed as its own Helm release, e.g. redis next to the umbrella), written
    /// as <c>&lt;name&gt;-&lt;version&gt;.tgz</c>: split images at <c>image.*</c> (<c>docker.io/bitnami/&lt;name&gt;</c>) and
    /// <c>volumePermissions.image.*</c> (<c>docker.io/bitnami/os-shell</c>), pull secrets in Bitnami's list form
    /// <c>global.imagePullSecrets: []</c> that the templates range over.
    /// </summary>
    public static TestChart WriteBitnamiTgz(string parentDirectory, string name, string version, string imageTag)
    {
        var chart = Chart(name, version, $$"""
            global:
              imageRegistry: ""
              imagePullSecrets: []
            image:
              registry: docker.io
              repository: bitnami/{{name}}
              tag: {{imageTag}}
              digest: ""
              pullPolicy: IfNotPresent
              pullSecrets: []
            volumePermissions:
              enabled: false
              image:
                registry: docker.io
                repository: bitnami/os-shell
                tag: {{OsShellTag}}
                digest: ""
            """) with
        {
            Templates =
            [
                ("statefulset.yaml", """
                    apiVersion: apps/v1
                    kind: StatefulSet
                    metadata:
                      name: {{ .Release.Name }}
                    spec:
                      template:
                        spec:
                          {{- if .Values.global.imagePullSecrets }}
                          imagePullSecrets:
                          {{- range .Values.global.imagePullSecrets }}
                            - name: {{ . }}
                          {{- end }}
                          {{- end }}
                          containers: []
                    """ + "\n"),
            ],
        };
        var files = new List<(string Name, byte[] Content)>();
        Render(chart, name + "/", files);
        var path = Path.Combine(parentDirectory, $"{name}-{version}.tgz");
        TarGz.Write(path, files.Select(f => new TarGzEntry(f.Name, f.Content)));
        ExpectedImage Image(string valuesPath, string reference) => new()
        {
            ValuesPath = valuesPath, Reference = reference, ChartPath = name, File = $"{name}/values.yaml", Enabled = true, Split = true, UsesGlobalImageRegistry = true,
        };
        return new TestChart
        {
            Path = path,
            ChartName = name,
            ChartVersion = version,
            ExpectedImages =
            [
                Image("image.*", $"docker.io/bitnami/{name}:{imageTag}"),
                Image("volumePermissions.image.*", $"docker.io/bitnami/os-shell:{OsShellTag}"),
            ],
            ExpectedInvalid = [],
        };
    }

    /// <summary>What a scan of the chart must find, for the given options.</summary>
    public static TestChart Describe(string path, TestChartOptions? options = null)
    {
        options ??= new TestChartOptions();
        var s = options.Source.TrimEnd('/');
        var t = options.ImageTag;
        var (registry, ns) = SplitSource(s);
        var kafkaRepo = ns.Length == 0 ? "kafka" : $"{ns}/kafka";
        var jmxRepo = ns.Length == 0 ? "jmx-exporter" : $"{ns}/jmx-exporter";
        var reportingTgz = $"{UmbrellaName}/charts/reporting-{t}.tgz!/reporting";
        var portalUiTgz = $"{UmbrellaName}/charts/portal/charts/portal-ui-{t}.tgz!/portal-ui";
        string Values(string chart) => $"{UmbrellaName}/charts/{chart}/values.yaml";
        const string umbrellaValues = UmbrellaName + "/values.yaml";

        ExpectedImage Image(string path, string reference, string chart, string file, bool enabled = true, bool split = false) =>
            new() { ValuesPath = path, Reference = reference, ChartPath = chart, File = file, Enabled = enabled, Split = split };

        var images = new List<ExpectedImage>
        {
            Image("kafkaUi.image", Normalise(options.ThirdPartyImage), "openlm", umbrellaValues),
            Image("server.deployment.image", $"{s}/olm-server:{t}", "openlm/server", Values("server")),
            Image("server.migrations.image", $"{s}/olm-server-migrations:{t}", "openlm/server", Values("server")),
            Image("server.initContainers[0].image", $"{s}/olm-wait:{t}", "openlm/server", Values("server")),
            Image("identity.image.*", $"{s}/olm-identity:{options.IdentityOverrideTag}", "openlm/identity", umbrellaValues, split: true),
            Image("reporting.image", $"{s}/olm-reporting:{t}", "openlm/reporting", $"{reportingTgz}/values.yaml"),
            Image("reporting.worker.image", $"{s}/olm-reporting-worker:{t}", "openlm/reporting", $"{reportingTgz}/values.yaml"),
            Image("jobs.job.image", $"{s}/olm-jobs:{t}", "openlm/jobs", Values("olm-jobs")),
            Image("jobs.cronJobs.cleanup.image", $"{s}/olm-jobs:{t}", "openlm/jobs", Values("olm-jobs")),
            Image("kafka.image.*", $"{registry}/{kafkaRepo}:{options.KafkaTag}", "openlm/kafka", Values("kafka"), split: true) with { UsesGlobalImageRegistry = true },
            Image("kafka.metrics.jmx.image.*", $"{registry}/{jmxRepo}:{options.JmxExporterTag}", "openlm/kafka", Values("kafka"), enabled: false, split: true) with { UsesGlobalImageRegistry = true },
            Image("legacy-agent.image", $"{s}/olm-legacy-agent:{t}", "openlm/legacy-agent", Values("legacy-agent"), enabled: false),
            Image("portal.image", $"{s}/olm-portal:{t}", "openlm/portal", Values("portal")),
            Image("portal.portal-ui.image.*", $"{s}/olm-portal-ui:{t}", "openlm/portal/portal-ui", $"{portalUiTgz}/values.yaml", split: true) with { TagFromAppVersion = true },
        };

        var invalid = options.IncludeMalformed
            ? new List<ExpectedInvalid>
            {
                new() { ValuesPath = "identity.redis.image", Raw = MalformedReference, ChartPath = "openlm/identity", ChartName = "identity", File = Values("identity") },
            }
            : [];

        return new TestChart
        {
            Path = path,
            ChartName = UmbrellaName,
            ChartVersion = UmbrellaVersion,
            ExpectedImages = images.OrderBy(i => i.ValuesPath, StringComparer.Ordinal).ToList(),
            ExpectedInvalid = invalid,
        };
    }

    private static (string Registry, string Namespace) SplitSource(string source)
    {
        var slash = source.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? (source, string.Empty) : (source[..slash], source[(slash + 1)..]);
    }

    /// <summary>Docker Hub shorthand expansion for the expected list (<c>nginx:1</c> → <c>docker.io/library/nginx:1</c>).</summary>
    private static string Normalise(string reference) =>
        OpenLm.Mirror.Oci.Reference.Parse(reference).ToString();

    private sealed record ChartDef(string Name, string Version, string ChartYaml, string ValuesYaml, IReadOnlyList<(ChartDef Chart, bool AsTgz)> Subcharts)
    {
        /// <summary>Template files beside NOTES.txt (name under <c>templates/</c>, text).</summary>
        public IReadOnlyList<(string Name, string Text)> Templates { get; init; } = [];
    }

    private static void Render(ChartDef chart, string prefix, List<(string Name, byte[] Content)> files)
    {
        files.Add((prefix + "Chart.yaml", Encoding.UTF8.GetBytes(chart.ChartYaml)));
        files.Add((prefix + "values.yaml", Encoding.UTF8.GetBytes(chart.ValuesYaml)));
        files.Add((prefix + "templates/NOTES.txt", Encoding.UTF8.GetBytes($"{chart.Name} {{{{ .Chart.Version }}}} installed.\n")));
        foreach (var (name, text) in chart.Templates)
        {
            files.Add((prefix + "templates/" + name, Encoding.UTF8.GetBytes(text)));
        }

        foreach (var (sub, asTgz) in chart.Subcharts)
        {
            if (asTgz)
            {
                var inner = new List<(string Name, byte[] Content)>();
                Render(sub, sub.Name + "/", inner);
                files.Add(($"{prefix}charts/{sub.Name}-{sub.Version}.tgz", TarGz.Create(inner.Select(f => new TarGzEntry(f.Name, f.Content)))));
            }
            else
            {
                Render(sub, $"{prefix}charts/{sub.Name}/", files);
            }
        }
    }

    private static ChartDef Umbrella(TestChartOptions o)
    {
        var s = o.Source.TrimEnd('/');
        var t = o.ImageTag;
        var (registry, ns) = SplitSource(s);
        var nsPrefix = ns.Length == 0 ? string.Empty : ns + "/";

        var server = OpenLmStyle(Chart("server", t, $$"""
            replicaCount: 1
            deployment:
              image: {{s}}/olm-server:{{t}}
              imagePullPolicy: IfNotPresent
              resources: {}
            migrations:
              enabled: true
              image: "{{s}}/olm-server-migrations:{{t}}"
            initContainers:
              - name: wait-for-db
                image: {{s}}/olm-wait:{{t}}
                args: ["--timeout", "300"]
            service:
              port: 8080
            imagePullSecrets:
              name: ""
            """));

        var identity = OpenLmStyle(Chart("identity", t, $$"""
            image:
              repository: {{s}}/olm-identity
              tag: "{{t}}"
              pullPolicy: IfNotPresent
            redis:
              enabled: true
            {{(o.IncludeMalformed ? $"  image: {MalformedReference}\n" : string.Empty)}}  port: 6379
            imagePullSecrets:
              name: ""
            """));

        var reporting = OpenLmStyle(Chart("reporting", t, $$"""
            image: {{s}}/olm-reporting:{{t}}
            worker:
              replicas: 2
              image: {{s}}/olm-reporting-worker:{{t}}
            imagePullSecrets:
              name: ""
            """));

        var jobs = OpenLmStyle(Chart("olm-jobs", t, $$"""
            imagePullSecrets:
              name: ""
            job:
              image: {{s}}/olm-jobs:{{t}}
              schedule: "0 2 * * *"
            cronJobs:
              cleanup:
                image: {{s}}/olm-jobs:{{t}}
                schedule: "30 3 * * *"
            """));

        var kafka = Chart("kafka", KafkaChartVersion, $$"""
            ## Bitnami-style values (trimmed)
            global:
              imageRegistry: "{{registry}}"
              imagePullSecrets: []
              defaultStorageClass: ""
            image:
              registry: docker.io
              repository: {{nsPrefix}}kafka
              tag: {{o.KafkaTag}}
              digest: ""
              pullPolicy: IfNotPresent
            metrics:
              jmx:
                enabled: false
                image:
                  registry: docker.io
                  repository: {{nsPrefix}}jmx-exporter
                  tag: {{o.JmxExporterTag}}
                  digest: ""
            """, appVersion: "3.9.0");

        var legacy = OpenLmStyle(Chart("legacy-agent", t, $$"""
            enabled: true
            image: {{s}}/olm-legacy-agent:{{t}}
            imagePullSecrets:
              name: ""
            """));

        var portalUi = Chart("portal-ui", t, $$"""
            image:
              repository: {{s}}/olm-portal-ui
              # empty: the template falls back to .Chart.AppVersion
              tag: ""
            """);

        var portal = OpenLmStyle(Chart(
            "portal",
            t,
            $$"""
            image: {{s}}/olm-portal:{{t}}
            imagePullSecrets:
              name: ""
            portal-ui:
              enabled: true
            """,
            dependencies: [("portal-ui", null, "portal-ui.enabled")],
            subcharts: [(portalUi, true)]));

        return Chart(
            UmbrellaName,
            UmbrellaVersion,
            $$"""
            global:
              environment: production
            kafkaUi:
              enabled: true
              image: {{o.ThirdPartyImage}}
            server:
              enabled: true
              replicaCount: 2
              imagePullSecrets: {name: ""}
            identity:
              enabled: true
              imagePullSecrets: {name: ""}
              image:
                tag: "{{o.IdentityOverrideTag}}"
            reporting:
              enabled: true
              imagePullSecrets: {name: ""}
            jobs:
              imagePullSecrets: {name: ""}
            kafka:
              enabled: true
            legacy-agent:
              enabled: false
              imagePullSecrets: {name: ""}
            portal:
              imagePullSecrets: {name: ""}
            """,
            dependencies:
            [
                ("server", null, "server.enabled"),
                ("identity", null, "identity.enabled"),
                ("reporting", null, "reporting.enabled"),
                ("olm-jobs", "jobs", null),
                ("kafka", null, "kafka.enabled"),
                ("legacy-agent", null, "legacy-agent.enabled"),
                ("portal", null, null),
            ],
            subcharts:
            [
                (server, false),
                (identity, false),
                (reporting, true),
                (jobs, false),
                (kafka, false),
                (legacy, false),
                (portal, false),
            ]);
    }

    /// <summary>
    /// OpenLM's convention: the chart's pods take their pull secret from <c>.Values.imagePullSecrets.name</c> (a mapping,
    /// default <c>{name: ""}</c>), so a list given there fails to render.
    /// </summary>
    private static ChartDef OpenLmStyle(ChartDef chart) => chart with
    {
        Templates =
        [
            ("deployment.yaml", """
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: {{ .Release.Name }}-{{ .Chart.Name }}
                spec:
                  template:
                    spec:
                      {{- if .Values.imagePullSecrets.name }}
                      imagePullSecrets:
                        - name: {{ .Values.imagePullSecrets.name }}
                      {{- end }}
                      containers: []
                """ + "\n"),
        ],
    };

    private static ChartDef Chart(
        string name,
        string version,
        string values,
        string? appVersion = null,
        IReadOnlyList<(string Name, string? Alias, string? Condition)>? dependencies = null,
        IReadOnlyList<(ChartDef Chart, bool AsTgz)>? subcharts = null)
    {
        subcharts ??= [];
        var yaml = new StringBuilder();
        yaml.Append("apiVersion: v2\n")
            .Append("name: ").Append(name).Append('\n')
            .Append("description: OpenLM test fixture chart ").Append(name).Append('\n')
            .Append("type: application\n")
            .Append("version: ").Append(version).Append('\n')
            .Append("appVersion: \"").Append(appVersion ?? version).Append("\"\n");
        if (dependencies is { Count: > 0 })
        {
            yaml.Append("dependencies:\n");
            foreach (var (depName, alias, condition) in dependencies)
            {
                var sub = subcharts.First(c => c.Chart.Name == depName).Chart;
                yaml.Append("  - name: ").Append(depName).Append('\n')
                    .Append("    version: ").Append(sub.Version).Append('\n')
                    .Append("    repository: file://charts/").Append(depName).Append('\n');
                if (alias is not null)
                {
                    yaml.Append("    alias: ").Append(alias).Append('\n');
                }

                if (condition is not null)
                {
                    yaml.Append("    condition: ").Append(condition).Append('\n');
                }
            }
        }

        return new ChartDef(name, version, yaml.ToString(), values.ReplaceLineEndings("\n") + "\n", subcharts);
    }
}
