using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// Knobs for <see cref="EcrPublicEmulator"/>. Everything except the listen addresses is read per request, so tests
/// may change settings while the emulator runs (e.g. enable fault injection after a warm-up).
/// </summary>
public sealed class EcrPublicEmulatorOptions
{
    /// <summary>The <c>service</c> advertised in the challenge and expected by the token endpoint.</summary>
    public string Service { get; set; } = "public.ecr.aws";

    /// <summary>How long an issued token is accepted; afterwards /v2 requests get 400 DENIED.</summary>
    public TimeSpan TokenLifetime { get; set; } = TimeSpan.FromHours(12);

    /// <summary>
    /// When both are set, the token endpoint requires these Basic credentials (otherwise it is anonymous); a token
    /// obtained with them is "authenticated" and is throttled by <see cref="AuthenticatedRateLimitPerSecond"/>.
    /// </summary>
    public string? BasicUsername { get; set; }

    /// <inheritdoc cref="BasicUsername"/>
    public string? BasicPassword { get; set; }

    /// <summary>
    /// With Basic credentials configured, still hand an anonymous token to a token request that carries no
    /// Authorization header (ECR Public serves both kinds of pull, at different quotas); wrong credentials still get 401.
    /// </summary>
    public bool AllowAnonymousTokens { get; set; }

    /// <summary>Remove <c>Docker-Content-Digest</c> from manifest GET responses.</summary>
    public bool StripManifestDigestHeader { get; set; }

    /// <summary>Remove <c>Docker-Content-Digest</c> from manifest HEAD responses as well.</summary>
    public bool StripManifestDigestHeaderOnHead { get; set; }

    /// <summary>
    /// Token-bucket refill rate of the /v2 requests that carry a valid token (anonymous, or any token while
    /// <see cref="AuthenticatedRateLimitPerSecond"/> is 0); 0 or less disables rate limiting. ECR Public: 1/s per IP.
    /// A request without a (valid) token is answered with its 401 challenge or 400 DENIED before the quota is counted.
    /// </summary>
    public double RateLimitPerSecond { get; set; }

    /// <summary>Bucket capacity; 0 means <c>max(1, ceil(rate))</c> (for each of the two buckets).</summary>
    public int RateLimitBurst { get; set; }

    /// <summary>
    /// Token-bucket refill rate, in a bucket of its own, of the requests carrying an authenticated token (one the token
    /// endpoint issued against <see cref="BasicUsername"/>); 0 counts them in the anonymous bucket. ECR Public: 10/s.
    /// </summary>
    public double AuthenticatedRateLimitPerSecond { get; set; }

    /// <summary>
    /// Value of the <c>Retry-After</c> header on 429 responses; null sends none. ECR Public documents its throttling
    /// answer only as <c>429 TOOMANYREQUESTS "Rate exceeded"</c> (no Retry-After), which null reproduces.
    /// </summary>
    public int? RetryAfterSeconds { get; set; } = 1;

    /// <summary>Inject a mid-body connection reset on every Nth CDN blob GET (1-based count); 0 disables.</summary>
    public int ResetEveryNthBlobGet { get; set; }

    /// <summary>Probability (0..1) of injecting a reset on a CDN blob GET, drawn from a <see cref="Random"/> seeded with <see cref="RandomSeed"/>.</summary>
    public double ResetProbability { get; set; }

    /// <summary>Seed for <see cref="ResetProbability"/> draws (the Random is created at emulator construction).</summary>
    public int RandomSeed { get; set; } = 20240601;

    /// <summary>Stop injecting once this many resets happened; null means unlimited.</summary>
    public int? MaxResets { get; set; }

    /// <summary>Body bytes sent before aborting (capped at Content-Length - 1 so the body is always truncated).</summary>
    public int ResetAfterBytes { get; set; } = 1024;

    /// <summary>Status the CDN answers when a request carries an Authorization header (S3 says 400).</summary>
    public int CdnAuthorizationRejectStatus { get; set; } = StatusCodes.Status400BadRequest;

