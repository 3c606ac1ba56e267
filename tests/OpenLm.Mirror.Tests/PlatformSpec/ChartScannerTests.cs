using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.TestFixtures;
using Xunit;

namespace OpenLm.Mirror.Tests.PlatformSpec;

public sealed class ChartScannerTests : IDisposable
{
    private static readonly ChartScanOptions Skip = new() { SkipInvalid = true };
    private readonly ScratchDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private TestChart Write(bool tgz, TestChartOptions? options = null) =>
        tgz ? TestChartBuilder.WriteTgz(_dir.Path, options) : TestChartBuilder.WriteDirectory(_dir.Path, options);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ChartScanner_Scan_FindsEveryExpectedImageWithValuesPath(bool tgz)
    {
        // Given the OpenLM-shaped test chart as .tgz or directory
        var chart = Write(tgz);

        // When it is scanned
        var result = ChartScanner.Scan(chart.Path, Skip);

        // Then exactly the expected images are found, with path, chart, file and flags
        Assert.Equal("openlm", result.ChartName);
        Assert.Equal("1.260810.1250", result.ChartVersion);
        var actual = result.Findings.Select(f => new ExpectedImage
        {
            ValuesPath = f.ValuesPath,
            Reference = f.Reference.ToString(),
            ChartPath = f.ChartPath,
            File = f.File,
            Enabled = f.Enabled,
            Split = f.Kind == ImageFindingKind.Split,
            UsesGlobalImageRegistry = f.UsesGlobalImageRegistry,
            TagFromAppVersion = f.TagFromAppVersion,
        });
        Assert.Equal(chart.ExpectedImages, actual);
    }

    [Fact]
    public void ChartScanner_Scan_FindsBitnamiSplitKeys()
    {
        // Given the kafka subchart: image.registry docker.io, repository, tag, empty digest, global.imageRegistry set
        var chart = Write(tgz: true);

        // When it is scanned
        var result = ChartScanner.Scan(chart.Path, Skip);

        // Then global.imageRegistry replaces image.registry and the path ends in .*
        var kafka = Assert.Single(result.Findings, f => f.ValuesPath == "kafka.image.*");
        Assert.Equal(ImageFindingKind.Split, kafka.Kind);
        Assert.Equal("public.ecr.aws", kafka.Reference.Registry);
        Assert.Equal("r3q3q2f4/kafka", kafka.Reference.Repository);
        Assert.Equal("3.9.0-debian-12-r4", kafka.Reference.Tag);
        Assert.Null(kafka.Reference.Digest);
        Assert.True(kafka.UsesGlobalImageRegistry);
        Assert.Equal("kafka", kafka.ChartName);
        Assert.Equal("31.5.0", kafka.ChartVersion);
        Assert.True(Assert.Single(result.Charts, c => c.ChartPath == "openlm/kafka").DeclaresGlobalImageRegistry);
        Assert.False(Assert.Single(result.Charts, c => c.ChartPath == "openlm/server").DeclaresGlobalImageRegistry);
    }

    [Fact]
    public void ChartScanner_Scan_ScansNestedTgzSubchartsAtAnyDepth()
    {
        // Given reporting as .tgz inside the umbrella .tgz, and portal-ui as .tgz inside the portal directory
        var chart = Write(tgz: true);

        // When it is scanned
        var result = ChartScanner.Scan(chart.Path, Skip);

        // Then their images are found with paths prefixed by every level, and files inside the nested archives
        var reporting = Assert.Single(result.Findings, f => f.ValuesPath == "reporting.image");
        Assert.Equal("openlm/charts/reporting-1.260716.1540.tgz!/reporting/values.yaml", reporting.File);
        var portalUi = Assert.Single(result.Findings, f => f.ValuesPath == "portal.portal-ui.image.*");
        Assert.Equal("openlm/portal/portal-ui", portalUi.ChartPath);
        Assert.Equal("openlm/charts/portal/charts/portal-ui-1.260716.1540.tgz!/portal-ui/values.yaml", portalUi.File);
        Assert.True(portalUi.TagFromAppVersion);
        Assert.Equal(
            ["openlm", "openlm/identity", "openlm/jobs", "openlm/kafka", "openlm/legacy-agent", "openlm/portal", "openlm/portal/portal-ui", "openlm/reporting", "openlm/server"],
            result.Charts.Select(c => c.ChartPath));
        Assert.Equal("portal.portal-ui", Assert.Single(result.Charts, c => c.Name == "portal-ui").ValuesPrefix);
    }

