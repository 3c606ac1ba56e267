using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Export;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.PlatformSpec.ChartSources;
using OpenLm.Mirror.TestFixtures;
using Xunit;

namespace OpenLm.Mirror.Tests.ChartsUpstream;

/// <summary>Chart entries of the platform manifest that name an upstream (<c>ref: oci://…</c>, <c>repo</c> + <c>name</c> + <c>version</c>), and their lock pins.</summary>
public sealed class ChartEntryTests : IDisposable
{
    private const string FileName = "platform.yaml";
    private const string Sha = "sha256:4c2e3f8b5a1d7e9c0b6a2f4d8e1c3b5a7d9f0e2c4b6a8d0f1e3c5b7a9d2f4e6c";
    private readonly ScratchDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Manifest(string charts) => $"""
        apiVersion: mirror.openlm.io/v1
        kind: Platform
        name: openlm-platform
        version: "1.0"
        source: public.ecr.aws/r3q3q2f4
        charts:
        {charts}
        """;

    private PlatformManifest Parse(string charts) => PlatformManifest.Parse(Manifest(charts), FileName, _dir.Path);

    private InputException ParseFails(string charts) => Assert.Throws<InputException>(() => Parse(charts));

    [Fact]
    public void PlatformManifest_Parse_OciRef_IsAnOciChartSource()
    {
        var manifest = Parse("  - ref: oci://public.ecr.aws/openlm/charts/openlm:1.260810.1250");

        var chart = Assert.Single(manifest.Charts);
        var source = Assert.IsType<OciChartSource>(chart.Source);
        Assert.Equal("public.ecr.aws/openlm/charts/openlm:1.260810.1250", source.Reference.ToString());
        Assert.Null(chart.FullPath);
        Assert.Equal("oci://public.ecr.aws/openlm/charts/openlm:1.260810.1250", source.ToString());
    }

    [Fact]
    public void PlatformManifest_Parse_OciRefWithSemVerBuild_StoresPlusAsUnderscoreInTheTag()
    {
        var manifest = Parse("  - ref: oci://127.0.0.1:5000/charts/openlm:1.2.0+build.7");

        var source = Assert.IsType<OciChartSource>(Assert.Single(manifest.Charts).Source);
        Assert.Equal("1.2.0_build.7", source.Reference.Tag);
    }

    [Fact]
    public void PlatformManifest_Parse_HelmRepository_ReadsRepoNameAndVersion()
    {
        var manifest = Parse("""
              - repo: https://charts.openlm.example/stable
                name: openlm
                version: 1.260810.1250
            """);

        var source = Assert.IsType<HelmRepositoryChartSource>(Assert.Single(manifest.Charts).Source);
        Assert.Equal("https://charts.openlm.example/stable", source.Repository.AbsoluteUri);
        Assert.Equal("https://charts.openlm.example/stable/index.yaml", source.IndexUri.AbsoluteUri);
        Assert.Equal(("openlm", "1.260810.1250"), (source.Name, source.Version));
    }

