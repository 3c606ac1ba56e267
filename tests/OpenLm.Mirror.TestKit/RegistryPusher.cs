using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace OpenLm.Mirror.TestKit;

/// <summary>Options for pushing a <see cref="GeneratedPlatform"/> to a registry.</summary>
public sealed record RegistryPushOptions
{
    /// <summary>Basic-auth user (sent pre-emptively on every request when set).</summary>
    public string? Username { get; init; }
    public string? Password { get; init; }

    /// <summary>Parallel blob uploads (default 4).</summary>
    public int Concurrency { get; init; } = 4;

    /// <summary>Per-request timeout (default 10 minutes).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// After a blob is in one repository, get it into the others with <c>POST …/blobs/uploads/?mount=&amp;from=</c>
    /// (default true; falls back to a normal upload when the registry answers 202).
    /// </summary>
    public bool CrossRepositoryMount { get; init; } = true;

    /// <summary>Optional handler (tests, TLS tweaks); by default a proxy-less <see cref="SocketsHttpHandler"/>.</summary>
    public HttpMessageHandler? Handler { get; init; }

    /// <summary>Optional progress log (one line per uploaded blob / pushed manifest).</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>Counts from a push.</summary>
/// <param name="BlobsUploaded">Blobs transferred (POST + PUT).</param>
/// <param name="BlobsMounted">Blobs cross-repository mounted from another repository of the same push.</param>
/// <param name="BlobsSkipped">Blobs the registry already had in the target repository (HEAD 200).</param>
public sealed record RegistryPushResult(int BlobsUploaded, int BlobsMounted, int BlobsSkipped, long BytesUploaded, int ManifestsPushed, TimeSpan Elapsed);

/// <summary>Thrown when the registry answers a push request with an unexpected status.</summary>
public sealed class RegistryPushException(string message, HttpStatusCode? statusCode = null) : Exception(message)
{
    public HttpStatusCode? StatusCode { get; } = statusCode;
}

/// <summary>
/// Minimal Distribution-API pusher on raw <see cref="HttpClient"/>: HEAD blob → (cross-repo mount or) POST upload →
/// PUT &amp;digest= (two-step monolithic upload; Distribution 2.8 has no single-POST upload), then child manifests by
/// digest, then the tag. Basic auth is sent pre-emptively; bearer-token auth is not supported.
/// </summary>
public static class RegistryPusher
{
    public static async Task<RegistryPushResult> PushAsync(GeneratedPlatform platform, string registry, RegistryPushOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= new RegistryPushOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Concurrency, 1);
        var baseUri = ParseRegistry(registry);
        var started = System.Diagnostics.Stopwatch.StartNew();

        using var client = new HttpClient(options.Handler ?? new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            MaxConnectionsPerServer = Math.Max(options.Concurrency * 2, 4),
        }, disposeHandler: options.Handler is null)
        {
            BaseAddress = baseUri,
            Timeout = options.Timeout,
        };
        if (options.Username is not null)
        {
            var token = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{options.Username}:{options.Password}"));
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", token);
        }

        // Blobs: each distinct digest in parallel; within a digest its repositories in turn, so that after the first
        // upload the others can be cross-repository mounts (no second transfer of shared base layers).
        var work = platform.Images
            .SelectMany(i => i.BlobDigests.Select(d => (i.Repository, Digest: d)))
            .Distinct()
            .GroupBy(w => w.Digest, w => w.Repository, StringComparer.Ordinal)
            .OrderByDescending(g => platform.GetBlobSize(g.Key))
            .ToArray();
        int uploaded = 0, skipped = 0, mounted = 0;
        long bytes = 0;
        await Parallel.ForEachAsync(work, new ParallelOptions { MaxDegreeOfParallelism = options.Concurrency, CancellationToken = cancellationToken },
            async (group, ct) =>
            {
                var digest = group.Key;
                var size = platform.GetBlobSize(digest);
                string? source = null;
                foreach (var repository in group)
                {
                    if (await BlobExistsAsync(client, repository, digest, ct).ConfigureAwait(false))
                    {
                        Interlocked.Increment(ref skipped);
                        source ??= repository;
                        continue;
                    }
                    Uri? location = null;
                    if (source is not null && options.CrossRepositoryMount)
                    {
                        location = await TryMountAsync(client, repository, digest, source, ct).ConfigureAwait(false);
                        if (location is null)
                        {
                            Interlocked.Increment(ref mounted);
                            options.Log?.Invoke($"mounted {repository}@{digest} from {source}");
                            continue;
                        }
                    }
                    await UploadBlobAsync(client, repository, digest, platform.GetBlobPath(digest), size, location, ct).ConfigureAwait(false);
                    Interlocked.Increment(ref uploaded);
                    Interlocked.Add(ref bytes, size);
                    source = repository;
                    options.Log?.Invoke($"uploaded {repository}@{digest} ({size} bytes)");
                }
            }).ConfigureAwait(false);