    [Fact]
    public void ChartScanner_Scan_UsesDependencyAliasAsValuesPrefix()
    {
        // Given chart olm-jobs included under alias jobs
        var chart = Write(tgz: false);

        // When it is scanned
        var result = ChartScanner.Scan(chart.Path, Skip);

        // Then its job image is at jobs.job.image, attributed to chart olm-jobs
        var job = Assert.Single(result.Findings, f => f.ValuesPath == "jobs.job.image");
        Assert.Equal("olm-jobs", job.ChartName);
        Assert.Equal("openlm/jobs", job.ChartPath);
        Assert.Equal("jobs", Assert.Single(result.Charts, c => c.Name == "olm-jobs").Alias);
    }

    [Fact]
    public void ChartScanner_Scan_FlagsDisabledSubchartsButStillScansThem()
    {
        // Given legacy-agent disabled by the umbrella and kafka's jmx exporter disabled in its own values
        var chart = Write(tgz: true);

        // When it is scanned
        var result = ChartScanner.Scan(chart.Path, Skip);

        // Then their images are found and flagged, the others are enabled
        Assert.False(Assert.Single(result.Findings, f => f.ValuesPath == "legacy-agent.image").Enabled);
        Assert.False(Assert.Single(result.Findings, f => f.ValuesPath == "kafka.metrics.jmx.image.*").Enabled);
        Assert.True(Assert.Single(result.Findings, f => f.ValuesPath == "kafka.image.*").Enabled);
        Assert.False(Assert.Single(result.Charts, c => c.ChartPath == "openlm/legacy-agent").Enabled);
        Assert.Equal(2, result.Findings.Count(f => !f.Enabled));
    }

    [Fact]
    public void ChartScanner_Scan_AppliesUmbrellaOverridesToSubchartDefaults()
    {
        // Given identity's default tag 1.260716.1540 overridden by the umbrella's identity.image.tag
        var chart = Write(tgz: true);

        // When it is scanned
        var result = ChartScanner.Scan(chart.Path, Skip);

        // Then only the effective image is reported, blamed on the umbrella's values
        var identity = Assert.Single(result.Findings, f => f.ValuesPath.StartsWith("identity.image", StringComparison.Ordinal));
        Assert.Equal("public.ecr.aws/r3q3q2f4/olm-identity:1.260716.1541", identity.Reference.ToString());
        Assert.Equal("openlm/values.yaml", identity.File);
        Assert.Equal("identity", identity.ChartName);
    }

    [Fact]
    public void ChartScanner_Scan_ThrowsOnMalformedReferenceNamingChartFileAndPath()
    {
        // Given the chart with redis:alpine3.17:25.6.17.422 at identity.redis.image
        var chart = Write(tgz: true);

        // When it is scanned without SkipInvalid
        var ex = Assert.Throws<InputException>(() => ChartScanner.Scan(chart.Path));

        // Then the message lists the reference with chart, file, line and values path
        var lines = ex.Message.Split('\n');
        Assert.Equal($"chart '{chart.Path}' has 1 invalid image reference:", lines[0]);
        Assert.StartsWith(
            "openlm/charts/identity/values.yaml:7: identity.redis.image (chart openlm/identity 1.260716.1540): invalid reference 'redis:alpine3.17:25.6.17.422': ",
            lines[1],
            StringComparison.Ordinal);
        Assert.Equal(2, lines.Length);
    }

