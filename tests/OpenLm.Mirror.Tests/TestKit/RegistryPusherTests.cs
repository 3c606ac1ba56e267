using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.Tests.TestKit;

public sealed class RegistryPusherTests(SmallLayoutFixture fixture) : IClassFixture<SmallLayoutFixture>
{
    [Fact]
    public async Task RegistryPusher_Push_UploadsMountsAndPutsChildrenBeforeIndex()
    {
        var registry = new FakeRegistry();
        var result = await fixture.Platform.PushAsync("127.0.0.1:5999", new RegistryPushOptions
        {
            Handler = registry,
            Username = "u",
            Password = "p",
            Concurrency = 3,
        });

        var expectedPairs = fixture.Platform.Images.SelectMany(i => i.BlobDigests.Select(d => (i.Repository, d))).Distinct().Count();
        Assert.Equal(expectedPairs, result.BlobsUploaded + result.BlobsMounted);
        Assert.True(result.BlobsMounted > 0, "shared base layers should be mounted, not re-uploaded");
        Assert.Equal(fixture.Platform.Images.Select(i => i.BlobDigests).SelectMany(d => d).Distinct().Count(), result.BlobsUploaded);
        Assert.All(registry.Requests, r => Assert.Equal("Basic dTpw", r.Authorization));

        foreach (var image in fixture.Platform.Images)
        {
            foreach (var digest in image.BlobDigests)
            {
                Assert.True(registry.Blobs.ContainsKey((image.Repository, digest)), $"{image.Repository} lacks {digest}");
            }
            var (mediaType, body) = registry.Manifests[(image.Repository, image.Tag)];
            Assert.Equal(image.MediaType, mediaType);
            Assert.Equal(image.Digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(body)));
            if (image.IsIndex)
            {
                var tagPut = registry.Requests.FindIndex(r => r.Method == "PUT" && r.Path == $"/v2/{image.Repository}/manifests/{image.Tag}");
                foreach (var child in image.ChildManifestDigests)
                {
                    var childPut = registry.Requests.FindIndex(r => r.Method == "PUT" && r.Path == $"/v2/{image.Repository}/manifests/{child}");
                    Assert.InRange(childPut, 0, tagPut - 1);
                }
            }
        }

        // A second push finds everything and uploads nothing.
        var again = await fixture.Platform.PushAsync("127.0.0.1:5999", new RegistryPushOptions { Handler = registry });
        Assert.Equal(0, again.BlobsUploaded + again.BlobsMounted);
        Assert.Equal(expectedPairs, again.BlobsSkipped);
    }

    [Fact]
    public async Task RegistryPusher_Push_ReportsRegistryErrors()
    {
        var registry = new FakeRegistry { FailManifests = true };
        var error = await Assert.ThrowsAsync<RegistryPushException>(() =>
            fixture.Platform.PushAsync("127.0.0.1:5999", new RegistryPushOptions { Handler = registry }));
        Assert.Equal(HttpStatusCode.BadRequest, error.StatusCode);
        Assert.Contains("MANIFEST_INVALID", error.Message, StringComparison.Ordinal);
    }

    /// <summary>In-memory Distribution API subset: HEAD blob, POST upload (+mount), PUT upload, PUT manifest.</summary>
    private sealed class FakeRegistry : HttpMessageHandler
    {
        public sealed record Seen(string Method, string Path, string? Authorization);

        private readonly ConcurrentDictionary<string, string> _uploads = new();
        public ConcurrentDictionary<(string Repo, string Digest), byte[]> Blobs { get; } = new();
        public ConcurrentDictionary<(string Repo, string Reference), (string MediaType, byte[] Body)> Manifests { get; } = new();
        public List<Seen> Requests { get; } = [];
        public bool FailManifests { get; init; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var uri = request.RequestUri!;
            var path = uri.AbsolutePath;
            lock (Requests) Requests.Add(new Seen(request.Method.Method, path, request.Headers.Authorization?.ToString()));
            var query = System.Web.HttpUtility.ParseQueryString(uri.Query);

            if (path.Contains("/blobs/uploads/", StringComparison.Ordinal))
            {
                var repo = path[4..path.IndexOf("/blobs/uploads/", StringComparison.Ordinal)];
                if (request.Method == HttpMethod.Post)
                {
                    if (query["mount"] is { } mount && Blobs.TryGetValue((query["from"]!, mount), out var existing))
                    {
                        Blobs[(repo, mount)] = existing;
                        return new HttpResponseMessage(HttpStatusCode.Created);
                    }
                    var id = Guid.NewGuid().ToString("N");
                    _uploads[id] = repo;
                    var response = new HttpResponseMessage(HttpStatusCode.Accepted);
                    response.Headers.Location = new Uri($"/v2/{repo}/blobs/uploads/{id}?_state=abc", UriKind.Relative);
                    return response;
                }
                if (request.Method == HttpMethod.Put)
                {
                    var id = path[(path.LastIndexOf('/') + 1)..];
                    if (!_uploads.TryRemove(id, out var uploadRepo) || uploadRepo != repo || query["_state"] != "abc")
                        return new HttpResponseMessage(HttpStatusCode.NotFound);
                    var body = await request.Content!.ReadAsByteArrayAsync(cancellationToken);
                    var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(body));
                    if (digest != query["digest"] || request.Content.Headers.ContentLength != body.Length)
                        return new HttpResponseMessage(HttpStatusCode.BadRequest);
                    Blobs[(repo, digest)] = body;
                    return new HttpResponseMessage(HttpStatusCode.Created);
                }
            }
            else if (path.Contains("/blobs/", StringComparison.Ordinal) && request.Method == HttpMethod.Head)
            {
                var i = path.IndexOf("/blobs/", StringComparison.Ordinal);
                return new HttpResponseMessage(Blobs.ContainsKey((path[4..i], path[(i + 7)..])) ? HttpStatusCode.OK : HttpStatusCode.NotFound);
            }
            else if (path.Contains("/manifests/", StringComparison.Ordinal) && request.Method == HttpMethod.Put)
            {
                if (FailManifests)
                    return new HttpResponseMessage(HttpStatusCode.BadRequest) { Content = new StringContent("{\"errors\":[{\"code\":\"MANIFEST_INVALID\"}]}") };
                var i = path.IndexOf("/manifests/", StringComparison.Ordinal);
                var body = await request.Content!.ReadAsByteArrayAsync(cancellationToken);
                Manifests[(path[4..i], path[(i + 11)..])] = (request.Content.Headers.ContentType!.MediaType!, body);
                var response = new HttpResponseMessage(HttpStatusCode.Created);
                response.Headers.Add("Docker-Content-Digest", "sha256:" + Convert.ToHexStringLower(SHA256.HashData(body)));
                return response;
            }
            return new HttpResponseMessage(HttpStatusCode.MethodNotAllowed);
        }
    }
}
