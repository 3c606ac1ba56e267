using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using Xunit;
using static OpenLm.Mirror.IntegrationTests.Emulators.EmulatorTestHelpers;

namespace OpenLm.Mirror.IntegrationTests.Emulators;

[Trait("Category", "Integration")]
public sealed class TamperingProxyTests : IClassFixture<SeededRegistryFixture>, IDisposable
{
    private readonly SeededRegistryFixture _fixture;
    private readonly HttpClient _client = RegistrySeeder.CreateClient();

    public TamperingProxyTests(SeededRegistryFixture fixture)
    {
        _fixture = fixture;
    }

    private SeededImage Image => _fixture.Image;

    public void Dispose() => _client.Dispose();

    private async Task<TamperingProxy> StartAsync(TamperingProxyOptions? options = null)
    {
        var proxy = new TamperingProxy(_fixture.Upstream, options);
        await proxy.StartAsync();
        return proxy;
    }

    private static Uri BlobUri(TamperingProxy proxy, string digest)
        => new(proxy.BaseAddress, $"v2/{SeededRegistryFixture.Repository}/blobs/{digest}");

    private static Uri ManifestUri(TamperingProxy proxy, string reference)
        => new(proxy.BaseAddress, $"v2/{SeededRegistryFixture.Repository}/manifests/{reference}");

    private async Task<byte[]> GetBytesAsync(Uri uri, string? accept = null)
    {
        using var response = await _client.SendAsync(Request(HttpMethod.Get, uri, accept: accept));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsByteArrayAsync();
    }

