using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>What <see cref="TamperingProxy"/> does to a matching response body.</summary>
public enum TamperAction
{
    /// <summary>Pass the body through unchanged.</summary>
    None,

    /// <summary>
    /// Change one byte, keeping length and headers (including Docker-Content-Digest). Blobs: XOR 0xFF at
    /// <see cref="TamperingProxyOptions.FlipOffset"/> (default: middle of the body). Manifests: a JSON-preserving
    /// change of one alphanumeric character (preferably inside a <c>sha256:</c> digest) near the middle.
    /// </summary>
    FlipByte,

    /// <summary>Send fewer bytes than the advertised Content-Length, then abort the connection.</summary>
    Truncate,
}

/// <summary>
/// Live settings of a <see cref="TamperingProxy"/>; read per request so tests may switch tampering on and off.
/// </summary>
public sealed class TamperingProxyOptions
{
    /// <summary>Action for <c>GET /v2/&lt;name&gt;/blobs/&lt;digest&gt;</c> responses with status 200/206.</summary>
    public TamperAction BlobAction { get; set; }

    /// <summary>Digests whose blob GETs are tampered with; null means every blob.</summary>
    public IReadOnlyCollection<string>? BlobDigests { get; set; }

    /// <summary>Action for <c>GET /v2/&lt;name&gt;/manifests/&lt;reference&gt;</c> responses with status 200.</summary>
    public TamperAction ManifestAction { get; set; }

    /// <summary>References (tag or digest, as written in the request URL) to tamper with; null means every manifest.</summary>
    public IReadOnlyCollection<string>? ManifestReferences { get; set; }

    /// <summary>Blob byte offset to flip (relative to the response body, so to the range for 206); null = middle.</summary>
    public long? FlipOffset { get; set; }

    /// <summary>Bytes sent before a truncation abort; null = half of Content-Length. Always capped at Content-Length - 1.</summary>
    public long? TruncateAfterBytes { get; set; }

    /// <summary>Stop tampering after this many tampered responses; null means unlimited.</summary>
    public int? MaxTampers { get; set; }
}

/// <summary>
/// A transparent reverse proxy on a loopback port in front of a registry: all methods, headers and streamed bodies
/// in both directions, absolute Location headers pointing at the upstream rewritten to the proxy. Optionally corrupts
/// blob or manifest GET bodies (byte flip keeping the upstream digest header, or truncation) to test client-side
/// verification. Redirects to other hosts (e.g. a CDN) are passed through untouched and therefore not tampered.
/// </summary>
public sealed partial class TamperingProxy : IAsyncDisposable
{
    private readonly HttpClient _upstreamClient = HttpForwarding.CreateUpstreamClient();
    private readonly IPAddress _listenAddress;
    private LoopbackHttpServer? _server;

    private int _requests;
    private int _tamperedResponses;
    private int _tamperedBlobs;
    private int _tamperedManifests;
    private int _flippedResponses;
    private int _truncatedResponses;

    public TamperingProxy(Uri upstream, TamperingProxyOptions? options = null, IPAddress? listenAddress = null)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        if (!upstream.IsAbsoluteUri || !upstream.IsLoopback)
        {
            throw new ArgumentException($"Upstream must be an absolute loopback URI, got {upstream}.", nameof(upstream));
        }