    /// <summary>Validity of the presigned CDN URLs handed out in redirects.</summary>
    public TimeSpan CdnUrlLifetime { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Pass non-GET/HEAD /v2 requests (pushes, deletes) through to upstream instead of answering 405.</summary>
    public bool AllowWrites { get; set; }

    /// <summary>Registry listener address (loopback only). Read once at start.</summary>
    public IPAddress ListenAddress { get; set; } = IPAddress.Loopback;

    /// <summary>CDN listener address; a different loopback address than the registry, like a real CDN host. Read once at start.</summary>
    public IPAddress CdnListenAddress { get; set; } = IPAddress.Parse("127.0.0.2");

    /// <summary>Clock for token expiry, presigned URL expiry and the rate limiter (use <see cref="ManualTimeProvider"/> in tests).</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}

/// <summary>
/// Emulates AWS ECR Public's pull-side quirks in front of a plain Distribution registry:
/// anonymous bearer tokens that are still mandatory, a 400 DENIED for expired tokens, 401 on blob HEAD,
/// blob GETs redirected (307) to a presigned "CDN" URL on a second loopback address that rejects Authorization
/// headers, optional missing Docker-Content-Digest on manifests, 429 throttling (anonymous and authenticated tokens in separate quotas) and mid-body connection resets.
/// </summary>
public sealed partial class EcrPublicEmulator : IAsyncDisposable
{
    private const string DistributionApiVersion = "registry/2.0";

    private readonly HttpClient _upstreamClient = HttpForwarding.CreateUpstreamClient();
    private readonly ConcurrentDictionary<string, IssuedToken> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _tokenScopes = new();
    private readonly byte[] _signingKey = RandomNumberGenerator.GetBytes(32);
    private readonly TokenBucket _anonymousBucket = new();
    private readonly TokenBucket _authenticatedBucket = new();
    private readonly Lock _faultLock = new();
    private readonly Random _random;

    private LoopbackHttpServer? _registry;
    private LoopbackHttpServer? _cdn;
    private int _tokenRequests;
    private int _authenticatedTokens;
    private int _throttledAuthenticated;
    private int _denied400;
    private int _throttled429;
    private int _resetsInjected;
    private int _cdnAuthorizationViolations;
    private int _blobHead401;
    private int _redirectsIssued;
    private int _unauthorized401;
    private int _v2Requests;
    private int _cdnRequests;
    private int _cdnBlobGets;
    private int _cdnSignatureFailures;

    public EcrPublicEmulator(Uri upstream, EcrPublicEmulatorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        if (!upstream.IsAbsoluteUri || !upstream.IsLoopback)
        {
            throw new ArgumentException($"Upstream must be an absolute loopback URI, got {upstream}.", nameof(upstream));
        }

        Upstream = upstream;
        Options = options ?? new EcrPublicEmulatorOptions();
        _random = new Random(Options.RandomSeed);
    }

    /// <summary>The upstream Distribution registry (plain HTTP, no auth).</summary>
    public Uri Upstream { get; }

    /// <summary>Live options; see <see cref="EcrPublicEmulatorOptions"/>.</summary>
    public EcrPublicEmulatorOptions Options { get; }

    /// <summary>Registry base address, e.g. <c>http://127.0.0.1:40123/</c>.</summary>
    public Uri BaseAddress => Registry.BaseAddress;

    /// <summary>Registry host for image references, e.g. <c>127.0.0.1:40123</c> (plain HTTP).</summary>
    public string RegistryHost => Registry.Authority;

    /// <summary>CDN base address, e.g. <c>http://127.0.0.2:40777/</c>.</summary>
    public Uri CdnBaseAddress => Cdn.BaseAddress;

    /// <summary>CDN host, e.g. <c>127.0.0.2:40777</c>.</summary>
    public string CdnHost => Cdn.Authority;

    /// <summary>Token realm, e.g. <c>http://127.0.0.1:40123/token/</c>.</summary>
    public Uri TokenRealm => new(Registry.BaseAddress, "token/");

    /// <summary>The exact WWW-Authenticate value of every 401.</summary>
    public string Challenge => $"Bearer realm=\"{TokenRealm.AbsoluteUri}\",service=\"{Options.Service}\",scope=\"aws\"";

    public int TokenRequests => Volatile.Read(ref _tokenRequests);

    public int Denied400Count => Volatile.Read(ref _denied400);

    public int Throttled429Count => Volatile.Read(ref _throttled429);

    /// <summary>Of <see cref="Throttled429Count"/>, the requests that carried an authenticated token.</summary>
    public int ThrottledAuthenticated429Count => Volatile.Read(ref _throttledAuthenticated);

    /// <summary>Tokens issued against the configured Basic credentials (the others were anonymous).</summary>
    public int AuthenticatedTokensIssued => Volatile.Read(ref _authenticatedTokens);

    public int ResetsInjected => Volatile.Read(ref _resetsInjected);

    public int CdnAuthorizationViolations => Volatile.Read(ref _cdnAuthorizationViolations);

    public int BlobHead401Count => Volatile.Read(ref _blobHead401);

    public int RedirectsIssued => Volatile.Read(ref _redirectsIssued);

    /// <summary>All 401 challenges sent on /v2 (missing/unknown token, plus blob HEADs).</summary>
    public int Unauthorized401Count => Volatile.Read(ref _unauthorized401);

    /// <summary>Requests seen on /v2 (before rate limiting and auth).</summary>
    public int V2Requests => Volatile.Read(ref _v2Requests);

    /// <summary>Requests seen by the CDN listener.</summary>
    public int CdnRequests => Volatile.Read(ref _cdnRequests);

    /// <summary>Blob GETs served (or attempted) by the CDN after signature and Authorization checks.</summary>
    public int CdnBlobGets => Volatile.Read(ref _cdnBlobGets);

    /// <summary>CDN requests refused for a missing, wrong or expired signature.</summary>
    public int CdnSignatureFailures => Volatile.Read(ref _cdnSignatureFailures);

    /// <summary>Scope parameters received by the token endpoint, in order.</summary>
    public IReadOnlyCollection<string> TokenScopes => _tokenScopes.ToArray();

    private LoopbackHttpServer Registry => _registry ?? throw new InvalidOperationException("Call StartAsync first.");

    private LoopbackHttpServer Cdn => _cdn ?? throw new InvalidOperationException("Call StartAsync first.");

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_registry is not null)
        {
            throw new InvalidOperationException("Already started.");
        }

        _cdn = await LoopbackHttpServer.StartAsync(Options.CdnListenAddress, HandleCdnAsync, cancellationToken).ConfigureAwait(false);
        _registry = await LoopbackHttpServer.StartAsync(Options.ListenAddress, HandleRegistryAsync, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Makes every token issued so far count as expired (next use gets 400 DENIED).</summary>
    public void ExpireAllTokens()
    {
        foreach (var (token, issued) in _tokens)
        {
            _tokens[token] = issued with { ExpiresAt = DateTimeOffset.MinValue };
        }
    }

    /// <summary>Zeroes all counters and the token-scope log (issued tokens and the rate bucket are kept).</summary>
    public void ResetCounters()
    {
        Interlocked.Exchange(ref _tokenRequests, 0);
        Interlocked.Exchange(ref _denied400, 0);
        Interlocked.Exchange(ref _throttled429, 0);
        Interlocked.Exchange(ref _throttledAuthenticated, 0);
        Interlocked.Exchange(ref _authenticatedTokens, 0);
        Interlocked.Exchange(ref _resetsInjected, 0);
        Interlocked.Exchange(ref _cdnAuthorizationViolations, 0);
        Interlocked.Exchange(ref _blobHead401, 0);
        Interlocked.Exchange(ref _redirectsIssued, 0);
        Interlocked.Exchange(ref _unauthorized401, 0);
        Interlocked.Exchange(ref _v2Requests, 0);
        Interlocked.Exchange(ref _cdnRequests, 0);
        Interlocked.Exchange(ref _cdnBlobGets, 0);
        Interlocked.Exchange(ref _cdnSignatureFailures, 0);
        _tokenScopes.Clear();
    }

    public async ValueTask DisposeAsync()
    {
        if (_registry is not null)
        {
            await _registry.DisposeAsync().ConfigureAwait(false);
        }

        if (_cdn is not null)
        {
            await _cdn.DisposeAsync().ConfigureAwait(false);
        }

        _upstreamClient.Dispose();
    }

    // ---------------------------------------------------------------- registry listener

    private async Task HandleRegistryAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        try
        {
            if (path is "/token" or "/token/")
            {
                await HandleTokenAsync(context).ConfigureAwait(false);
            }
            else if (path == "/v2" || path.StartsWith("/v2/", StringComparison.Ordinal))
            {
                await HandleV2Async(context, path).ConfigureAwait(false);
            }
            else
            {
                await HttpForwarding.WriteBodyAsync(context, StatusCodes.Status404NotFound, "text/plain", "404 page not found\n")
                    .ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (HttpForwarding.IsClientGone(ex, context))
        {
            // Client went away; nothing to do.
        }
    }

    private async Task HandleTokenAsync(HttpContext context)
    {
        Interlocked.Increment(ref _tokenRequests);
        var request = context.Request;
        foreach (var scope in request.Query["scope"])
        {
            if (scope is not null)
            {
                _tokenScopes.Enqueue(scope);
            }
        }

        if (!HttpMethods.IsGet(request.Method))
        {
            await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status405MethodNotAllowed, "UNSUPPORTED", "The operation is unsupported.")
                .ConfigureAwait(false);
            return;
        }

        var service = request.Query["service"].ToString();
        if (service.Length > 0 && !string.Equals(service, Options.Service, StringComparison.Ordinal))
        {
            await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status400BadRequest, "INVALID_REQUEST", $"Invalid service '{service}'.")
                .ConfigureAwait(false);
            return;
        }

        var authenticated = false;
        if (Options.BasicUsername is { } user && Options.BasicPassword is { } password)
        {
            var anonymous = Options.AllowAnonymousTokens && !request.Headers.ContainsKey("Authorization");
            authenticated = !anonymous && HasBasicCredentials(request, user, password);
            if (!anonymous && !authenticated)
            {
                context.Response.Headers.WWWAuthenticate = $"Basic realm=\"{TokenRealm.AbsoluteUri}\"";
                await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status401Unauthorized, "UNAUTHORIZED", "Invalid credentials.")
                    .ConfigureAwait(false);
                return;
            }
        }

        if (authenticated)
        {
            Interlocked.Increment(ref _authenticatedTokens);
        }

        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(96));
        _tokens[token] = new IssuedToken(Options.TimeProvider.GetUtcNow() + Options.TokenLifetime, authenticated);
        context.Response.Headers.CacheControl = "no-store";
        await HttpForwarding.WriteBodyAsync(context, StatusCodes.Status200OK, "application/json", "{\"token\":\"" + token + "\"}")
            .ConfigureAwait(false);
    }

    private static bool HasBasicCredentials(HttpRequest request, string user, string password)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header["Basic ".Length..].Trim()));
            return string.Equals(decoded, user + ":" + password, StringComparison.Ordinal);
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private enum TokenState
    {
        Missing,
        Unknown,
        Expired,
        Valid,
    }

    /// <summary>A token handed out by the token endpoint: until when it is accepted, and whether credentials obtained it.</summary>
    private readonly record struct IssuedToken(DateTimeOffset ExpiresAt, bool Authenticated);

    private (TokenState State, bool Authenticated) CheckToken(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return (TokenState.Missing, false);
        }

        var token = header["Bearer ".Length..].Trim();
        if (!_tokens.TryGetValue(token, out var issued))
        {
            return (TokenState.Unknown, false);
        }

        return (Options.TimeProvider.GetUtcNow() >= issued.ExpiresAt ? TokenState.Expired : TokenState.Valid, issued.Authenticated);
    }

    private async Task HandleV2Async(HttpContext context, string path)
    {
        Interlocked.Increment(ref _v2Requests);
        var request = context.Request;
        var response = context.Response;
        response.Headers["Docker-Distribution-Api-Version"] = DistributionApiVersion;

        var blob = BlobPath().Match(path);
        var isBlobHead = blob.Success && HttpMethods.IsHead(request.Method);

        var (tokenState, authenticated) = CheckToken(request);
        switch (tokenState)
        {
            case TokenState.Missing:
            case TokenState.Unknown:
                await WriteChallengeAsync(context, isBlobHead).ConfigureAwait(false);
                return;
            case TokenState.Expired:
                Interlocked.Increment(ref _denied400);
                await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status400BadRequest, "DENIED", "Your Authorization Token is invalid.")
                    .ConfigureAwait(false);
                return;
        }

        // The quota counts pulls, so only requests with a valid token; an authenticated token has its own bucket.
        var separate = authenticated && Options.AuthenticatedRateLimitPerSecond > 0;
        if (!(separate ? _authenticatedBucket : _anonymousBucket).TryTake(
                separate ? Options.AuthenticatedRateLimitPerSecond : Options.RateLimitPerSecond, Options.RateLimitBurst, Options.TimeProvider.GetUtcNow()))
        {
            Interlocked.Increment(ref _throttled429);
            if (authenticated)
            {
                Interlocked.Increment(ref _throttledAuthenticated);
            }

            if (Options.RetryAfterSeconds is { } after)
            {
                response.Headers.RetryAfter = after.ToString(CultureInfo.InvariantCulture);
            }

            await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status429TooManyRequests, "TOOMANYREQUESTS", "Rate exceeded")
                .ConfigureAwait(false);
            return;
        }

        if (blob.Success)
        {
            if (isBlobHead)
            {
                // ECR Public quirk: HEAD on a blob is refused even with a perfectly valid token.
                await WriteChallengeAsync(context, isBlobHead: true).ConfigureAwait(false);
                return;
            }

            if (HttpMethods.IsGet(request.Method))
            {
                Interlocked.Increment(ref _redirectsIssued);
                response.StatusCode = StatusCodes.Status307TemporaryRedirect;
                response.Headers.Location = PresignCdnUrl(blob.Groups["name"].Value, blob.Groups["digest"].Value);
                response.ContentLength = 0;
                return;
            }
        }

        var isRead = HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method);
        if (!isRead && !Options.AllowWrites)
        {
            await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status405MethodNotAllowed, "UNSUPPORTED", "The operation is unsupported.")
                .ConfigureAwait(false);
            return;
        }

        var isManifest = ManifestPath().IsMatch(path);
        var stripDigest = isManifest
            && ((HttpMethods.IsGet(request.Method) && Options.StripManifestDigestHeader)
                || (HttpMethods.IsHead(request.Method) && Options.StripManifestDigestHeaderOnHead));
        await ForwardToUpstreamAsync(context, stripDigest).ConfigureAwait(false);
    }

    private async Task WriteChallengeAsync(HttpContext context, bool isBlobHead)
    {
        Interlocked.Increment(ref _unauthorized401);
        if (isBlobHead)
        {
            Interlocked.Increment(ref _blobHead401);
        }

        context.Response.Headers.WWWAuthenticate = Challenge;
        await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status401Unauthorized, "UNAUTHORIZED", "Not Authorized")
            .ConfigureAwait(false);
    }

    private async Task ForwardToUpstreamAsync(HttpContext context, bool stripDigest)
    {
        var target = HttpForwarding.BuildUpstreamUri(Upstream, HttpForwarding.PathAndQuery(context));
        using var upstreamRequest = HttpForwarding.CreateUpstreamRequest(
            context, target, name => string.Equals(name, "Authorization", StringComparison.OrdinalIgnoreCase));
        using var upstreamResponse = await HttpForwarding.SendUpstreamAsync(_upstreamClient, upstreamRequest, context).ConfigureAwait(false);
        if (upstreamResponse is null)
        {
            return;
        }

        HttpForwarding.CopyResponseHead(
            upstreamResponse,
            context.Response,
            name => stripDigest && string.Equals(name, "Docker-Content-Digest", StringComparison.OrdinalIgnoreCase),
            HttpForwarding.AuthorityRewriter(Upstream, Registry.BaseAddress));

        if (!HttpMethods.IsHead(context.Request.Method))
        {
            await using var body = await upstreamResponse.Content.ReadAsStreamAsync(context.RequestAborted).ConfigureAwait(false);
            await HttpForwarding.CopyBodyAsync(body, context.Response.Body, context.RequestAborted).ConfigureAwait(false);
        }
    }

    /// <summary>A token bucket: starts full, refills at the rate given on each take.</summary>
    private sealed class TokenBucket
    {
        private readonly Lock _gate = new();
        private bool _initialized;
        private double _tokens;
        private DateTimeOffset _updated;

        public bool TryTake(double rate, int burst, DateTimeOffset now)
        {
            if (rate <= 0)
            {
                return true;
            }

            var capacity = burst > 0 ? burst : Math.Max(1, (int)Math.Ceiling(rate));
            lock (_gate)
            {
                _tokens = _initialized ? Math.Min(capacity, _tokens + (Math.Max(0, (now - _updated).TotalSeconds) * rate)) : capacity;
                _initialized = true;
                _updated = now;
                if (_tokens >= 1)
                {
                    _tokens -= 1;
                    return true;
                }

                return false;
            }
        }
    }

    // ---------------------------------------------------------------- CDN listener

    private string PresignCdnUrl(string name, string digest)
    {
        var now = Options.TimeProvider.GetUtcNow().UtcDateTime;
        var amzDate = now.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var credential = "ASIAECRPUBLICEMULATOR/" + now.ToString("yyyyMMdd", CultureInfo.InvariantCulture) + "/us-east-1/s3/aws4_request";
        var expires = Math.Max(1, (long)Options.CdnUrlLifetime.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        var path = "/" + name + "/blobs/" + digest;
        var signature = Sign(path, amzDate, expires, credential);
        var query = "X-Amz-Algorithm=AWS4-HMAC-SHA256"
            + "&X-Amz-Credential=" + Uri.EscapeDataString(credential)
            + "&X-Amz-Date=" + amzDate
            + "&X-Amz-Expires=" + expires
            + "&X-Amz-SignedHeaders=host"
            + "&X-Amz-Signature=" + signature;
        return Cdn.BaseAddress.GetLeftPart(UriPartial.Authority) + path + "?" + query;
    }

    private string Sign(string path, string amzDate, string expires, string credential)
    {
        var payload = Encoding.UTF8.GetBytes(path + "\n" + amzDate + "\n" + expires + "\n" + credential);
        return Convert.ToHexStringLower(HMACSHA256.HashData(_signingKey, payload));
    }

    private enum SignatureState
    {
        Valid,
        Invalid,
        Expired,
    }

    private SignatureState CheckSignature(HttpRequest request, string path)
    {
        var query = request.Query;
        var amzDate = query["X-Amz-Date"].ToString();
        var expires = query["X-Amz-Expires"].ToString();
        var credential = query["X-Amz-Credential"].ToString();
        var signature = query["X-Amz-Signature"].ToString();
        if (amzDate.Length == 0 || expires.Length == 0 || credential.Length == 0 || signature.Length == 0
            || !string.Equals(query["X-Amz-Algorithm"].ToString(), "AWS4-HMAC-SHA256", StringComparison.Ordinal))
        {
            return SignatureState.Invalid;
        }

        var expected = Encoding.ASCII.GetBytes(Sign(path, amzDate, expires, credential));
        if (!CryptographicOperations.FixedTimeEquals(expected, Encoding.ASCII.GetBytes(signature)))
        {
            return SignatureState.Invalid;
        }

        if (!DateTime.TryParseExact(amzDate, "yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var signedAt)
            || !long.TryParse(expires, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            return SignatureState.Invalid;
        }

        var deadline = new DateTimeOffset(signedAt, TimeSpan.Zero).AddSeconds(seconds);
        return Options.TimeProvider.GetUtcNow() > deadline ? SignatureState.Expired : SignatureState.Valid;
    }

    private static Task WriteS3ErrorAsync(HttpContext context, int status, string code, string message)
        => HttpForwarding.WriteBodyAsync(
            context,
            status,
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code + "</Code><Message>" + message
                + "</Message><RequestId>EMULATOR</RequestId></Error>");

    private async Task HandleCdnAsync(HttpContext context)
    {
        Interlocked.Increment(ref _cdnRequests);
        try
        {
            var request = context.Request;
            var path = request.Path.Value ?? "/";

            if (request.Headers.ContainsKey("Authorization"))
            {
                Interlocked.Increment(ref _cdnAuthorizationViolations);
                await WriteS3ErrorAsync(
                        context,
                        Options.CdnAuthorizationRejectStatus,
                        "InvalidArgument",
                        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
                    .ConfigureAwait(false);
                return;
            }

            var match = CdnPath().Match(path);
            if (!match.Success)
            {
                await WriteS3ErrorAsync(context, StatusCodes.Status404NotFound, "NoSuchKey", "The specified key does not exist.").ConfigureAwait(false);
                return;
            }

            if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
            {
                await WriteS3ErrorAsync(context, StatusCodes.Status405MethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
                    .ConfigureAwait(false);
                return;
            }

            switch (CheckSignature(request, path))
            {
                case SignatureState.Invalid:
                    Interlocked.Increment(ref _cdnSignatureFailures);
                    await WriteS3ErrorAsync(context, StatusCodes.Status403Forbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
                        .ConfigureAwait(false);
                    return;
                case SignatureState.Expired:
                    Interlocked.Increment(ref _cdnSignatureFailures);
                    await WriteS3ErrorAsync(context, StatusCodes.Status403Forbidden, "AccessDenied", "Request has expired")
                        .ConfigureAwait(false);
                    return;
            }

            await ServeBlobFromUpstreamAsync(context, match.Groups["name"].Value, match.Groups["digest"].Value).ConfigureAwait(false);
        }
        catch (Exception ex) when (HttpForwarding.IsClientGone(ex, context))
        {
            // Client went away; nothing to do.
        }
    }

    private static readonly string[] CdnForwardedRequestHeaders =
        ["Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "User-Agent"];

    private static readonly HashSet<string> CdnCopiedResponseHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Content-Length", "Content-Range", "Content-Type", "Accept-Ranges", "ETag", "Last-Modified", "Cache-Control",
    };

    private async Task ServeBlobFromUpstreamAsync(HttpContext context, string name, string digest)
    {
        var request = context.Request;
        var isGet = HttpMethods.IsGet(request.Method);
        var target = HttpForwarding.BuildUpstreamUri(Upstream, "/v2/" + name + "/blobs/" + digest);
        using var upstreamRequest = new HttpRequestMessage(isGet ? HttpMethod.Get : HttpMethod.Head, target);
        foreach (var header in CdnForwardedRequestHeaders)
        {
            if (request.Headers.TryGetValue(header, out var values))
            {
                upstreamRequest.Headers.TryAddWithoutValidation(header, values.ToArray());
            }
        }

        using var upstreamResponse = await HttpForwarding.SendUpstreamAsync(_upstreamClient, upstreamRequest, context).ConfigureAwait(false);
        if (upstreamResponse is null)
        {
            return;
        }

        var status = (int)upstreamResponse.StatusCode;
        if (status == StatusCodes.Status404NotFound)
        {
            await WriteS3ErrorAsync(context, StatusCodes.Status404NotFound, "NoSuchKey", "The specified key does not exist.").ConfigureAwait(false);
            return;
        }

        HttpForwarding.CopyResponseHead(upstreamResponse, context.Response, header => !CdnCopiedResponseHeaders.Contains(header));
        context.Response.Headers["Server"] = "AmazonS3";
        if (!isGet)
        {
            return;
        }

        var blobGetNumber = Interlocked.Increment(ref _cdnBlobGets);
        var contentLength = upstreamResponse.Content.Headers.ContentLength;
        await using var body = await upstreamResponse.Content.ReadAsStreamAsync(context.RequestAborted).ConfigureAwait(false);

        if (status is StatusCodes.Status200OK or StatusCodes.Status206PartialContent
            && contentLength is > 0
            && ShouldInjectReset(blobGetNumber))
        {
            var bytesToSend = Math.Min((long)Math.Max(0, Options.ResetAfterBytes), contentLength.Value - 1);
            await HttpForwarding.SendPrefixThenAbortAsync(context, body, bytesToSend).ConfigureAwait(false);
            return;
        }

        await HttpForwarding.CopyBodyAsync(body, context.Response.Body, context.RequestAborted).ConfigureAwait(false);
    }

    private bool ShouldInjectReset(int blobGetNumber)
    {
        var everyNth = Options.ResetEveryNthBlobGet;
        var probability = Options.ResetProbability;
        if (everyNth <= 0 && probability <= 0)
        {
            return false;
        }

        lock (_faultLock)
        {
            if (Options.MaxResets is { } max && _resetsInjected >= max)
            {
                return false;
            }

            var inject = (everyNth > 0 && blobGetNumber % everyNth == 0) || (probability > 0 && _random.NextDouble() < probability);
            if (inject)
            {
                Interlocked.Increment(ref _resetsInjected);
            }

            return inject;
        }
    }

    [GeneratedRegex(@"^/v2/(?<name>.+)/blobs/(?<digest>[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)$", RegexOptions.CultureInvariant)]
    private static partial Regex BlobPath();

    [GeneratedRegex(@"^/v2/(?<name>.+)/manifests/(?<reference>[^/]+)$", RegexOptions.CultureInvariant)]
    private static partial Regex ManifestPath();

    [GeneratedRegex(@"^/(?<name>.+)/blobs/(?<digest>[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)$", RegexOptions.CultureInvariant)]
    private static partial Regex CdnPath();
}
