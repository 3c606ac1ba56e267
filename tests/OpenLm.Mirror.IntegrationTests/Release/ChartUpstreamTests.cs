using System.Formats.Tar;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestFixtures;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Release;

/// <summary>
/// Charts from their upstream, end to end on a real Distribution registry: the test umbrella chart pushed the way
/// <c>helm push</c> stores it and named by <c>oci://</c>, and the same chart in a Helm HTTP repository (Kestrel serving
/// <c>index.yaml</c> + the .tgz) reached through a real tinyproxy. resolve pins the archive's sha256 and scans it, export
/// embeds exactly those bytes, and a chart re-pushed under the same tag is refused (exit 3).
/// </summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ChartUpstreamTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private const string HelmConfig = "application/vnd.cncf.helm.config.v1+json";
    private const string HelmLayer = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
    private const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    private readonly TempDir _temp = new();
    private readonly string _namespace = "cup" + Guid.NewGuid().ToString("N")[..8];
    private TestChart _chart = null!;
    private byte[] _archive = [];
    private string _key = null!;
    private LoopbackHttpServer? _helmRepository;

    private string Source => $"{registry.Host}/{_namespace}";

    private string ArchiveDigest => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(_archive));

    public async Task InitializeAsync()
    {
        _chart = TestChartBuilder.WriteTgz(_temp.Path, new TestChartOptions
        {
            Source = Source,
            ThirdPartyImage = $"{registry.Host}/thirdparty{_namespace}/kafka-ui:v0.7.1",
            IncludeMalformed = false,
        });
        _archive = await File.ReadAllBytesAsync(_chart.Path);

        using var http = RegistrySeeder.CreateClient();
        var seed = 900;
        foreach (var reference in _chart.ExpectedReferences.Distinct())
        {
            var parsed = Oci.Reference.Parse(reference);
            await RegistrySeeder.PushImageAsync(http, registry.BaseUri, parsed.Repository, parsed.Tag!, layerSize: 4096, seed: ++seed);
        }

        _key = KeyPairGenerator.Generate(Path.Combine(_temp.Path, "release"), passphrase: null).PrivateKeyPath;
    }

    public async Task DisposeAsync()
    {
        if (_helmRepository is not null)
        {
            await _helmRepository.DisposeAsync();
        }

        _temp.Dispose();
    }

    [Fact]
    public async Task ResolveExport_OciChartRef_PinsScansAndEmbedsTheChartThenRefusesARepushedTag()
    {
        // Given the umbrella chart in the registry as helm push stores it, and a manifest naming it by oci:// ref
        var repository = $"{_namespace}/charts/{TestChartBuilder.UmbrellaName}";
        await PushHelmChartAsync(repository, TestChartBuilder.UmbrellaVersion, _archive);
        var chartRef = $"oci://{registry.Host}/{repository}:{TestChartBuilder.UmbrellaVersion}";
        var manifest = WriteManifest("oci-platform.yaml", $"  - ref: {chartRef}");
        var lockPath = _temp.Sub("oci-lock.json");

        // When it is resolved and exported
        var resolve = await MirrorCli.RunAsync("resolve", "--plain-http", "--manifest", manifest, "-o", lockPath);
        Assert.True(resolve.ExitCode == 0, resolve.ToString());
        var bundle = _temp.Sub("oci.tar");
        var export = await MirrorCli.RunAsync("export", "--plain-http", "--lock", lockPath, "--key", _key, "-o", bundle, "--cache", _temp.Sub("oci-cache"));
        Assert.True(export.ExitCode == 0, export.ToString());

        // Then the lock pins the chart's source and archive sha256, and every image the chart names
        using (var lockJson = JsonDocument.Parse(await File.ReadAllTextAsync(lockPath)))
        {
            var chart = Assert.Single(lockJson.RootElement.GetProperty("charts").EnumerateArray());
            Assert.Equal(chartRef, chart.GetProperty("ref").GetString());
            Assert.Equal(ArchiveDigest, chart.GetProperty("digest").GetString());
            Assert.False(chart.TryGetProperty("path", out _));
            var images = lockJson.RootElement.GetProperty("images").EnumerateArray().Select(i => i.GetProperty("reference").GetString()).Order(StringComparer.Ordinal);
            Assert.Equal(_chart.ExpectedReferences.Distinct().Order(StringComparer.Ordinal), images);
        }

        // And the bundle holds exactly those archive bytes
        Assert.Contains(BundleBlobNames(bundle), n => n.EndsWith(ArchiveDigest["sha256:".Length..], StringComparison.Ordinal));

        // When the tag is pushed again with other bytes, an export from the same lock is refused, naming chart and source
        var other = TestChartBuilder.WriteTgz(_temp.Sub("other"), new TestChartOptions { Source = Source, ImageTag = "9.9.9", IncludeMalformed = false });
        await PushHelmChartAsync(repository, TestChartBuilder.UmbrellaVersion, await File.ReadAllBytesAsync(other.Path));
        var again = await MirrorCli.RunAsync("export", "--plain-http", "--lock", lockPath, "--key", _key, "-o", _temp.Sub("oci-again.tar"), "--cache", _temp.Sub("oci-cache"));
        Assert.Equal(3, again.ExitCode);
        Assert.Contains($"chart from {chartRef} changed since it was locked", again.Error, StringComparison.Ordinal);
        Assert.Contains($"the lock pins {ArchiveDigest}", again.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(_temp.Sub("oci-again.tar")));
    }

    [Fact]
    public async Task Resolve_OciRefToAContainerImage_ExitsUsageSayingItIsNoHelmChart()
    {
        // Given a reference to an ordinary image, not a chart
        using var http = RegistrySeeder.CreateClient();
        await RegistrySeeder.PushImageAsync(http, registry.BaseUri, $"{_namespace}/app", "1.0", layerSize: 1024, seed: 42);
        var manifest = WriteManifest("image-platform.yaml", $"  - ref: oci://{Source}/app:1.0");

        var resolve = await MirrorCli.RunAsync("resolve", "--plain-http", "--manifest", manifest, "-o", _temp.Sub("image-lock.json"));

        Assert.Equal(2, resolve.ExitCode);
        Assert.Contains($"oci://{Source}/app:1.0 is not a Helm chart: its config media type is application/vnd.oci.image.config.v1+json", resolve.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(_temp.Sub("image-lock.json")));
    }

    [Fact]
    public async Task ResolveExport_HelmRepositoryThroughTinyproxy_DownloadsTheIndexedChartAndEmbedsIt()
    {
        // Given the chart in a Helm HTTP repository (relative url, digest listed) and a real HTTP proxy
        _helmRepository = await LoopbackHttpServer.StartAsync(IPAddress.Loopback, ServeHelmRepositoryAsync);
        await using var proxy = await TinyproxyProcess.StartAsync();
        var repo = new Uri(_helmRepository.BaseAddress, "openlm").AbsoluteUri;
        var manifest = WriteManifest("repo-platform.yaml", $"""
              - repo: {repo}
                name: {TestChartBuilder.UmbrellaName}
                version: {TestChartBuilder.UmbrellaVersion}
            """);
        var lockPath = _temp.Sub("repo-lock.json");

        // When it is resolved and exported through the proxy
        var resolve = await MirrorCli.RunAsync("resolve", "--plain-http", "--proxy", proxy.Url, "--manifest", manifest, "-o", lockPath);
        Assert.True(resolve.ExitCode == 0, resolve.ToString());
        var bundle = _temp.Sub("repo.tar");
        var export = await MirrorCli.RunAsync("export", "--plain-http", "--proxy", proxy.Url, "--lock", lockPath, "--key", _key, "-o", bundle, "--cache", _temp.Sub("repo-cache"));
        Assert.True(export.ExitCode == 0, export.ToString());

        // Then index and archive went through the proxy, the lock pins the repository entry, and the bundle holds the bytes
        var lines = proxy.RequestLines();
        Assert.Contains($"GET {repo}/index.yaml", lines);
        Assert.Equal(2, lines.Count(l => l == $"GET {repo}/{ArchiveName}"));
        using (var lockJson = JsonDocument.Parse(await File.ReadAllTextAsync(lockPath)))
        {
            var chart = Assert.Single(lockJson.RootElement.GetProperty("charts").EnumerateArray());
            Assert.Equal(repo, chart.GetProperty("repo").GetString());
            Assert.Equal(TestChartBuilder.UmbrellaName, chart.GetProperty("name").GetString());
            Assert.Equal(ArchiveDigest, chart.GetProperty("digest").GetString());
            Assert.Equal(_chart.ExpectedReferences.Distinct().Count(), lockJson.RootElement.GetProperty("images").GetArrayLength());
        }

        Assert.Contains(BundleBlobNames(bundle), n => n.EndsWith(ArchiveDigest["sha256:".Length..], StringComparison.Ordinal));
    }

    private static string ArchiveName => $"{TestChartBuilder.UmbrellaName}-{TestChartBuilder.UmbrellaVersion}.tgz";

    private async Task ServeHelmRepositoryAsync(HttpContext context)
    {
        var path = context.Request.Path.Value;
        if (path == "/openlm/index.yaml")
        {
            var index = $"""
                apiVersion: v1
                entries:
                  {TestChartBuilder.UmbrellaName}:
                  - apiVersion: v2
                    name: {TestChartBuilder.UmbrellaName}
                    version: {TestChartBuilder.UmbrellaVersion}
                    digest: {ArchiveDigest["sha256:".Length..]}
                    urls:
                    - {ArchiveName}
                generated: "2026-08-10T12:50:01Z"
                """;
            context.Response.ContentType = "application/x-yaml";
            await context.Response.WriteAsync(index);
        }
        else if (path == $"/openlm/{ArchiveName}")
        {
            context.Response.ContentType = "application/gzip";
            context.Response.ContentLength = _archive.Length;
            await context.Response.Body.WriteAsync(_archive);
        }
        else
        {
            context.Response.StatusCode = 404;
        }
    }

    private string WriteManifest(string name, string charts)
    {
        var path = _temp.Sub(name);
        File.WriteAllText(path, $"""
            apiVersion: mirror.openlm.io/v1
            kind: Platform
            name: openlm-platform
            version: "{TestChartBuilder.UmbrellaVersion}"
            source: {Source}
            charts:
            {charts}
            """);
        return path;
    }

    /// <summary>Pushes a chart archive the way <c>helm push</c> does: Helm config + one chart content layer, tagged with the version.</summary>
    private async Task PushHelmChartAsync(string repository, string version, byte[] archive)
    {
        using var http = RegistrySeeder.CreateClient();
        var config = Encoding.UTF8.GetBytes($"{{\"name\":\"{TestChartBuilder.UmbrellaName}\",\"version\":\"{version}\",\"apiVersion\":\"v2\"}}");
        var configDigest = await RegistrySeeder.PushBlobAsync(http, registry.BaseUri, repository, config);
        var layerDigest = await RegistrySeeder.PushBlobAsync(http, registry.BaseUri, repository, archive);
        var manifest = Encoding.UTF8.GetBytes(
            $"{{\"schemaVersion\":2,\"mediaType\":\"{OciManifest}\",\"config\":{{\"mediaType\":\"{HelmConfig}\",\"digest\":\"{configDigest}\",\"size\":{config.Length}}},"
            + $"\"layers\":[{{\"mediaType\":\"{HelmLayer}\",\"digest\":\"{layerDigest}\",\"size\":{archive.Length}}}]}}");
        await RegistrySeeder.PushManifestAsync(http, registry.BaseUri, repository, version.Replace('+', '_'), manifest, OciManifest);
    }

    private static List<string> BundleBlobNames(string bundle)
    {
        using var file = File.OpenRead(bundle);
        using var tar = new TarReader(file);
        var names = new List<string>();
        while (tar.GetNextEntry() is { } entry)
        {
            names.Add(entry.Name);
        }

        return names;
    }
}
