using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.NodeArchive;

/// <summary>
/// The chart reaches the customer both ways: import pushes it to the registry as Helm's OCI artifact at the exact
/// repository <c>&lt;to&gt;/charts/&lt;name&gt;</c> (what <c>helm upgrade --install … oci://&lt;to&gt;/charts/&lt;name&gt; --version …</c>
/// pulls), and <c>values --chart-out</c> writes the <c>.tgz</c>; both are the bundle's bytes.
/// </summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ChartDeliveryTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private TestBundle _bundle = null!;

    public async Task InitializeAsync() => _bundle = await TestBundle.CreateAsync(_temp.Sub("b"), seed: 47);

    public Task DisposeAsync()
    {
        _temp.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Import_Chart_PulledBackByDigestIsTheChartOutTgzWithHelmMediaTypes()
    {
        // Given the bundle's chart written out by values --chart-out, and the bundle imported
        var repository = $"chr{Guid.NewGuid().ToString("N")[..8]}";
        var to = $"{registry.Host}/{repository}";
        var charts = _temp.Sub("charts");
        var written = await MirrorCli.RunAsync("values", _bundle.Path, "--to", to, "--key", _bundle.PublicKey, "--chart-out", charts, "--json");
        Assert.True(written.ExitCode == 0, written.ToString());
        var import = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, "--plain-http");
        Assert.True(import.ExitCode == 0, import.ToString());

        var chart = _bundle.Platform.Images.Single(i => i.Kind == TestKit.SampleImageKind.HelmChart);
        var name = chart.Repository.Split('/')[^1];
        var tgz = Assert.Single(Directory.GetFiles(charts));
        Assert.Equal($"{name}-{chart.Tag}.tgz", Path.GetFileName(tgz));

        // When the chart is pulled back from the registry by the bundle's digest, at <to>/charts/<name>
        using var http = new HttpClient { BaseAddress = registry.BaseUri };
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/{repository}/charts/{name}/manifests/{chart.Digest}");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.OciManifest));
        using var response = await http.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, $"{response.StatusCode} for {request.RequestUri}");
        var manifestBytes = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(chart.Digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(manifestBytes)));

        // Then it carries Helm's media types, and its one layer is the .tgz values wrote, byte for byte
        using var manifest = JsonDocument.Parse(manifestBytes);
        Assert.Equal(MediaTypes.HelmConfig, manifest.RootElement.GetProperty("config").GetProperty("mediaType").GetString());
        var layer = Assert.Single(manifest.RootElement.GetProperty("layers").EnumerateArray());
        Assert.Equal(MediaTypes.HelmChart, layer.GetProperty("mediaType").GetString());
        var blob = await http.GetByteArrayAsync($"/v2/{repository}/charts/{name}/blobs/{layer.GetProperty("digest").GetString()}");
        Assert.Equal(await File.ReadAllBytesAsync(tgz), blob);

        // And the tag Helm asks for (the chart version) names the same manifest
        using var byTag = new HttpRequestMessage(HttpMethod.Head, $"/v2/{repository}/charts/{name}/manifests/{chart.Tag}");
        byTag.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.OciManifest));
        using var tagged = await http.SendAsync(byTag);
        Assert.Equal(chart.Digest, tagged.Headers.GetValues("Docker-Content-Digest").Single());
    }
}