        Upstream = upstream;
        Options = options ?? new TamperingProxyOptions();
        _listenAddress = listenAddress ?? IPAddress.Loopback;
    }

    public Uri Upstream { get; }

    /// <summary>Live options; see <see cref="TamperingProxyOptions"/>.</summary>
    public TamperingProxyOptions Options { get; }

    /// <summary>Proxy base address, e.g. <c>http://127.0.0.1:40999/</c>.</summary>
    public Uri BaseAddress => Server.BaseAddress;

    /// <summary>Proxy host for image references, e.g. <c>127.0.0.1:40999</c> (plain HTTP).</summary>
    public string RegistryHost => Server.Authority;

    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Responses tampered with in any way.</summary>
    public int TamperedResponses => Volatile.Read(ref _tamperedResponses);

    public int TamperedBlobs => Volatile.Read(ref _tamperedBlobs);

    public int TamperedManifests => Volatile.Read(ref _tamperedManifests);

    public int FlippedResponses => Volatile.Read(ref _flippedResponses);

    public int TruncatedResponses => Volatile.Read(ref _truncatedResponses);

    private LoopbackHttpServer Server => _server ?? throw new InvalidOperationException("Call StartAsync first.");

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_server is not null)
        {
            throw new InvalidOperationException("Already started.");
        }

        _server = await LoopbackHttpServer.StartAsync(_listenAddress, HandleAsync, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Flip a byte in GETs of the given blob (null: every blob).</summary>
    public void FlipBlob(string? digest = null)
    {
        Options.BlobAction = TamperAction.FlipByte;
        Options.BlobDigests = digest is null ? null : [digest];
    }

    /// <summary>Truncate GETs of the given blob (null: every blob).</summary>
    public void TruncateBlob(string? digest = null)
    {
        Options.BlobAction = TamperAction.Truncate;
        Options.BlobDigests = digest is null ? null : [digest];
    }

    /// <summary>Flip a byte in GETs of the given manifest reference (null: every manifest).</summary>
    public void FlipManifest(string? reference = null)
    {
        Options.ManifestAction = TamperAction.FlipByte;
        Options.ManifestReferences = reference is null ? null : [reference];
    }

    /// <summary>Back to a fully transparent proxy (counters are kept).</summary>
    public void StopTampering()
    {
        Options.BlobAction = TamperAction.None;
        Options.ManifestAction = TamperAction.None;
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync().ConfigureAwait(false);
        }

        _upstreamClient.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref _requests);
        try
        {
            await ProxyAsync(context).ConfigureAwait(false);
        }
        catch (Exception ex) when (HttpForwarding.IsClientGone(ex, context))
        {
            // Client went away; nothing to do.
        }
    }

    private async Task ProxyAsync(HttpContext context)
    {
        var target = HttpForwarding.BuildUpstreamUri(Upstream, HttpForwarding.PathAndQuery(context));
        using var upstreamRequest = HttpForwarding.CreateUpstreamRequest(context, target);
        using var upstreamResponse = await HttpForwarding.SendUpstreamAsync(_upstreamClient, upstreamRequest, context).ConfigureAwait(false);
        if (upstreamResponse is null)
        {
            return;
        }

        HttpForwarding.CopyResponseHead(
            upstreamResponse, context.Response, rewriteLocation: HttpForwarding.AuthorityRewriter(Upstream, Server.BaseAddress));
        if (HttpMethods.IsHead(context.Request.Method))
        {
            return;
        }

        await using var body = await upstreamResponse.Content.ReadAsStreamAsync(context.RequestAborted).ConfigureAwait(false);
        var contentLength = upstreamResponse.Content.Headers.ContentLength;
        var status = (int)upstreamResponse.StatusCode;
        var (action, isBlob) = Choose(context.Request, status);

        switch (action)
        {
            case TamperAction.FlipByte when isBlob:
                await StreamWithFlipAsync(context, body, Options.FlipOffset ?? (contentLength is > 0 ? contentLength.Value / 2 : 0))
                    .ConfigureAwait(false);
                return;
            case TamperAction.FlipByte:
                await FlipManifestAsync(context, body).ConfigureAwait(false);
                return;
            case TamperAction.Truncate when contentLength is > 0:
                var bytes = Math.Clamp(Options.TruncateAfterBytes ?? (contentLength.Value / 2), 0, contentLength.Value - 1);
                Count(isBlob);
                Interlocked.Increment(ref _truncatedResponses);
                await HttpForwarding.SendPrefixThenAbortAsync(context, body, bytes).ConfigureAwait(false);
                return;
            default:
                await HttpForwarding.CopyBodyAsync(body, context.Response.Body, context.RequestAborted).ConfigureAwait(false);
                return;
        }
    }

    private (TamperAction Action, bool IsBlob) Choose(HttpRequest request, int status)
    {
        if (!HttpMethods.IsGet(request.Method)
            || (Options.MaxTampers is { } max && TamperedResponses >= max))
        {
            return (TamperAction.None, false);
        }

        var path = request.Path.Value ?? "/";
        var blob = BlobPath().Match(path);
        if (blob.Success)
        {
            var action = Options.BlobAction;
            var digests = Options.BlobDigests;
            var selected = status is StatusCodes.Status200OK or StatusCodes.Status206PartialContent
                && (digests is null || digests.Contains(blob.Groups["digest"].Value, StringComparer.Ordinal));
            return (selected ? action : TamperAction.None, true);
        }

        var manifest = ManifestPath().Match(path);
        if (manifest.Success)
        {
            var action = Options.ManifestAction;
            var references = Options.ManifestReferences;
            var selected = status == StatusCodes.Status200OK
                && (references is null || references.Contains(manifest.Groups["reference"].Value, StringComparer.Ordinal));
            return (selected ? action : TamperAction.None, false);
        }

        return (TamperAction.None, false);
    }

    private void Count(bool isBlob)
    {
        Interlocked.Increment(ref _tamperedResponses);
        if (isBlob)
        {
            Interlocked.Increment(ref _tamperedBlobs);
        }
        else
        {
            Interlocked.Increment(ref _tamperedManifests);
        }
    }

    private async Task StreamWithFlipAsync(HttpContext context, Stream body, long offset)
    {
        var buffer = new byte[81920];
        long position = 0;
        var flipped = false;
        int read;
        while ((read = await body.ReadAsync(buffer, context.RequestAborted).ConfigureAwait(false)) > 0)
        {
            if (!flipped && offset >= position && offset < position + read)
            {
                buffer[offset - position] ^= 0xFF;
                flipped = true;
                Count(isBlob: true);
                Interlocked.Increment(ref _flippedResponses);
            }

            await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), context.RequestAborted).ConfigureAwait(false);
            position += read;
        }
    }

    private async Task FlipManifestAsync(HttpContext context, Stream body)
    {
        using var buffer = new MemoryStream();
        await body.CopyToAsync(buffer, context.RequestAborted).ConfigureAwait(false);
        var bytes = buffer.ToArray();
        if (MutateJsonPreserving(bytes))
        {
            Count(isBlob: false);
            Interlocked.Increment(ref _flippedResponses);
        }

        await context.Response.Body.WriteAsync(bytes, context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>
    /// Changes exactly one byte so the document stays valid JSON of the same length: preferably a hex character of a
    /// <c>sha256:</c> digest at or after the middle, else the first alphanumeric character from the middle, else XOR.
    /// </summary>
    internal static bool MutateJsonPreserving(byte[] bytes)
    {
        if (bytes.Length == 0)
        {
            return false;
        }

        var middle = bytes.Length / 2;
        ReadOnlySpan<byte> marker = "sha256:"u8;
        var index = bytes.AsSpan(middle).IndexOf(marker);
        index = index >= 0 ? index + middle : bytes.AsSpan().IndexOf(marker);
        if (index >= 0)
        {
            var position = index + marker.Length + 5;
            if (position < bytes.Length && IsAsciiAlphanumeric(bytes[position]))
            {
                bytes[position] = Rotate(bytes[position]);
                return true;
            }
        }

        for (var i = 0; i < bytes.Length; i++)
        {
            var position = (middle + i) % bytes.Length;
            if (IsAsciiAlphanumeric(bytes[position]))
            {
                bytes[position] = Rotate(bytes[position]);
                return true;
            }
        }

        bytes[middle] ^= 0xFF;
        return true;
    }

    private static bool IsAsciiAlphanumeric(byte b) => char.IsAsciiLetterOrDigit((char)b);

    private static byte Rotate(byte b) => (char)b switch
    {
        >= '0' and < '9' => (byte)(b + 1),
        '9' => (byte)'0',
        >= 'a' and < 'f' => (byte)(b + 1),
        'f' => (byte)'a',
        >= 'g' and < 'z' => (byte)(b + 1),
        'z' => (byte)'g',
        >= 'A' and < 'Z' => (byte)(b + 1),
        'Z' => (byte)'A',
        _ => (byte)(b ^ 0xFF),
    };

    [GeneratedRegex(@"^/v2/(?<name>.+)/blobs/(?<digest>[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)$", RegexOptions.CultureInvariant)]
    private static partial Regex BlobPath();

    [GeneratedRegex(@"^/v2/(?<name>.+)/manifests/(?<reference>[^/]+)$", RegexOptions.CultureInvariant)]
    private static partial Regex ManifestPath();
}
