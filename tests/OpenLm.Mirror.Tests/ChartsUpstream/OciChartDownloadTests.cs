using System.Net;
using System.Security.Cryptography;
using System.Text;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.PlatformSpec.ChartSources;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.TestFixtures;
using OpenLm.Mirror.Tests.Core;
using Xunit;

namespace OpenLm.Mirror.Tests.ChartsUpstream;

/// <summary>OCI chart artifacts as a registry serves them (a loopback fake): what is a Helm chart, and what is refused.</summary>
public sealed class OciChartDownloadTests : IAsyncLifetime
{
    private const string HelmConfig = "application/vnd.cncf.helm.config.v1+json";
    private const string HelmLayer = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
    private const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    private readonly ScratchDirectory _dir = new();
    private readonly Dictionary<string, (byte[] Body, string Type)> _content = new(StringComparer.Ordinal);
    private byte[] _chart = [];
    private LoopbackServer _server = null!;

    public Task InitializeAsync()
    {
        _chart = File.ReadAllBytes(TestChartBuilder.WriteTgz(_dir.Path, new TestChartOptions { IncludeMalformed = false }).Path);
        _server = LoopbackServer.Start(async context =>
        {
            var path = context.Request.Url!.AbsolutePath;
            if (_content.TryGetValue(path, out var found))
            {
                var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(found.Body));
                await Reply.BytesAsync(context, 200, found.Body, found.Type, new Dictionary<string, string> { ["Docker-Content-Digest"] = digest });
                return;
            }

            await Reply.BytesAsync(context, 404, Encoding.UTF8.GetBytes("{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}"), "application/json");
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _dir.Dispose();
    }

    private static string Sha(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    private string Blob(string repository, byte[] bytes)
    {
        _content[$"/v2/{repository}/blobs/{Sha(bytes)}"] = (bytes, "application/octet-stream");
        return Sha(bytes);
    }

    private void Manifest(string repository, string tag, string configType, params (string Type, byte[] Bytes)[] layers)
    {
        var config = Encoding.UTF8.GetBytes($"{{\"name\":\"{TestChartBuilder.UmbrellaName}\",\"version\":\"{TestChartBuilder.UmbrellaVersion}\"}}");
        var configDigest = Blob(repository, config);
        var layerJson = string.Join(",", layers.Select(l => $"{{\"mediaType\":\"{l.Type}\",\"digest\":\"{Blob(repository, l.Bytes)}\",\"size\":{l.Bytes.Length}}}"));
        var manifest = Encoding.UTF8.GetBytes($"{{\"schemaVersion\":2,\"mediaType\":\"{OciManifest}\",\"config\":{{\"mediaType\":\"{configType}\",\"digest\":\"{configDigest}\",\"size\":{config.Length}}},\"layers\":[{layerJson}]}}");
        _content[$"/v2/{repository}/manifests/{tag}"] = (manifest, OciManifest);
    }

    private async Task<DownloadedChart> DownloadAsync(string reference)
    {
        Assert.True(OciChartSource.TryParse($"oci://{_server.Authority}/{reference}", out var source, out var error), error);
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true, Retries = 0 });
        using var downloads = new ChartDownloader(connector, NullMirrorLog.Instance);
        var chart = await downloads.DownloadAsync(source, null, CancellationToken.None);
        Assert.Equal(_chart, await File.ReadAllBytesAsync(chart.ArchivePath));
        return chart;
    }

    [Fact]
    public async Task ChartDownloader_HelmPushShape_DownloadsTheChartLayer()
    {
        Manifest("charts/openlm", TestChartBuilder.UmbrellaVersion, HelmConfig, (HelmLayer, _chart), ("application/vnd.cncf.helm.chart.provenance.v1.prov", "prov"u8.ToArray()));

        var chart = await DownloadAsync($"charts/openlm:{TestChartBuilder.UmbrellaVersion}");

        Assert.Equal(Sha(_chart), chart.Digest.ToString());
        Assert.Equal(TestChartBuilder.UmbrellaName, chart.Name);
    }

    [Fact]
    public async Task ChartDownloader_LegacyHelmLayerMediaType_IsAccepted()
    {
        Manifest("charts/legacy", TestChartBuilder.UmbrellaVersion, HelmConfig, ("application/tar+gzip", _chart));

        var chart = await DownloadAsync($"charts/legacy:{TestChartBuilder.UmbrellaVersion}");

        Assert.Equal(Sha(_chart), chart.Digest.ToString());
    }

    [Fact]
    public async Task ChartDownloader_TwoChartLayers_IsRefusedAsUnusable()
    {
        Manifest("charts/two", TestChartBuilder.UmbrellaVersion, HelmConfig, (HelmLayer, _chart), (HelmLayer, "x"u8.ToArray()));

        var ex = await Assert.ThrowsAsync<InputException>(() => DownloadAsync($"charts/two:{TestChartBuilder.UmbrellaVersion}"));

        Assert.Contains("it has 2 chart content layers", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChartDownloader_TagNamesAnotherVersionThanChartYaml_IsAnIntegrityError()
    {
        Manifest("charts/moved", "9.9.9", HelmConfig, (HelmLayer, _chart));

        var ex = await Assert.ThrowsAsync<IntegrityException>(() => DownloadAsync("charts/moved:9.9.9"));

        Assert.Contains($"holds chart '{TestChartBuilder.UmbrellaName}' version {TestChartBuilder.UmbrellaVersion}, not the version its tag '9.9.9' names", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChartDownloader_UnknownTag_IsNotFoundNamingTheReference()
    {
        var ex = await Assert.ThrowsAsync<NotFoundException>(() => DownloadAsync("charts/none:1.0.0"));

        Assert.Contains($"{_server.Authority}/charts/none:1.0.0: manifest unknown", ex.Message, StringComparison.Ordinal);
    }
}
