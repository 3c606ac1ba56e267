using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Serve;

/// <summary>One answered request, for the access log.</summary>
/// <param name="Method">HTTP method.</param>
/// <param name="Path">Path and query as asked.</param>
/// <param name="Status">Status code sent.</param>
/// <param name="Bytes">Body bytes sent.</param>
/// <param name="Elapsed">From the request's arrival to its last byte.</param>
/// <param name="Remote">The client's address.</param>
public sealed record ServedRequest(string Method, string Path, int Status, long Bytes, TimeSpan Elapsed, string Remote);

/// <summary>
/// The read-only OCI distribution API over a verified bundle: <c>/v2/</c>, manifests by tag and digest, blobs (with
/// single <c>Range</c> requests), tag lists and the catalog (with <c>n</c>/<c>last</c> pagination and a <c>Link</c>
/// header), spec error bodies, and 405 <c>UNSUPPORTED</c> for every write. Content is served under a repository only
/// when the repository's images reach it (<see cref="ServedCatalog"/>). Blob bodies stream from their byte ranges in
/// the bundle through a bounded buffer; at most <c>maxConcurrentBlobs</c> stream at once (others wait their turn).
/// Independent of the HTTP host: <see cref="HandleAsync"/> takes any <see cref="HttpContext"/>.
/// </summary>
public sealed partial class BundleRegistry
{
    /// <summary>Sent on every answer, as Distribution does: clients use it to recognise a v2 registry.</summary>
    public const string ApiVersionHeader = "Docker-Distribution-API-Version";

    /// <summary>Where a streamed blob answer keeps its counting stream: the bytes it has handed to the response so far (for the access log).</summary>
    internal const string BodyBytesKey = "openlm.bodyBytes";

    private const int CopyBufferSize = 64 * 1024;
    private readonly BundleSource _bundle;
    private readonly SemaphoreSlim _blobStreams;

