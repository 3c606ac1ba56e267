using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry.Upload;

namespace OpenLm.Mirror.Registry;

/// <summary>One repository on a registry, speaking the OCI Distribution API.</summary>
public sealed partial class RemoteRepository : ITarget, IMountable, IManifestFetchable
{
    private readonly RegistryClient _client;
    private readonly string[] _pullScope;
    private readonly string[] _pushScope;
    private readonly ConcurrentDictionary<Digest, byte[]> _pushedManifests = new();

    public RemoteRepository(RegistryClient client, string repository)
    {
        _client = client;
        RepositoryName = repository;
        _pullScope = [$"repository:{repository}:pull"];
        _pushScope = [$"repository:{repository}:pull,push"];
    }

    public string RegistryHost => _client.Host;

    public string RepositoryName { get; }

    public string DisplayName => $"{_client.Host}/{RepositoryName}";

    public RegistryClient Client => _client;

    public async Task<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken = default)
    {
        var uri = ManifestUri(reference);
        using (var response = await _client.SendAsync(HttpMethod.Head, uri, _pullScope, cancellationToken, AcceptManifests).ConfigureAwait(false))
        {
            if (response.IsSuccessStatusCode
                && response.Headers.TryGetValues("Docker-Content-Digest", out var values)
                && Digest.TryParse(values.FirstOrDefault(), out var digest)
                && response.Content.Headers.ContentLength is { } length
                && ManifestDocument.NormaliseContentType(response.Content.Headers.ContentType?.MediaType) is { } mediaType
                && MediaTypes.IsManifest(mediaType))
            {
                if (Digest.TryParse(reference, out var requested) && requested != digest)
                {
                    throw new IntegrityException($"{DisplayName}@{reference}: registry answered with digest {digest}");
                }

                return new Descriptor { MediaType = mediaType, Digest = digest, Size = length };
            }

            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                throw new NotFoundException($"{DisplayName}{(Digest.TryParse(reference, out _) ? "@" : ":")}{reference}: manifest unknown (404): the image or tag does not exist");
            }
        }

        // HEAD gave no digest (ECR Public may omit it) or failed: GET and compute.
        var (descriptor, _) = await FetchManifestAsync(reference, cancellationToken).ConfigureAwait(false);
        return descriptor;
    }

    /// <summary>
    /// GETs a manifest and checks its bytes. A body cut short (reset, timeout) is fetched again, as one request: statuses
    /// are already retried by <see cref="RegistryClient.SendAsync"/>, so only failures of the body read are retried here.
    /// </summary>
    public Task<(Descriptor Descriptor, byte[] Bytes)> FetchManifestAsync(string reference, CancellationToken cancellationToken = default) =>
        _client.RetryBodyAsync($"{DisplayName} manifest {reference}", ct => FetchManifestOnceAsync(reference, ct), cancellationToken);

    private async Task<(Descriptor Descriptor, byte[] Bytes)> FetchManifestOnceAsync(string reference, CancellationToken cancellationToken)
    {
        var context = $"{DisplayName}{(Digest.TryParse(reference, out _) ? "@" : ":")}{reference}";
        var response = await _client.SendAsync(HttpMethod.Get, ManifestUri(reference), _pullScope, cancellationToken, AcceptManifests).ConfigureAwait(false);
        using (response)
        {
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                var error = await RegistryException.FromResponseAsync(response, context, cancellationToken).ConfigureAwait(false);
                throw new NotFoundException($"{context}: manifest unknown (404): the image or tag does not exist", error);
            }

            await RegistryClient.EnsureSuccessAsync(response, context, cancellationToken).ConfigureAwait(false);
            var bytes = await ReadCappedAsync(response, ManifestDocument.MaxManifestBytes, context, cancellationToken).ConfigureAwait(false);
            var mediaType = ManifestDocument.NormaliseContentType(response.Content.Headers.ContentType?.MediaType);
            var document = ManifestDocument.Parse(bytes, mediaType, context);
            Digest digest;
            if (Digest.TryParse(reference, out var requested))
            {
                digest = Digest.FromHash(requested.Algorithm, System.Security.Cryptography.CryptographicOperations.HashData(requested.HashAlgorithm, bytes));
                if (digest != requested)
                {
                    throw new IntegrityException($"{context}: manifest content hashes to {digest}, not the requested digest");
                }
            }
            else
            {
                digest = Digest.Sha256(bytes);
                if (response.Headers.TryGetValues("Docker-Content-Digest", out var values)
                    && Digest.TryParse(values.FirstOrDefault(), out var claimed)
                    && claimed.Algorithm == digest.Algorithm
                    && claimed != digest)
                {
                    throw new IntegrityException($"{context}: manifest content hashes to {digest} but the registry claims Docker-Content-Digest {claimed}");
                }
            }

            return (new Descriptor { MediaType = document.MediaType, Digest = digest, Size = bytes.Length }, bytes);
        }
    }

    public async Task<Stream> FetchAsync(Descriptor descriptor, CancellationToken cancellationToken = default)
    {
        var source = $"{DisplayName}@{descriptor.Digest}";
        if (MediaTypes.IsManifest(descriptor.MediaType))
        {
            if (descriptor.Size > ManifestDocument.MaxManifestBytes)
            {
                throw new InputException($"{source}: manifest declares {descriptor.Size} bytes, larger than the {ManifestDocument.MaxManifestBytes} byte limit");
            }

            // Fetched by digest: FetchManifestAsync has hashed the bytes against it; only the size is left to check.
            var (_, bytes) = await FetchManifestAsync(descriptor.Digest.ToString(), cancellationToken).ConfigureAwait(false);
            if (bytes.Length != descriptor.Size)
            {
                throw new IntegrityException($"{source}: manifest is {bytes.Length} bytes, expected {descriptor.Size}");
            }

            return new MemoryStream(bytes, writable: false);
        }

        var body = await ResumableBlobStream.OpenAsync(this, descriptor, cancellationToken).ConfigureAwait(false);
        return new VerifyingStream(body, descriptor, source);
    }

    public async Task<bool> ExistsAsync(Descriptor descriptor, CancellationToken cancellationToken = default)
    {
        if (MediaTypes.IsManifest(descriptor.MediaType))
        {
            using var response = await _client.SendAsync(HttpMethod.Head, ManifestUri(descriptor.Digest.ToString()), _pullScope, cancellationToken, AcceptManifests).ConfigureAwait(false);
            return await ExistsFromStatusAsync(response, descriptor, cancellationToken).ConfigureAwait(false);
        }

        using (var head = await _client.SendAsync(HttpMethod.Head, BlobUri(descriptor.Digest), _pullScope, cancellationToken).ConfigureAwait(false))
        {
            if (head.StatusCode is not (HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.MethodNotAllowed))
            {
                return await ExistsFromStatusAsync(head, descriptor, cancellationToken).ConfigureAwait(false);
            }
        }

        // ECR Public answers 401 to HEAD on blobs even with a valid token: ask with GET and read no body.
        using var get = await _client.SendAsync(HttpMethod.Get, BlobUri(descriptor.Digest), _pullScope, cancellationToken).ConfigureAwait(false);
        return await ExistsFromStatusAsync(get, descriptor, cancellationToken).ConfigureAwait(false);
    }

    public async Task PushAsync(Descriptor expected, Stream content, CancellationToken cancellationToken = default)
    {
        if (MediaTypes.IsManifest(expected.MediaType))
        {
            var bytes = await ReadManifestStreamAsync(expected, content, cancellationToken).ConfigureAwait(false);
            await PutManifestAsync(expected, bytes, expected.Digest.ToString(), cancellationToken).ConfigureAwait(false);
            return;
        }

        var context = $"push {DisplayName}@{expected.Digest}";
        if (UploadTuning.For(_client) is { } tuning && tuning.ShouldPostMonolithic(expected.Size, out var trial)
            && await TryPostMonolithicAsync(expected, content, tuning, trial, context, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        var location = await StartUploadAsync(null, expected, cancellationToken).ConfigureAwait(false)
            ?? throw new OperationException($"{context}: the registry did not start an upload session");
        await CompleteUploadAsync(location, expected, content, context, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> MountAsync(Descriptor descriptor, string fromRepository, CancellationToken cancellationToken = default)
    {
        if (UploadTuning.For(_client).MountsDisabled)
        {
            return false;
        }

        var location = await StartUploadAsync(fromRepository, descriptor, cancellationToken).ConfigureAwait(false);
        if (location is null)
        {
            return true;
        }

        // The registry declined the mount and opened an upload session instead; close it, the caller uploads.
        try
        {
            using var cancel = await _client.SendAsync(HttpMethod.Delete, location, _pushScope, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
        }

        return false;
    }

    public async Task TagAsync(Descriptor descriptor, string reference, CancellationToken cancellationToken = default)
    {
        if (!Reference.IsValidTag(reference))
        {
            throw new InputException($"'{reference}' is not a valid tag for {DisplayName}");
        }

        if (!_pushedManifests.TryGetValue(descriptor.Digest, out var bytes))
        {
            (_, bytes) = await FetchManifestAsync(descriptor.Digest.ToString(), cancellationToken).ConfigureAwait(false);
        }

        await PutManifestAsync(descriptor, bytes, reference, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stores a manifest under a tag or digest; the registry must answer with the same digest.</summary>
    public async Task PutManifestAsync(Descriptor descriptor, byte[] bytes, string reference, CancellationToken cancellationToken)
    {
        var context = $"push manifest {DisplayName}:{reference}";
        var actual = Digest.Sha256(bytes);
        if (actual != descriptor.Digest || bytes.Length != descriptor.Size)
        {
            throw new IntegrityException($"{context}: manifest bytes hash to {actual} ({bytes.Length} bytes), expected {descriptor.Digest} ({descriptor.Size} bytes)");
        }

        using var response = await _client.SendAsync(
            HttpMethod.Put,
            ManifestUri(reference),
            _pushScope,
            cancellationToken,
            content: () =>
            {
                var body = new ByteArrayContent(bytes);
                body.Headers.ContentType = new MediaTypeHeaderValue(descriptor.MediaType);
                return body;
            }).ConfigureAwait(false);
        await RegistryClient.EnsureSuccessAsync(response, context, cancellationToken).ConfigureAwait(false);
        if (response.Headers.TryGetValues("Docker-Content-Digest", out var values)
            && Digest.TryParse(values.FirstOrDefault(), out var stored)
            && stored != descriptor.Digest)
        {
            throw new IntegrityException($"{context}: registry stored the manifest as {stored}, expected {descriptor.Digest}");
        }

        _pushedManifests[descriptor.Digest] = bytes;
    }

    internal Uri BlobUri(Digest digest) => _client.ApiUri($"v2/{RepositoryName}/blobs/{digest}");

    internal IReadOnlyList<string> PullScope => _pullScope;

    private Uri ManifestUri(string reference) => _client.ApiUri($"v2/{RepositoryName}/manifests/{reference}");

    private static void AcceptManifests(HttpRequestMessage request)
    {
        foreach (var type in MediaTypes.ManifestAccept)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
        }
    }

    /// <summary>Starts an upload (optionally as a mount). Returns the session location, or null when the mount succeeded.</summary>
    private async Task<Uri?> StartUploadAsync(string? mountFrom, Descriptor descriptor, CancellationToken cancellationToken)
    {
        var query = mountFrom is null ? string.Empty : $"?mount={Uri.EscapeDataString(descriptor.Digest.ToString())}&from={Uri.EscapeDataString(mountFrom)}";
        IReadOnlyList<string> scopes = mountFrom is null ? _pushScope : [.. _pushScope, $"repository:{mountFrom}:pull"];
        var context = mountFrom is null ? $"start upload to {DisplayName}" : $"mount {descriptor.Digest} from {mountFrom} into {DisplayName}";
        using var response = await _client.SendAsync(
            HttpMethod.Post,
            _client.ApiUri($"v2/{RepositoryName}/blobs/uploads/{query}"),
            scopes,
            cancellationToken,
            content: () => new ByteArrayContent([])).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Created && mountFrom is not null)
        {
            return null;
        }

        if (response.StatusCode != HttpStatusCode.Accepted)
        {
            await RegistryClient.EnsureSuccessAsync(response, context, cancellationToken).ConfigureAwait(false);
            throw new OperationException($"{context}: unexpected status {(int)response.StatusCode}");
        }

        if (response.Headers.TryGetValues("OCI-Chunk-Min-Length", out var minimum)
            && long.TryParse(minimum.FirstOrDefault(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var minBytes))
        {
            var tuning = UploadTuning.For(_client);
            tuning.MinChunkBytes = Math.Max(tuning.MinChunkBytes, minBytes);
        }

        var location = response.Headers.Location
            ?? throw new OperationException($"{context}: the registry answered 202 without a Location header");
        return location.IsAbsoluteUri ? location : new Uri(_client.BaseUri, location);
    }

    private async Task CompleteUploadAsync(Uri location, Descriptor expected, Stream content, string context, CancellationToken cancellationToken)
    {
        // Content that already streams through a verifier for this very descriptor is not hashed twice.
        var untrusted = VerifyingStream.Ensure(content, expected, context);
        await using (untrusted.ConfigureAwait(false))
        {
            var tuning = UploadTuning.For(_client);
            HttpResponseMessage? response = null;
            try
            {
                if (!tuning.Chunked)
                {
                    var body = LengthLimitedStream.PassThrough(untrusted.Stream);
                    response = await PutMonolithicAsync(location, expected, body, tuning.ShouldExpectContinue(expected.Size), cancellationToken).ConfigureAwait(false);
                    if (response.StatusCode == HttpStatusCode.RequestEntityTooLarge && body.Consumed == 0)
                    {
                        // A body-size limit in front of the registry (nginx client_max_body_size): the session behind it
                        // is untouched and the body unsent, so the same stream goes chunked; so does every later blob.
                        tuning.MonolithicTooLarge();
                        _client.Log.Warn($"{DisplayName}: the registry refused a {expected.Size}-byte upload as too large (413); uploading in chunks of {tuning.ChunkBytes >> 10} KiB from now on");
                        response.Dispose();
                        response = null;
                    }
                    else if (response.IsSuccessStatusCode)
                    {
                        await EnsureEndOfContentAsync(untrusted, context, cancellationToken).ConfigureAwait(false);
                        tuning.Accepted(expected.Size);
                    }
                }

                response ??= await PutChunkedAsync(location, expected, untrusted, tuning, context, cancellationToken).ConfigureAwait(false);
                await RegistryClient.EnsureSuccessAsync(response, context, cancellationToken).ConfigureAwait(false);
                if (!untrusted.Verifier.Verified)
                {
                    throw new IntegrityException($"{context}: the registry accepted the upload before the content was verified");
                }

                if (response.Headers.TryGetValues("Docker-Content-Digest", out var values)
                    && Digest.TryParse(values.FirstOrDefault(), out var stored)
                    && stored != expected.Digest)
                {
                    throw new IntegrityException($"{context}: registry stored the blob as {stored}, expected {expected.Digest}");
                }
            }
            finally
            {
                response?.Dispose();
            }
        }
    }

    /// <summary>The whole blob in one PUT; big ones ask 100-continue so a size limit answers before the body is sent.</summary>
    private Task<HttpResponseMessage> PutMonolithicAsync(Uri location, Descriptor expected, Stream body, bool expectContinue, CancellationToken cancellationToken) =>
        _client.SendAsync(
            HttpMethod.Put,
            WithDigest(location, expected.Digest),
            _pushScope,
            cancellationToken,
            configure: expectContinue ? r => r.Headers.ExpectContinue = true : null,
            content: () =>
            {
                var content = new StreamContent(body, 1 << 20);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                content.Headers.ContentLength = expected.Size;
                return content;
            },
            replayableContent: false);

    /// <summary>
    /// PATCH chunks (<c>Content-Range</c> inclusive, each to the latest <c>Location</c>), halving the chunk on 413,
    /// then the closing PUT with the digest and no body.
    /// </summary>
    private async Task<HttpResponseMessage> PutChunkedAsync(Uri location, Descriptor expected, PushContent untrusted, UploadTuning tuning, string context, CancellationToken cancellationToken)
    {
        var current = location;
        long offset = 0;
        while (offset < expected.Size)
        {
            var length = Math.Min(tuning.ChunkBytes, expected.Size - offset);
            var part = new LengthLimitedStream(untrusted.Stream, length);
            var first = offset;
            using var response = await _client.SendAsync(
                HttpMethod.Patch,
                current,
                _pushScope,
                cancellationToken,
                configure: r => r.Headers.ExpectContinue = true,
                content: () =>
                {
                    var content = new StreamContent(part, 1 << 20);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                    content.Headers.ContentLength = length;
                    content.Headers.TryAddWithoutValidation("Content-Range", $"{first}-{first + length - 1}");
                    return content;
                },
                replayableContent: false).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.RequestEntityTooLarge && part.Consumed == 0 && tuning.ChunkTooLarge(length))
            {
                continue;
            }

            if (response.StatusCode != HttpStatusCode.Accepted)
            {
                await RegistryClient.EnsureSuccessAsync(response, $"{context} (chunk {first}-{first + length - 1})", cancellationToken).ConfigureAwait(false);
                throw new OperationException($"{context}: chunk {first}-{first + length - 1} answered {(int)response.StatusCode}, not 202");
            }

            // Always continue at the latest Location: registries move the session (and its state token) per chunk.
            current = response.Headers.Location is { } next ? (next.IsAbsoluteUri ? next : new Uri(_client.BaseUri, next)) : current;
            offset += length;
        }

        await EnsureEndOfContentAsync(untrusted, context, cancellationToken).ConfigureAwait(false);
        return await _client.SendAsync(HttpMethod.Put, WithDigest(current, expected.Digest), _pushScope, cancellationToken, content: () => new ByteArrayContent([])).ConfigureAwait(false);
    }

    /// <summary>Reads past the declared size so the verifier sees the end of the content (and a longer one fails).</summary>
    private static async Task EnsureEndOfContentAsync(PushContent untrusted, string context, CancellationToken cancellationToken)
    {
        if (await untrusted.Stream.ReadAsync(new byte[1], cancellationToken).ConfigureAwait(false) != 0)
        {
            throw new IntegrityException($"{context}: the content is longer than its declared size");
        }
    }

    private static Uri WithDigest(Uri location, Digest digest)
    {
        var builder = new UriBuilder(location);
        var digestParam = "digest=" + Uri.EscapeDataString(digest.ToString());
        builder.Query = string.IsNullOrEmpty(builder.Query) || builder.Query == "?" ? digestParam : builder.Query.TrimStart('?') + "&" + digestParam;
        return builder.Uri;
    }

    private async Task<bool> ExistsFromStatusAsync(HttpResponseMessage response, Descriptor descriptor, CancellationToken cancellationToken)
    {
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }

        await RegistryClient.EnsureSuccessAsync(response, $"check {DisplayName}@{descriptor.Digest}", cancellationToken).ConfigureAwait(false);
        return true;
    }

    private static async Task<byte[]> ReadManifestStreamAsync(Descriptor expected, Stream content, CancellationToken cancellationToken)
    {
        if (expected.Size > ManifestDocument.MaxManifestBytes)
        {
            throw new InputException($"manifest {expected.Digest} declares {expected.Size} bytes, larger than the {ManifestDocument.MaxManifestBytes} byte limit");
        }

        // The bytes are checked against the digest by PutManifestAsync before they are sent.
        var bytes = new byte[expected.Size];
        await content.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
        if (await content.ReadAsync(new byte[1], cancellationToken).ConfigureAwait(false) != 0)
        {
            throw new IntegrityException($"manifest {expected.Digest}: the content is longer than its declared {expected.Size} bytes");
        }

        return bytes;
    }

    private static async Task<byte[]> ReadCappedAsync(HttpResponseMessage response, int cap, string context, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentLength > cap)
        {
            throw new InputException($"{context}: manifest is {response.Content.Headers.ContentLength} bytes, larger than the {cap} byte limit");
        }

        var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > cap)
            {
                throw new InputException($"{context}: manifest is larger than the {cap} byte limit");
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }
}