        // Manifests: children by digest first, then the tagged top-level object.
        var manifests = 0;
        foreach (var image in platform.Images)
        {
            if (image.IsIndex)
            {
                foreach (var child in image.Manifests)
                {
                    await PutManifestAsync(client, image.Repository, child.Digest, child.MediaType, platform.ReadBlob(child.Digest), child.Digest,
                        cancellationToken).ConfigureAwait(false);
                    manifests++;
                }
            }
            await PutManifestAsync(client, image.Repository, image.Tag, image.MediaType, platform.ReadBlob(image.Digest), image.Digest,
                cancellationToken).ConfigureAwait(false);
            manifests++;
            options.Log?.Invoke($"manifest {image.Reference}@{image.Digest}");
        }

        return new RegistryPushResult(uploaded, mounted, skipped, bytes, manifests, started.Elapsed);
    }

    /// <summary><c>host:port</c> means plain http; an explicit <c>http://</c> / <c>https://</c> prefix is honoured.</summary>
    public static Uri ParseRegistry(string registry)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(registry);
        var text = registry.Contains("://", StringComparison.Ordinal) ? registry : "http://" + registry;
        if (!Uri.TryCreate(text.TrimEnd('/') + "/", UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https") ||
            uri.AbsolutePath != "/")
        {
            throw new ArgumentException($"Invalid registry '{registry}', expected host:port or http(s)://host:port.", nameof(registry));
        }
        return uri;
    }

    private static async Task<bool> BlobExistsAsync(HttpClient client, string repository, string digest, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, $"v2/{repository}/blobs/{digest}");
        using var response = await client.SendAsync(request, ct).ConfigureAwait(false);
        return response.StatusCode switch
        {
            HttpStatusCode.OK => true,
            HttpStatusCode.NotFound => false,
            _ => throw await FailAsync(response, $"HEAD blob {repository}@{digest}", ct).ConfigureAwait(false),
        };
    }

    /// <summary>Cross-repository mount. Returns null when mounted (201), else the upload location the registry opened instead (202).</summary>
    private static async Task<Uri?> TryMountAsync(HttpClient client, string repository, string digest, string from, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post,
            $"v2/{repository}/blobs/uploads/?mount={Uri.EscapeDataString(digest)}&from={Uri.EscapeDataString(from)}");
        request.Content = new ByteArrayContent([]);
        using var response = await client.SendAsync(request, ct).ConfigureAwait(false);
        return response.StatusCode switch
        {
            HttpStatusCode.Created => null,
            HttpStatusCode.Accepted when response.Headers.Location is not null => Absolute(client, response.Headers.Location),
            _ => throw await FailAsync(response, $"POST mount {repository}@{digest} from {from}", ct).ConfigureAwait(false),
        };
    }

    private static async Task UploadBlobAsync(HttpClient client, string repository, string digest, string path, long size, Uri? location,
        CancellationToken ct)
    {
        if (location is null)
        {
            using var start = new HttpRequestMessage(HttpMethod.Post, $"v2/{repository}/blobs/uploads/");
            start.Content = new ByteArrayContent([]);
            using var response = await client.SendAsync(start, ct).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.Accepted || response.Headers.Location is null)
                throw await FailAsync(response, $"POST upload {repository}", ct).ConfigureAwait(false);
            location = Absolute(client, response.Headers.Location);
        }

        var target = location.ToString();
        target += (target.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "digest=" + Uri.EscapeDataString(digest);
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous | FileOptions.SequentialScan);
        using var put = new HttpRequestMessage(HttpMethod.Put, target);
        put.Content = new StreamContent(file, 1 << 20);
        put.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        put.Content.Headers.ContentLength = size;
        using var done = await client.SendAsync(put, ct).ConfigureAwait(false);
        if (done.StatusCode != HttpStatusCode.Created)
            throw await FailAsync(done, $"PUT blob {repository}@{digest}", ct).ConfigureAwait(false);
    }

    private static Uri Absolute(HttpClient client, Uri location) =>
        location.IsAbsoluteUri ? location : new Uri(client.BaseAddress!, location);

    private static async Task PutManifestAsync(HttpClient client, string repository, string reference, string mediaType, byte[] body,
        string expectedDigest, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, $"v2/{repository}/manifests/{reference}");
        request.Content = new ByteArrayContent(body);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        using var response = await client.SendAsync(request, ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Created)
            throw await FailAsync(response, $"PUT manifest {repository}:{reference}", ct).ConfigureAwait(false);
        if (response.Headers.TryGetValues("Docker-Content-Digest", out var values) && values.FirstOrDefault() is { } actual &&
            !string.Equals(actual, expectedDigest, StringComparison.Ordinal))
        {
            throw new RegistryPushException($"PUT manifest {repository}:{reference}: registry computed {actual}, expected {expectedDigest}.");
        }
    }

    private static async Task<RegistryPushException> FailAsync(HttpResponseMessage response, string what, CancellationToken ct)
    {
        var body = response.Content is null ? "" : await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        if (body.Length > 1000) body = body[..1000] + "…";
        return new RegistryPushException($"{what}: HTTP {(int)response.StatusCode} {response.ReasonPhrase} {body}".TrimEnd(), response.StatusCode);
    }
}