    public BundleRegistry(BundleSource bundle, ServedCatalog catalog, int maxConcurrentBlobs)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConcurrentBlobs, 1);
        _bundle = bundle;
        Catalog = catalog;
        _blobStreams = new SemaphoreSlim(maxConcurrentBlobs, maxConcurrentBlobs);
    }

    public ServedCatalog Catalog { get; }

    public async Task HandleAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var request = context.Request;
        context.Response.Headers[ApiVersionHeader] = "registry/2.0";
        var path = request.Path.Value ?? "/";
        if (!path.StartsWith("/v2", StringComparison.Ordinal) || (path.Length > 3 && path[3] != '/'))
        {
            await RegistryErrors.WriteAsync(context, StatusCodes.Status404NotFound, RegistryErrorCodes.Unsupported, "not a registry API path (they start with /v2/)").ConfigureAwait(false);
            return;
        }

        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
        {
            context.Response.Headers.Allow = "GET, HEAD";

            // The request body is never read: closing the connection after this answer keeps a client from sending its
            // next request on a connection whose unread body the server throws away (it would see the answer cut off).
            context.Response.Headers.Connection = "close";
            await RegistryErrors.WriteAsync(context, StatusCodes.Status405MethodNotAllowed, RegistryErrorCodes.Unsupported, $"this registry is read-only (served from a bundle): {request.Method} is not supported").ConfigureAwait(false);
            return;
        }

        if (path is "/v2" or "/v2/")
        {
            await WriteJsonAsync(context, "{}"u8.ToArray()).ConfigureAwait(false);
            return;
        }

        if (path == "/v2/_catalog")
        {
            await CatalogAsync(context).ConfigureAwait(false);
            return;
        }

        var match = RoutePattern().Match(path);
        if (!match.Success)
        {
            await RegistryErrors.WriteAsync(context, StatusCodes.Status404NotFound, RegistryErrorCodes.NameUnknown, $"no registry route for '{path}'").ConfigureAwait(false);
            return;
        }

        var name = match.Groups["name"].Value;
        if (!Catalog.Repositories.TryGetValue(name, out var repository))
        {
            await RegistryErrors.WriteAsync(context, StatusCodes.Status404NotFound, RegistryErrorCodes.NameUnknown, "repository name not known to registry", Detail("name", name)).ConfigureAwait(false);
            return;
        }

        switch (match.Groups["kind"].Value)
        {
            case "manifests":
                await ManifestAsync(context, repository, match.Groups["reference"].Value).ConfigureAwait(false);
                break;
            case "blobs":
                await BlobAsync(context, repository, match.Groups["reference"].Value).ConfigureAwait(false);
                break;
            default:
                await TagsAsync(context, repository).ConfigureAwait(false);
                break;
        }
    }

    private async Task ManifestAsync(HttpContext context, ServedRepository repository, string reference)
    {
        Descriptor? descriptor;
        if (reference.Contains(':', StringComparison.Ordinal))
        {
            if (!Digest.TryParse(reference, out var digest, out var error))
            {
                await RegistryErrors.WriteAsync(context, StatusCodes.Status400BadRequest, RegistryErrorCodes.DigestInvalid, error, Detail("digest", reference)).ConfigureAwait(false);
                return;
            }

            descriptor = repository.Content.TryGetValue(digest, out var found) && _bundle.Documents.ContainsKey(digest) ? found : null;
        }
        else
        {
            descriptor = repository.Tags.GetValueOrDefault(reference);
        }

        if (descriptor is null)
        {
            await RegistryErrors.WriteAsync(context, StatusCodes.Status404NotFound, RegistryErrorCodes.ManifestUnknown, "manifest unknown to registry", Detail("name", repository.Name, "reference", reference)).ConfigureAwait(false);
            return;
        }

        var (_, bytes) = await _bundle.FetchManifestAsync(descriptor.Digest.ToString(), context.RequestAborted).ConfigureAwait(false);
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = _bundle.Documents[descriptor.Digest].MediaType;
        response.ContentLength = bytes.Length;
        response.Headers["Docker-Content-Digest"] = descriptor.Digest.ToString();
        response.Headers.ETag = $"\"{descriptor.Digest}\"";
        if (!HttpMethods.IsHead(context.Request.Method))
        {
            await response.Body.WriteAsync(bytes, context.RequestAborted).ConfigureAwait(false);
        }
    }

    private async Task BlobAsync(HttpContext context, ServedRepository repository, string reference)
    {
        if (!Digest.TryParse(reference, out var digest, out var error))
        {
            await RegistryErrors.WriteAsync(context, StatusCodes.Status400BadRequest, RegistryErrorCodes.DigestInvalid, error, Detail("digest", reference)).ConfigureAwait(false);
            return;
        }

        if (!repository.Content.TryGetValue(digest, out var descriptor))
        {
            await RegistryErrors.WriteAsync(context, StatusCodes.Status404NotFound, RegistryErrorCodes.BlobUnknown, "blob unknown to registry", Detail("name", repository.Name, "digest", reference)).ConfigureAwait(false);
            return;
        }

        var size = descriptor.Size;
        var response = context.Response;
        response.Headers.AcceptRanges = "bytes";
        response.Headers["Docker-Content-Digest"] = digest.ToString();
        response.Headers.ETag = $"\"{digest}\"";
        var range = ByteRange.Parse(context.Request.Headers.Range, size);
        if (range.Kind == RangeKind.Unsatisfiable)
        {
            response.Headers.ContentRange = range.ContentRange(size);
            await RegistryErrors.WriteAsync(context, StatusCodes.Status416RangeNotSatisfiable, RegistryErrorCodes.RangeInvalid, $"range '{context.Request.Headers.Range}' selects nothing of a {size}-byte blob", Detail("digest", reference)).ConfigureAwait(false);
            return;
        }

        response.StatusCode = range.Kind == RangeKind.Partial ? StatusCodes.Status206PartialContent : StatusCodes.Status200OK;
        if (range.Kind == RangeKind.Partial)
        {
            response.Headers.ContentRange = range.ContentRange(size);
        }

        response.ContentType = "application/octet-stream";
        response.ContentLength = range.Length;
        if (HttpMethods.IsHead(context.Request.Method))
        {
            return;
        }

        await _blobStreams.WaitAsync(context.RequestAborted).ConfigureAwait(false);
        try
        {
            // Verified when the server started; reading a range does not hash again.
            var stream = new CountingStream(_bundle.OpenVerifiedRange(digest, range.Offset, range.Length), static _ => { });
            context.Items[BodyBytesKey] = stream;
            await using (stream.ConfigureAwait(false))
            {
                await stream.CopyToAsync(response.Body, CopyBufferSize, context.RequestAborted).ConfigureAwait(false);
            }
        }
        finally
        {
            _blobStreams.Release();
        }
    }

    private async Task TagsAsync(HttpContext context, ServedRepository repository)
    {
        if (!await TryPageAsync(context, repository.Tags.Keys, out var page, out var next).ConfigureAwait(false))
        {
            return;
        }

        if (next is not null)
        {
            SetNextLink(context, $"/v2/{repository.Name}/tags/list", page.Count, next);
        }

        await WriteJsonAsync(context, List("name", repository.Name, "tags", page)).ConfigureAwait(false);
    }

    private async Task CatalogAsync(HttpContext context)
    {
        if (!await TryPageAsync(context, Catalog.Repositories.Keys, out var page, out var next).ConfigureAwait(false))
        {
            return;
        }

        if (next is not null)
        {
            SetNextLink(context, "/v2/_catalog", page.Count, next);
        }

        await WriteJsonAsync(context, List(null, null, "repositories", page)).ConfigureAwait(false);
    }

    /// <summary>
    /// The page <c>n</c>/<c>last</c> select of <paramref name="sorted"/> (entries after <c>last</c> in lexical order, at
    /// most <c>n</c>); <paramref name="next"/> is the page's last entry when more follow. False after answering 400 for a
    /// bad <c>n</c>.
    /// </summary>
    private static Task<bool> TryPageAsync(HttpContext context, IEnumerable<string> sorted, out List<string> page, out string? next)
    {
        var query = context.Request.Query;
        var last = query["last"].ToString();
        IEnumerable<string> after = last.Length == 0 ? sorted : sorted.Where(s => string.CompareOrdinal(s, last) > 0);
        page = [];
        next = null;
        if (query.ContainsKey("n"))
        {
            if (!int.TryParse(query["n"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                return WriteBadNumberAsync(context, query["n"].ToString());
            }

            var remaining = after.ToList();
            page = remaining.Take(n).ToList();
            next = remaining.Count > page.Count && page.Count > 0 ? page[^1] : null;
            return Task.FromResult(true);
        }

        page = after.ToList();
        return Task.FromResult(true);
    }

    private static async Task<bool> WriteBadNumberAsync(HttpContext context, string n)
    {
        await RegistryErrors.WriteAsync(context, StatusCodes.Status400BadRequest, RegistryErrorCodes.PaginationNumberInvalid, "n must be a non-negative integer", Detail("n", n)).ConfigureAwait(false);
        return false;
    }

    /// <summary>The spec's <c>Link: &lt;url?n=N&amp;last=LAST&gt;; rel="next"</c> (angle brackets required, RFC 8288).</summary>
    private static void SetNextLink(HttpContext context, string path, int n, string last) =>
        context.Response.Headers.Link = $"<{path}?n={n.ToString(CultureInfo.InvariantCulture)}&last={Uri.EscapeDataString(last)}>; rel=\"next\"";

    private static byte[] List(string? nameKey, string? name, string listKey, IEnumerable<string> items)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (nameKey is not null)
            {
                json.WriteString(nameKey, name);
            }

            json.WriteStartArray(listKey);
            foreach (var item in items)
            {
                json.WriteStringValue(item);
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    private static async Task WriteJsonAsync(HttpContext context, byte[] body)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength = body.Length;
        if (!HttpMethods.IsHead(context.Request.Method))
        {
            await response.Body.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
        }
    }

    private static Dictionary<string, string> Detail(params string[] pairs)
    {
        var detail = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < pairs.Length; i += 2)
        {
            detail[pairs[i]] = pairs[i + 1];
        }

        return detail;
    }

    // /v2/<name>/manifests/<reference>, /v2/<name>/blobs/<digest>, /v2/<name>/tags/list. The name is greedy up to the
    // last route keyword, so repositories may themselves contain "blobs" or "manifests" as path components.
    [GeneratedRegex(@"^/v2/(?<name>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)/(?:(?<kind>manifests|blobs)/(?<reference>[^/]+)|(?<kind>tags)/list)\z", RegexOptions.CultureInvariant)]
    private static partial Regex RoutePattern();
}