    [Fact]
    public void ChartScanner_Scan_ReturnsMalformedReferenceAsWarningWithSkipInvalid()
    {
        // Given the chart with the malformed reference
        var chart = Write(tgz: false);

        // When it is scanned with SkipInvalid
        var result = ChartScanner.Scan(chart.Path, Skip);

        // Then the malformed reference is returned, not thrown
        var invalid = Assert.Single(result.Invalid);
        var expected = Assert.Single(chart.ExpectedInvalid);
        Assert.Equal(expected.ValuesPath, invalid.ValuesPath);
        Assert.Equal(expected.Raw, invalid.Raw);
        Assert.Equal(expected.ChartPath, invalid.ChartPath);
        Assert.Equal(expected.ChartName, invalid.ChartName);
        Assert.Equal(expected.File, invalid.File);
        Assert.Contains("at most one tag", invalid.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void ChartScanner_Scan_CleanChartNeedsNoSkipInvalid()
    {
        // Given the chart without the malformed reference
        var chart = Write(tgz: true, new TestChartOptions { IncludeMalformed = false });

        // When it is scanned with default options
        var result = ChartScanner.Scan(chart.Path);

        // Then nothing is invalid and everything is found
        Assert.Empty(result.Invalid);
        Assert.Equal(chart.ExpectedFindings, result.Findings.Select(f => (f.ValuesPath, f.Reference.ToString())));
    }

    [Fact]
    public void ChartScanner_Scan_FollowsCustomSourceForLocalRegistries()
    {
        // Given the chart generated for a local registry
        var options = new TestChartOptions { Source = "127.0.0.1:5000/olm", ThirdPartyImage = "127.0.0.1:5000/hub/kafka-ui:v0.7.1", IncludeMalformed = false };
        var chart = Write(tgz: true, options);

        // When it is scanned
        var result = ChartScanner.Scan(chart.Path);

        // Then every image lives in that registry
        Assert.All(result.Findings, f => Assert.Equal("127.0.0.1:5000", f.Reference.Registry));
        Assert.Equal(chart.ExpectedFindings, result.Findings.Select(f => (f.ValuesPath, f.Reference.ToString())));
    }

    [Fact]
    public void ChartScanner_Scan_RefusesArchiveEntryWithParentDirectory()
    {
        // Given a .tgz with an entry that climbs out of the archive
        var path = _dir.Combine("evil.tgz");
        TarGz.Write(path, [
            TarGzEntry.Text("evil/Chart.yaml", "apiVersion: v2\nname: evil\nversion: 1.0.0\n"),
            TarGzEntry.Text("evil/../../outside/values.yaml", "image: x:1\n"),
        ]);

        // When it is scanned
        var ex = Assert.Throws<InputException>(() => ChartScanner.Scan(path));

        // Then the entry is refused and nothing is written outside
        Assert.Contains("refusing archive entry 'evil/../../outside/values.yaml': path traversal", ex.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_dir.Path, "..", "outside")));
    }

