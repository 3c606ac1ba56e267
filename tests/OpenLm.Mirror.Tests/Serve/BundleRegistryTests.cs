using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.Serve;

/// <summary>The read-only registry over HTTP on loopback: routes, names, ranges, pagination, errors, scoping.</summary>
public sealed class BundleRegistryTests(ServeFixture fixture) : IClassFixture<ServeFixture>
{
    private HttpClient Http => fixture.Http;

    [Fact]
    public async Task V2_GetAndHead_200WithApiVersionHeader()
    {
        foreach (var method in new[] { HttpMethod.Get, HttpMethod.Head })
        {
            using var response = await Http.SendAsync(new HttpRequestMessage(method, "/v2/"));

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("registry/2.0", Assert.Single(response.Headers.GetValues("Docker-Distribution-API-Version")));
        }
    }

    [Fact]
    public async Task Manifest_ByTagUnderSourceName_BytesTypeDigestAndLengthOfTheImage()
    {
        var server = fixture.Image("olm-server");

        using var response = await Http.SendAsync(ServeFixture.Get("/v2/r3q3q2f4/olm-server/manifests/1.0.0"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(server.Digest, Digest.Sha256(bytes).ToString());
        Assert.Equal(server.MediaType, response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(server.ManifestSize, response.Content.Headers.ContentLength);
        Assert.Equal(server.Digest, Assert.Single(response.Headers.GetValues("Docker-Content-Digest")));
    }

    [Fact]
    public async Task Manifest_HeadByDigest_HeadersWithoutBody()
    {
        var agent = fixture.Image("olm-agent");

        using var response = await Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/r3q3q2f4/olm-agent/manifests/{agent.Digest}"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(MediaTypes.OciIndex, response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(agent.ManifestSize, response.Content.Headers.ContentLength);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Manifest_ChildOfAnIndexByDigest_ServedUnderTheIndexRepository()
    {
        var gateway = fixture.Image("olm-gateway");
        var child = gateway.ChildManifestDigests[0];

        using var response = await Http.SendAsync(ServeFixture.Get($"/v2/r3q3q2f4/olm-gateway/manifests/{child}"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(MediaTypes.DockerManifest, response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(child, Digest.Sha256(await response.Content.ReadAsByteArrayAsync()).ToString());
    }

    [Theory]
    [InlineData("/v2/library/mongo/manifests/7")]
    [InlineData("/v2/openlm/library/mongo/manifests/7")]
    public async Task Manifest_ThirdPartyImage_AnswersUnderSourcePathAndImportName(string path)
    {
        using var response = await Http.SendAsync(ServeFixture.Get(path));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(fixture.Image("olm-tools").Digest, Digest.Sha256(await response.Content.ReadAsByteArrayAsync()).ToString());
    }

    [Fact]
    public async Task Manifest_PlatformImage_AnswersUnderTheImportNameWithoutThePlatformNamespace()
    {
        using var response = await Http.SendAsync(ServeFixture.Get("/v2/openlm/olm-server/manifests/1.0.0"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(fixture.Image("olm-server").Digest, Assert.Single(response.Headers.GetValues("Docker-Content-Digest")));
    }

    [Fact]
    public async Task Manifest_DigestOnlyImage_ServedByDigestAndByTheImportDigestTag()
    {
        var tag = TargetNameMapper.DigestTag(fixture.RedisDigest);

        foreach (var path in new[] { $"/v2/library/redis/manifests/{fixture.RedisDigest}", $"/v2/library/redis/manifests/{tag}", $"/v2/openlm/library/redis/manifests/{tag}" })
        {
            using var response = await Http.SendAsync(ServeFixture.Get(path));
            Assert.True(response.StatusCode == HttpStatusCode.OK, path);
            Assert.Equal(fixture.RedisDigest.ToString(), Digest.Sha256(await response.Content.ReadAsByteArrayAsync()).ToString());
        }

        using var tags = JsonDocument.Parse(await Http.GetStringAsync("/v2/library/redis/tags/list"));
        Assert.Equal([tag], tags.RootElement.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
    }

    [Fact]
    public async Task HelmChart_ManifestAndChartLayer_ServedUnderItsRefName()
    {
        var chart = fixture.Image("charts/olm-platform");
        var layer = chart.Manifests[0].Layers[0];

        using var manifest = await Http.SendAsync(ServeFixture.Get("/v2/r3q3q2f4/charts/olm-platform/manifests/0.1.0"));
        using var blob = await Http.SendAsync(ServeFixture.Get($"/v2/r3q3q2f4/charts/olm-platform/blobs/{layer.Digest}"));

        Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
        Assert.Equal(chart.Digest, Digest.Sha256(await manifest.Content.ReadAsByteArrayAsync()).ToString());
        Assert.Equal(HttpStatusCode.OK, blob.StatusCode);
        Assert.Equal(layer.Digest, Digest.Sha256(await blob.Content.ReadAsByteArrayAsync()).ToString());
    }

    [Fact]
    public async Task Blob_Whole_200WithDigestLengthAndAcceptRanges()
    {
        var layer = fixture.Image("olm-server").Manifests[0].Layers[^1];

        using var response = await Http.SendAsync(ServeFixture.Get($"/v2/r3q3q2f4/olm-server/blobs/{layer.Digest}"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("bytes", Assert.Single(response.Headers.AcceptRanges));
        Assert.Equal(layer.Size, response.Content.Headers.ContentLength);
        Assert.Equal(layer.Digest, Assert.Single(response.Headers.GetValues("Docker-Content-Digest")));
        Assert.Equal(layer.Digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(await response.Content.ReadAsByteArrayAsync())));
    }

    [Theory]
    [InlineData("bytes=0-99", 0, 100)]
    [InlineData("bytes=100-", 100, -1)]
    [InlineData("bytes=-50", -50, 50)]
    [InlineData("bytes=10-10000000000", 10, -1)]
    public async Task Blob_SingleRange_206WithContentRangeAndExactlyThoseBytes(string range, long first, long length)
    {
        var layer = fixture.Image("olm-server").Manifests[0].Layers[^1];
        var whole = fixture.Platform.ReadBlob(layer.Digest);
        var start = first < 0 ? whole.Length + first : first;
        var count = length < 0 ? whole.Length - start : length;

        using var response = await Http.SendAsync(ServeFixture.Get($"/v2/r3q3q2f4/olm-server/blobs/{layer.Digest}", range));

        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal($"bytes {start}-{start + count - 1}/{whole.Length}", response.Content.Headers.ContentRange!.ToString());
        Assert.Equal(whole.AsSpan((int)start, (int)count).ToArray(), await response.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData("bytes=99999999-")]
    [InlineData("bytes=-0")]
    public async Task Blob_UnsatisfiableRange_416WithSizeInContentRange(string range)
    {
        var layer = fixture.Image("olm-server").Manifests[0].Layers[^1];

        using var response = await Http.SendAsync(ServeFixture.Get($"/v2/r3q3q2f4/olm-server/blobs/{layer.Digest}", range));

        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, response.StatusCode);
        Assert.Equal($"bytes */{layer.Size}", response.Content.Headers.ContentRange!.ToString());
    }

    [Fact]
    public async Task Blob_ReachableOnlyFromAnotherRepository_404BlobUnknown()
    {
        // olm-migrate has no base: its own layers are reachable from olm-migrate (and redis), never from olm-server.
        var foreign = fixture.Image("olm-migrate").Manifests[0].Layers[0].Digest;
        Assert.DoesNotContain(foreign, fixture.Image("olm-server").BlobDigests);

        using var scoped = await Http.SendAsync(ServeFixture.Get($"/v2/r3q3q2f4/olm-server/blobs/{foreign}"));
        using var own = await Http.SendAsync(ServeFixture.Get($"/v2/r3q3q2f4/olm-migrate/blobs/{foreign}"));

        Assert.Equal(HttpStatusCode.NotFound, scoped.StatusCode);
        await AssertErrorAsync(scoped, "BLOB_UNKNOWN");
        Assert.Equal(HttpStatusCode.OK, own.StatusCode);
    }

    [Fact]
    public async Task Manifest_OfAnotherRepositoryByDigest_404ManifestUnknown()
    {
        using var response = await Http.SendAsync(ServeFixture.Get($"/v2/r3q3q2f4/olm-server/manifests/{fixture.Image("olm-worker").Digest}"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        await AssertErrorAsync(response, "MANIFEST_UNKNOWN");
    }

    [Theory]
    [InlineData("/v2/r3q3q2f4/olm-server/manifests/9.9.9", HttpStatusCode.NotFound, "MANIFEST_UNKNOWN")]
    [InlineData("/v2/r3q3q2f4/nothing/manifests/1.0.0", HttpStatusCode.NotFound, "NAME_UNKNOWN")]
    [InlineData("/v2/r3q3q2f4/nothing/tags/list", HttpStatusCode.NotFound, "NAME_UNKNOWN")]
    [InlineData("/v2/r3q3q2f4/olm-server/blobs/sha256:0000", HttpStatusCode.BadRequest, "DIGEST_INVALID")]
    [InlineData("/v2/r3q3q2f4/olm-server/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000", HttpStatusCode.NotFound, "BLOB_UNKNOWN")]
    [InlineData("/v2/r3q3q2f4/olm-server/tags/list?n=x", HttpStatusCode.BadRequest, "PAGINATION_NUMBER_INVALID")]
    public async Task Errors_OciErrorBodyWithCodeAndMessage(string path, HttpStatusCode status, string code)
    {
        using var response = await Http.SendAsync(ServeFixture.Get(path));

        Assert.Equal(status, response.StatusCode);
        await AssertErrorAsync(response, code);
    }

    [Theory]
    [InlineData("POST", "/v2/r3q3q2f4/olm-server/blobs/uploads/")]
    [InlineData("PUT", "/v2/r3q3q2f4/olm-server/manifests/1.0.0")]
    [InlineData("PATCH", "/v2/r3q3q2f4/olm-server/blobs/uploads/abc")]
    [InlineData("DELETE", "/v2/r3q3q2f4/olm-server/manifests/1.0.0")]
    [InlineData("DELETE", "/v2/nothing/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000")]
    public async Task Writes_405Unsupported(string method, string path)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new ByteArrayContent([1, 2, 3]) };

        using var response = await Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        await AssertErrorAsync(response, "UNSUPPORTED");
    }

    [Fact]
    public async Task TagsList_PagedByTwo_LinkToTheNextPageThenNone()
    {
        using var all = JsonDocument.Parse(await Http.GetStringAsync("/v2/r3q3q2f4/olm-server/tags/list"));
        Assert.Equal("r3q3q2f4/olm-server", all.RootElement.GetProperty("name").GetString());
        Assert.Equal(["1.0.0", "1.1.0", "2.0.0"], Tags(all));

        using var first = await Http.SendAsync(ServeFixture.Get("/v2/r3q3q2f4/olm-server/tags/list?n=2"));
        var next = ParseNext(Assert.Single(first.Headers.GetValues("Link")));
        using var second = await Http.SendAsync(ServeFixture.Get(next));

        Assert.Equal(["1.0.0", "1.1.0"], Tags(JsonDocument.Parse(await first.Content.ReadAsStringAsync())));
        Assert.Equal("/v2/r3q3q2f4/olm-server/tags/list?n=2&last=1.1.0", next);
        Assert.Equal(["2.0.0"], Tags(JsonDocument.Parse(await second.Content.ReadAsStringAsync())));
        Assert.False(second.Headers.Contains("Link"));
    }

    [Fact]
    public async Task TagsList_NZero_EmptyListNoLink()
    {
        using var response = await Http.SendAsync(ServeFixture.Get("/v2/r3q3q2f4/olm-server/tags/list?n=0"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(Tags(JsonDocument.Parse(await response.Content.ReadAsStringAsync())));
        Assert.False(response.Headers.Contains("Link"));
    }

    [Fact]
    public async Task Catalog_PagedByTwo_EveryRepositoryOnceInLexicalOrderWithLinks()
    {
        using var full = JsonDocument.Parse(await Http.GetStringAsync("/v2/_catalog"));
        var expected = full.RootElement.GetProperty("repositories").EnumerateArray().Select(r => r.GetString()!).ToList();
        Assert.Equal(expected.Order(StringComparer.Ordinal), expected);
        Assert.Contains("r3q3q2f4/olm-server", expected);
        Assert.Contains("openlm/olm-server", expected);
        Assert.Contains("library/mongo", expected);

        var seen = new List<string>();
        var next = "/v2/_catalog?n=2";
        var pages = 0;
        while (next is not null)
        {
            using var response = await Http.SendAsync(ServeFixture.Get(next));
            using var page = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var items = page.RootElement.GetProperty("repositories").EnumerateArray().Select(r => r.GetString()!).ToList();
            Assert.True(items.Count <= 2);
            seen.AddRange(items);
            next = response.Headers.TryGetValues("Link", out var links) ? ParseNext(Assert.Single(links)) : null;
            pages++;
        }

        Assert.Equal(expected, seen);
        Assert.Equal((expected.Count + 1) / 2, pages);
    }

    [Fact]
    public async Task AccessLog_OneRecordPerRequestWithStatusAndBytes()
    {
        var layer = fixture.Image("olm-worker").Manifests[0].Layers[^1];
        var path = $"/v2/r3q3q2f4/olm-worker/blobs/{layer.Digest}";

        using var response = await Http.SendAsync(ServeFixture.Get(path));
        await response.Content.ReadAsByteArrayAsync();

        var record = await WaitForAsync(() => fixture.Log.LastOrDefault(r => r.Path == path));
        Assert.Equal("GET", record.Method);
        Assert.Equal(200, record.Status);
        Assert.Equal(layer.Size, record.Bytes);
    }

    internal static async Task AssertErrorAsync(HttpResponseMessage response, string code)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = Assert.Single(body.RootElement.GetProperty("errors").EnumerateArray());
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.True(error.TryGetProperty("detail", out _));
    }

    private static List<string?> Tags(JsonDocument document) =>
        document.RootElement.GetProperty("tags").EnumerateArray().Select(t => t.GetString()).ToList();

    private static string ParseNext(string link)
    {
        Assert.EndsWith("; rel=\"next\"", link);
        Assert.StartsWith("<", link);
        return link[1..link.IndexOf('>', StringComparison.Ordinal)];
    }

    private async Task<T> WaitForAsync<T>(Func<T?> probe)
        where T : class
    {
        for (var i = 0; i < 100; i++)
        {
            lock (fixture.Log)
            {
                if (probe() is { } found)
                {
                    return found;
                }
            }

            await Task.Delay(20);
        }

        throw new TimeoutException("no access log record");
    }
}