    [Fact]
    public void PlatformManifest_Parse_RefAndRepo_IsRefusedWithFileAndLine()
    {
        var ex = ParseFails("""
              - ref: oci://public.ecr.aws/openlm/charts/openlm:1.0.0
                repo: https://charts.openlm.example
            """);

        Assert.Equal(FailureKind.Usage, ex.Kind);
        Assert.Contains($"{FileName}:7: charts[0]: has both 'ref' and 'repo'; use exactly one", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PlatformManifest_Parse_PathAndRef_IsRefused()
    {
        var ex = ParseFails("""
              - path: chart.tgz
                ref: oci://public.ecr.aws/openlm/charts/openlm:1.0.0
            """);

        Assert.Contains($"{FileName}:7: charts[0]: has both 'path' and 'ref'; use exactly one", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PlatformManifest_Parse_RepoWithoutVersion_NamesTheMissingField()
    {
        var ex = ParseFails("""
              - repo: https://charts.openlm.example
                name: openlm
            """);

        Assert.Contains($"{FileName}:7: charts[0].version: required field is missing", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PlatformManifest_Parse_VersionBesideRef_PointsToTheTag()
    {
        var ex = ParseFails("""
              - ref: oci://public.ecr.aws/openlm/charts/openlm:1.0.0
                version: 1.0.0
            """);

        Assert.Contains("'name' and 'version' go with 'repo'; with 'ref' write the version as the tag", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("public.ecr.aws/openlm/charts/openlm:1.0.0", "must start with oci://")]
    [InlineData("oci://public.ecr.aws/openlm/charts/openlm", "names no chart version")]
    [InlineData("oci://public.ecr.aws/Openlm/charts/openlm:1.0.0", "is not a valid OCI chart reference")]
    public void PlatformManifest_Parse_BadOciRef_SaysWhatIsWrong(string reference, string expected)
    {
        var ex = ParseFails($"  - ref: {reference}");

        Assert.Contains($"{FileName}:7: charts[0].ref: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ftp://charts.openlm.example", "is not a Helm repository URL")]
    [InlineData("charts.openlm.example", "is not a Helm repository URL")]
    [InlineData("https://user:pw@charts.openlm.example", "do not put credentials in the repository URL")]
    public void PlatformManifest_Parse_BadRepo_SaysWhatIsWrong(string repo, string expected)
    {
        var ex = ParseFails($"  - repo: {repo}\n    name: openlm\n    version: 1.0.0");

        Assert.Contains($"{FileName}:7: charts[0].repo: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("pw@", ex.Message.Replace("user:pw@charts", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public void PlatformManifest_Parse_SameUpstreamTwice_IsADuplicate()
    {
        var ex = ParseFails("""
              - ref: oci://public.ecr.aws/openlm/charts/openlm:1.0.0
              - ref: oci://public.ecr.aws/openlm/charts/openlm:1.0.0
            """);

        Assert.Contains($"{FileName}:8: charts[1]: duplicate chart 'oci://public.ecr.aws/openlm/charts/openlm:1.0.0' (already listed at line 7)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LockFile_SaveLoad_KeepsUpstreamChartSourcesAndOldPathLocksStillLoad()
    {
        // Given a lock with an OCI chart, a repository chart and a local chart (the shape older locks have)
        var local = _dir.Combine("charts", "openlm.tgz");
        Directory.CreateDirectory(Path.GetDirectoryName(local)!);
        var lockFile = new LockFile
        {
            Name = "p",
            Version = "1",
            Source = "public.ecr.aws/r3q3q2f4",
            Images = [],
            Charts =
            [
                new LockedChart { Ref = "oci://public.ecr.aws/openlm/charts/openlm:1.0.0", Name = "openlm", Version = "1.0.0", Digest = Sha },
                new LockedChart { Repo = "https://charts.openlm.example/stable", Name = "kafka", Version = "31.5.0", Digest = Sha },
                new LockedChart { Path = local, Name = "local", Version = "2.0.0", Digest = Sha },
            ],
        };
        var path = _dir.Combine("lock.json");

        // When it is saved and read back
        lockFile.Save(path);
        var text = File.ReadAllText(path);
        var loaded = LockFile.Load(path);

        // Then each chart keeps exactly its own source, and the local one its path relative to the lock
        Assert.Contains("\"ref\": \"oci://public.ecr.aws/openlm/charts/openlm:1.0.0\"", text, StringComparison.Ordinal);
        Assert.Contains("\"repo\": \"https://charts.openlm.example/stable\"", text, StringComparison.Ordinal);
        Assert.Contains("\"path\": \"charts/openlm.tgz\"", text, StringComparison.Ordinal);
        Assert.Equal(lockFile.Charts, loaded.Charts);
        Assert.IsType<OciChartSource>(loaded.Charts[0].Source());
        Assert.Equal(new HelmRepositoryChartSource(new Uri("https://charts.openlm.example/stable"), "kafka", "31.5.0"), loaded.Charts[1].Source());
    }

    [Fact]
    public void LockFile_Load_ChartWithTwoSources_IsRefused()
    {
        var path = _dir.Combine("lock.json");
        File.WriteAllText(path, $$"""
            {"lockVersion": 1, "name": "p", "version": "1", "source": "public.ecr.aws/x", "images": [],
             "charts": [{"ref": "oci://public.ecr.aws/x/c:1.0.0", "repo": "https://charts.example", "name": "c", "version": "1.0.0", "digest": "{{Sha}}"},
                        {"ref": "oci://public.ecr.aws/x/c:1.0.0", "name": "c", "version": "1.0.0", "digest": "md5:abc"}]}
            """);

        var ex = Assert.Throws<InputException>(() => LockFile.Load(path));

        Assert.Contains("charts[0]: needs exactly one of path, ref or repo (has 2)", ex.Message, StringComparison.Ordinal);
        Assert.Contains("charts[1].digest:", ex.Message, StringComparison.Ordinal);
    }
}