    [Theory]
    [InlineData("/etc/evil/values.yaml", "absolute path")]
    [InlineData("evil\\..\\values.yaml", "backslash")]
    public void ChartScanner_Scan_RefusesUnsafeEntryNames(string name, string reason)
    {
        // Given a .tgz with an unsafe entry name
        var path = _dir.Combine("evil.tgz");
        TarGz.Write(path, [TarGzEntry.Text("evil/Chart.yaml", "name: evil\nversion: 1.0.0\n"), TarGzEntry.Text(name, "x: 1\n")]);

        // When it is scanned
        var ex = Assert.Throws<InputException>(() => ChartScanner.Scan(path));

        // Then it is refused
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ChartScanner_Scan_RefusesLinksInArchives()
    {
        // Given a .tgz whose values.yaml is a symbolic link
        var path = _dir.Combine("link.tgz");
        TarGz.Write(path, [
            TarGzEntry.Text("c/Chart.yaml", "name: c\nversion: 1.0.0\n"),
            new TarGzEntry("c/values.yaml", [], LinkTarget: "/etc/passwd"),
        ]);

        // When it is scanned
        var ex = Assert.Throws<InputException>(() => ChartScanner.Scan(path));

        // Then the link is refused
        Assert.Contains("entry 'c/values.yaml' is a link", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ChartScanner_Scan_RefusesArchiveThatDecompressesPastTheLimit()
    {
        // Given a small archive holding a large, very compressible file
        var path = _dir.Combine("bomb.tgz");
        TarGz.Write(path, [
            TarGzEntry.Text("c/Chart.yaml", "name: c\nversion: 1.0.0\n"),
            new TarGzEntry("c/templates/big.yaml", new byte[4 * 1024 * 1024]),
        ]);

        // When it is scanned with a 1 MiB budget
        var ex = Assert.Throws<InputException>(() => ChartScanner.Scan(path, new ChartScanOptions { MaxArchiveBytes = 1024 * 1024 }));

        // Then it stops reading
        Assert.Contains("decompresses to more than 1048576 bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ChartScanner_Scan_AcceptsPaxGlobalHeaderAndDirectoryEntries()
    {
        // Given an archive as git archive writes it: a pax global header and directory entries
        var path = _dir.Combine("git.tgz");
        using (var file = File.Create(path))
        using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Pax))
        {
            tar.WriteEntry(new PaxGlobalExtendedAttributesTarEntry(new Dictionary<string, string> { ["comment"] = "abc" }));
            tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "./c/"));
            foreach (var (name, text) in new[] { ("./c/Chart.yaml", "name: c\nversion: 1.0.0\n"), ("./c/values.yaml", "image: example.com/c:1\n") })
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)) });
            }
        }

        // When it is scanned
        var finding = Assert.Single(ChartScanner.Scan(path).Findings);

        // Then the image is found
        Assert.Equal("c/values.yaml", finding.File);
        Assert.Equal("example.com/c:1", finding.Reference.ToString());
    }

    [Fact]
    public void ChartScanner_Scan_RefusesFilesThatAreNotGzip()
    {
        // Given a file that is not a chart archive
        var path = _dir.WriteText("chart.tgz", "not gzip");

        // When it is scanned
        var ex = Assert.Throws<InputException>(() => ChartScanner.Scan(path));

        // Then it says so
        Assert.Contains("not a gzip-compressed chart archive", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ChartScanner_Scan_ReportsMissingPath()
    {
        // Given no chart
        // When a missing path is scanned
        var ex = Assert.Throws<InputException>(() => ChartScanner.Scan(_dir.Combine("missing.tgz")));

        // Then it says so
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ChartScanner_Scan_ReportsDependencyThatIsNotVendored()
    {
        // Given Chart.yaml listing a dependency that is not under charts/
        _dir.WriteText("u/Chart.yaml", "apiVersion: v2\nname: u\nversion: 1.0.0\ndependencies:\n  - name: missing\n    version: 1.0.0\n");

        // When it is scanned
        var ex = Assert.Throws<InputException>(() => ChartScanner.Scan(_dir.Combine("u")));

        // Then the missing dependency is named
        Assert.Contains("u/Chart.yaml: dependency 'missing' is not present under charts/", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ChartScanner_Scan_ReportsBrokenValuesYamlWithFileAndLine()
    {
        // Given a subchart whose values.yaml is not YAML
        _dir.WriteText("u/Chart.yaml", "name: u\nversion: 1.0.0\n");
        _dir.WriteText("u/charts/s/Chart.yaml", "name: s\nversion: 1.0.0\n");
        _dir.WriteText("u/charts/s/values.yaml", "a: 1\nb: [unclosed\n");

        // When it is scanned
        var ex = Assert.Throws<InputException>(() => ChartScanner.Scan(_dir.Combine("u"), Skip));

        // Then the file and a line are named
        Assert.Matches(@"u/charts/s/values\.yaml:\d+:\d+: YAML syntax error", ex.Message);
    }

    [Fact]
    public void ChartScanner_Scan_ReportsTemplateExpressionsAsInvalid()
    {
        // Given an image built from a template expression inside values
        _dir.WriteText("u/Chart.yaml", "name: u\nversion: 1.0.0\n");
        _dir.WriteText("u/values.yaml", "sidecar:\n  image: \"{{ .Values.global.registry }}/sidecar:1\"\n");

        // When it is scanned with SkipInvalid
        var result = ChartScanner.Scan(_dir.Combine("u"), Skip);

        // Then it is reported as invalid: templates are never rendered
        var invalid = Assert.Single(result.Invalid);
        Assert.Equal("sidecar.image", invalid.ValuesPath);
        Assert.Equal("u/values.yaml", invalid.File);
        Assert.Equal(2, invalid.Line);
        Assert.Contains("template expression", invalid.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void ChartScanner_Scan_AppliesUmbrellaGlobalImageRegistryAndNullDeletion()
    {
        // Given an umbrella that sets global.imageRegistry and deletes a subchart's optional image with null
        _dir.WriteText("u/Chart.yaml", "name: u\nversion: 1.0.0\ndependencies:\n  - name: s\n    version: 2.0.0\n    condition: s.enabled\n");
        _dir.WriteText("u/values.yaml", "global:\n  imageRegistry: registry.local:5000\ns:\n  sidecar:\n    image: null\n");
        _dir.WriteText("u/charts/s/Chart.yaml", "name: s\nversion: 2.0.0\n");
        _dir.WriteText("u/charts/s/values.yaml", """
            enabled: true
            global:
              imageRegistry: ""
            image:
              registry: docker.io
              repository: bitnami/postgresql
              tag: 16.4.0-debian-12-r0
              digest: sha256:4c2e3f8b5a1d7e9c0b6a2f4d8e1c3b5a7d9f0e2c4b6a8d0f1e3c5b7a9d2f4e6c
            sidecar:
              image: busybox:1.36
            defaults: &defaults
              image: docker.io/library/nginx:1.27
            copy:
              <<: *defaults
            list:
              - name: a
                image:
                  repository: quay.io/x/y
                  tag: "2"
            """);

        // When it is scanned
        var result = ChartScanner.Scan(_dir.Combine("u"));

        // Then the umbrella's global registry wins, null deletes, merge keys and lists are followed
        Assert.Equal(
            [
                ("s.copy.image", "docker.io/library/nginx:1.27"),
                ("s.defaults.image", "docker.io/library/nginx:1.27"),
                ("s.image.*", "registry.local:5000/bitnami/postgresql:16.4.0-debian-12-r0@sha256:4c2e3f8b5a1d7e9c0b6a2f4d8e1c3b5a7d9f0e2c4b6a8d0f1e3c5b7a9d2f4e6c"),
                ("s.list[0].image.*", "registry.local:5000/quay.io/x/y:2"),
            ],
            result.Findings.Select(f => (f.ValuesPath, f.Reference.ToString())));
        Assert.All(result.Findings.Where(f => f.Kind == ImageFindingKind.Split), f => Assert.True(f.UsesGlobalImageRegistry));
        Assert.Equal("u/values.yaml", Assert.Single(result.Findings, f => f.ValuesPath == "s.image.*").File);
    }

    [Fact]
    public void ChartScanner_Scan_EvaluatesConditionsAndTags()
    {
        // Given dependencies switched off by condition, by tag, and by the subchart's own default
        _dir.WriteText("u/Chart.yaml", """
            name: u
            version: 1.0.0
            dependencies:
              - name: a
                version: 1.0.0
                condition: a.enabled
              - name: b
                version: 1.0.0
                tags: [extras]
              - name: c
                version: 1.0.0
                condition: c.enabled
            """);
        _dir.WriteText("u/values.yaml", "a:\n  enabled: false\ntags:\n  extras: false\n");
        foreach (var name in new[] { "a", "b", "c" })
        {
            _dir.WriteText($"u/charts/{name}/Chart.yaml", $"name: {name}\nversion: 1.0.0\n");
            _dir.WriteText($"u/charts/{name}/values.yaml", (name == "c" ? "enabled: no\n" : string.Empty) + $"image: example.com/{name}:1\n");
        }

        // When it is scanned
        var result = ChartScanner.Scan(_dir.Combine("u"));

        // Then all three are found and all three are disabled
        Assert.Equal(["a.image", "b.image", "c.image"], result.Findings.Select(f => f.ValuesPath));
        Assert.All(result.Findings, f => Assert.False(f.Enabled));
    }

    [Fact]
    public void ChartScanner_Scan_IgnoresNonImageKeysAndEmptySlots()
    {
        // Given values with look-alikes that are not images
        _dir.WriteText("u/Chart.yaml", "name: u\nversion: 1.0.0\n");
        _dir.WriteText("u/values.yaml", """
            initImage: example.com/init:1
            imageName: example.com/name:1
            image:
              pullPolicy: IfNotPresent
            optional:
              image: ""
            other:
              image:
                repository: ""
            flag:
              image: true
            nested:
              image:
                main:
                  image: example.com/main:1
            """);

        // When it is scanned
        var result = ChartScanner.Scan(_dir.Combine("u"));

        // Then only keys named image holding a reference count
        Assert.Equal(["nested.image.main.image"], result.Findings.Select(f => f.ValuesPath));
    }

    [Fact]
    public void ChartScanner_Scan_IsDeterministic()
    {
        // Given the same chart as directory and as .tgz
        var dir = Write(tgz: false);
        var tgz = Write(tgz: true);

        // When both are scanned twice
        var a = ChartScanner.Scan(dir.Path, Skip).Findings.Select(f => f.ToString()).ToList();
        var b = ChartScanner.Scan(tgz.Path, Skip).Findings.Select(f => f.ToString()).ToList();
        var c = ChartScanner.Scan(tgz.Path, Skip).Findings.Select(f => f.ToString()).ToList();

        // Then the findings are identical and sorted by values path
        Assert.Equal(a, b);
        Assert.Equal(b, c);
        var paths = ChartScanner.Scan(tgz.Path, Skip).Findings.Select(f => f.ValuesPath).ToList();
        Assert.Equal(paths.Order(StringComparer.Ordinal), paths);
    }

    [Fact]
    public void ChartScanner_Scan_RefusesSubchartsNestedTooDeep()
    {
        // Given a chain of subcharts deeper than the limit
        var path = "u";
        _dir.WriteText($"{path}/Chart.yaml", "name: u\nversion: 1.0.0\n");
        for (var i = 0; i < 4; i++)
        {
            path += $"/charts/s{i}";
            _dir.WriteText($"{path}/Chart.yaml", $"name: s{i}\nversion: 1.0.0\n");
        }

        // When it is scanned with MaxDepth 2
        var ex = Assert.Throws<InputException>(() => ChartScanner.Scan(_dir.Combine("u"), new ChartScanOptions { MaxDepth = 2 }));

        // Then it stops
        Assert.Contains("nested deeper than 2 levels", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ChartScanner_Scan_ReadsUtf8BomAndCrLf()
    {
        // Given a values file with a BOM and Windows line endings
        _dir.WriteText("u/Chart.yaml", "name: u\nversion: 1.0.0\n");
        File.WriteAllText(_dir.Combine("u", "values.yaml"), "a:\r\n  image: example.com/a:1\r\n", new UTF8Encoding(true));

        // When it is scanned
        var finding = Assert.Single(ChartScanner.Scan(_dir.Combine("u")).Findings);

        // Then the image and line are right
        Assert.Equal("a.image", finding.ValuesPath);
        Assert.Equal(2, finding.Line);
    }
}
