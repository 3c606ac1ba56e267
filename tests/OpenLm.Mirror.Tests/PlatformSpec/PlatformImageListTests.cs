using OpenLm.Mirror.Oci;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.TestFixtures;
using Xunit;

namespace OpenLm.Mirror.Tests.PlatformSpec;

public sealed class PlatformImageListTests : IDisposable
{
    private static readonly ChartScanOptions Skip = new() { SkipInvalid = true };
    private readonly ScratchDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private PlatformManifest Manifest(string images, bool withChart = false)
    {
        var charts = withChart ? "charts:\n  - path: openlm-1.260810.1250.tgz\n" : string.Empty;
        var text = $"apiVersion: mirror.openlm.io/v1\nkind: Platform\nname: openlm-platform\nversion: \"1.260810.1250\"\nsource: public.ecr.aws/r3q3q2f4\nimages:\n{images}{charts}";
        return PlatformManifest.Parse(text, "openlm-platform.yaml", _dir.Path);
    }

    [Fact]
    public void PlatformImageList_Build_MergesManifestAndChartEntriesForTheSameImage()
    {
        // Given the manifest lists olm-server (with its own values path) and the chart also holds it
        var chart = TestChartBuilder.WriteTgz(_dir.Path);
        var manifest = Manifest("  - name: olm-server\n    tag: \"1.260716.1540\"\n    values: [server.image.override]\n", withChart: true);

        // When the list is built
        var list = PlatformImageList.Build(manifest, Skip);

        // Then there is one entry with the union of values paths and both origins
        var server = Assert.Single(list, p => p.Reference.ToString() == "public.ecr.aws/r3q3q2f4/olm-server:1.260716.1540");
        Assert.Equal(["server.deployment.image", "server.image.override"], server.ValuesPaths);
        Assert.Equal(["chart:openlm/server", "manifest"], server.Origins);
        Assert.Equal(chart.ExpectedReferences, list.Select(p => p.Reference.ToString()));
    }

    [Fact]
    public void PlatformImageList_Build_MergesTheSameImageAtSeveralValuesPaths()
    {
        // Given olm-jobs at jobs.job.image and jobs.cronJobs.cleanup.image
        var chart = TestChartBuilder.WriteDirectory(_dir.Path);

        // When the list is built
        var list = PlatformImageList.Build(Manifest("  []\n"), [ChartScanner.Scan(chart.Path, Skip)]);

        // Then they are one image with both paths, sorted
        var jobs = Assert.Single(list, p => p.Reference.Repository == "r3q3q2f4/olm-jobs");
        Assert.Equal(["jobs.cronJobs.cleanup.image", "jobs.job.image"], jobs.ValuesPaths);
        Assert.Equal(["chart:openlm/jobs"], jobs.Origins);
    }

    [Fact]
    public void PlatformImageList_Build_KeepsDifferentTagsOfOneRepositoryApart()
    {
        // Given two tags of one repository, and the same tag once pinned
        var digest = "sha256:" + new string('a', 64);
        var manifest = Manifest(
            "  - name: olm-server\n    tag: \"1.260716.1540\"\n" +
            "  - name: olm-server\n    tag: \"1.260810.1250\"\n" +
            $"  - name: olm-server\n    tag: \"1.260810.1250\"\n    digest: {digest}\n");

        // When the list is built
        var list = PlatformImageList.Build(manifest, []);

        // Then each is its own image
        Assert.Equal(
            [
                "public.ecr.aws/r3q3q2f4/olm-server:1.260716.1540",
                "public.ecr.aws/r3q3q2f4/olm-server:1.260810.1250",
                $"public.ecr.aws/r3q3q2f4/olm-server:1.260810.1250@{digest}",
            ],
            list.Select(p => p.Reference.ToString()));
        Assert.All(list, p => Assert.Equal(["manifest"], p.Origins));
    }

    [Fact]
    public void PlatformImageList_Build_IsDeterministicRegardlessOfInputOrder()
    {
        // Given a manifest and two scans (tgz and directory of the same chart) in either order
        var tgz = ChartScanner.Scan(TestChartBuilder.WriteTgz(_dir.Path).Path, Skip);
        var dir = ChartScanner.Scan(TestChartBuilder.WriteDirectory(_dir.Path).Path, Skip);
        var manifest = Manifest("  - ref: docker.io/library/busybox:1.36\n  - ref: quay.io/a/b:1\n  - ref: busybox:1.36.1\n");

        // When the list is built both ways
        var a = PlatformImageList.Build(manifest, [tgz, dir]);
        var b = PlatformImageList.Build(manifest, [dir, tgz]);

        // Then both lists are equal, ordinal-sorted and distinct
        Assert.Equal(a.Select(Describe), b.Select(Describe));
        var references = a.Select(p => p.Reference.ToString()).ToList();
        Assert.Equal(references.Order(StringComparer.Ordinal), references);
        Assert.Equal(references.Distinct(StringComparer.Ordinal), references);
        Assert.Contains("docker.io/library/busybox:1.36.1", references);
    }

    [Fact]
    public void PlatformImageList_Build_IncludesDisabledAndExcludesInvalid()
    {
        // Given the chart with a disabled subchart and a malformed reference
        var chart = TestChartBuilder.WriteTgz(_dir.Path);
        var scan = ChartScanner.Scan(chart.Path, Skip);

        // When the list is built
        var list = PlatformImageList.Build(Manifest("  []\n"), [scan]);

        // Then the disabled image is mirrored and the malformed one is not
        Assert.Contains(list, p => p.Reference.Repository == "r3q3q2f4/olm-legacy-agent");
        Assert.DoesNotContain(list, p => p.Reference.Repository.Contains("redis", StringComparison.Ordinal));
        Assert.Equal(chart.ExpectedReferences.Count, list.Count);
    }

    private static string Describe(PlannedImage p) =>
        $"{p.Reference} [{string.Join(",", p.ValuesPaths)}] [{string.Join(",", p.Origins)}]";
}