    [Fact]
    public async Task TamperingProxy_PassThrough_IsTransparentForPushAndPull()
    {
        await using var proxy = await StartAsync();

        // Push through the proxy: upload Location headers must be rewritten to point at the proxy.
        using (var start = Request(HttpMethod.Post, new Uri(proxy.BaseAddress, "v2/proxied/image/blobs/uploads/")))
        {
            start.Content = new ByteArrayContent([]);
            using var started = await _client.SendAsync(start);
            Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
            var location = started.Headers.Location;
            Assert.NotNull(location);
            if (location.IsAbsoluteUri)
            {
                Assert.Equal(proxy.RegistryHost, location.Authority);
            }
        }

        var pushed = await RegistrySeeder.PushImageAsync(_client, proxy.BaseAddress, "proxied/image", "v1", layerSize: 300_000, seed: 7);

        // Pull back through the proxy and directly from upstream.
        var manifest = await GetBytesAsync(new Uri(proxy.BaseAddress, "v2/proxied/image/manifests/v1"), pushed.ManifestMediaType);
        Assert.Equal(pushed.ManifestDigest, Sha256(manifest));
        var layer = await GetBytesAsync(new Uri(proxy.BaseAddress, $"v2/proxied/image/blobs/{pushed.LayerDigest}"));
        Assert.Equal(pushed.LayerDigest, Sha256(layer));
        var direct = await GetBytesAsync(new Uri(_fixture.Upstream, $"v2/proxied/image/blobs/{pushed.LayerDigest}"));
        Assert.Equal(pushed.Layer, direct);

        using var head = await _client.SendAsync(Request(HttpMethod.Head, BlobUri(proxy, Image.LayerDigest)));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(Image.Layer.LongLength, head.Content.Headers.ContentLength);
        Assert.Equal(Image.LayerDigest, RawHeader(head, "Docker-Content-Digest"));

        using var missing = await _client.SendAsync(Request(HttpMethod.Get, ManifestUri(proxy, "does-not-exist"), accept: pushed.ManifestMediaType));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Contains("MANIFEST_UNKNOWN", await missing.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        Assert.Equal(0, proxy.TamperedResponses);
        Assert.True(proxy.Requests >= 8);
    }

    [Fact]
    public async Task TamperingProxy_FlipBlobByte_ChangesDigestOfChosenBlobOnly()
    {
        await using var proxy = await StartAsync();
        proxy.FlipBlob(Image.LayerDigest);

        using var response = await _client.SendAsync(Request(HttpMethod.Get, BlobUri(proxy, Image.LayerDigest)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Image.LayerDigest, RawHeader(response, "Docker-Content-Digest"));
        var tampered = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(Image.Layer.Length, tampered.Length);
        Assert.NotEqual(Image.LayerDigest, Sha256(tampered));
        Assert.Equal(1, Enumerable.Range(0, tampered.Length).Count(i => tampered[i] != Image.Layer[i]));

        var config = await GetBytesAsync(BlobUri(proxy, Image.ConfigDigest));
        Assert.Equal(Image.ConfigDigest, Sha256(config));
        var manifest = await GetBytesAsync(ManifestUri(proxy, Image.Tag), Image.ManifestMediaType);
        Assert.Equal(Image.ManifestDigest, Sha256(manifest));

        Assert.Equal(1, proxy.TamperedBlobs);
        Assert.Equal(1, proxy.TamperedResponses);

        proxy.StopTampering();
        Assert.Equal(Image.LayerDigest, Sha256(await GetBytesAsync(BlobUri(proxy, Image.LayerDigest))));
        Assert.Equal(1, proxy.TamperedResponses);
    }

    [Fact]
    public async Task TamperingProxy_FlipManifestByte_KeepsUpstreamDigestHeader()
    {
        await using var proxy = await StartAsync();
        proxy.FlipManifest();

        using var response = await _client.SendAsync(Request(HttpMethod.Get, ManifestUri(proxy, Image.Tag), accept: Image.ManifestMediaType));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Image.ManifestDigest, RawHeader(response, "Docker-Content-Digest"));
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(Image.Manifest.Length, body.Length);
        Assert.NotEqual(Image.ManifestDigest, Sha256(body));
        using (JsonDocument.Parse(body))
        {
            // Still valid JSON: only a digest-verifying client notices.
        }

        Assert.Equal(1, proxy.TamperedManifests);

        // Blobs are untouched by a manifest-only tamper.
        Assert.Equal(Image.LayerDigest, Sha256(await GetBytesAsync(BlobUri(proxy, Image.LayerDigest))));
        Assert.Equal(1, proxy.TamperedResponses);
    }

    [Fact]
    public async Task TamperingProxy_TruncateBlob_EndsBodyBeforeContentLength()
    {
        await using var proxy = await StartAsync(new TamperingProxyOptions { BlobAction = TamperAction.Truncate, TruncateAfterBytes = 10_000, MaxTampers = 1 });

        using (var response = await _client.SendAsync(Request(HttpMethod.Get, BlobUri(proxy, Image.LayerDigest)), HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(Image.Layer.LongLength, response.Content.Headers.ContentLength);
            var (bytes, error) = await ReadBodyAsync(response);
            Assert.NotNull(error);
            Assert.True(bytes.Length <= 10_000, $"received {bytes.Length} bytes");
        }

        Assert.Equal(1, proxy.TruncatedResponses);

        // MaxTampers = 1: the next GET is clean.
        Assert.Equal(Image.LayerDigest, Sha256(await GetBytesAsync(BlobUri(proxy, Image.LayerDigest))));
        Assert.Equal(1, proxy.TamperedResponses);
    }

    [Fact]
    public async Task TamperingProxy_RangeRequest_PassesThrough()
    {
        await using var proxy = await StartAsync();
        using var request = Request(HttpMethod.Get, BlobUri(proxy, Image.LayerDigest));
        request.Headers.Range = new RangeHeaderValue(1000, 1999);

        using var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal(Image.Layer.AsSpan(1000, 1000).ToArray(), await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public void TamperingProxy_JsonPreservingMutation_ChangesOneDigestCharacter()
    {
        var json = Encoding.UTF8.GetBytes("{\"a\":\"sha256:0123456789abcdef\",\"b\":\"sha256:fedcba9876543210\"}");
        var copy = (byte[])json.Clone();

        Assert.True(TamperingProxy.MutateJsonPreserving(copy));

        Assert.Equal(1, Enumerable.Range(0, json.Length).Count(i => json[i] != copy[i]));
        using var document = JsonDocument.Parse(copy);
        Assert.StartsWith("sha256:", document.RootElement.GetProperty("b").GetString(), StringComparison.Ordinal);
    }
}
