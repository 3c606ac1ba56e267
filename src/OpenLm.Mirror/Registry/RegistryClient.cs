using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry.Auth;

namespace OpenLm.Mirror.Registry;

/// <summary>
/// Talks HTTP to one registry host: authentication (bearer tokens from the challenge, basic), token cache,
/// redirects (dropping <c>Authorization</c> when the host changes), rate limit and TLS policy.
/// Obtain instances from <see cref="RegistryConnector"/>, which shares them per host.
/// </summary>
public sealed class RegistryClient
{
    private static readonly HttpMethod[] RedirectableMethods = [HttpMethod.Get, HttpMethod.Head];
    private readonly HttpClient _http;
    private readonly RegistryOptions _options;
    private readonly RequestRateLimiter _limiter;
    private int _failureStreak;
    private readonly ConcurrentDictionary<string, CachedToken> _tokens = new(StringComparer.Ordinal);
    // One token fetch at a time per scope set, not per host: a token request waiting out a Retry-After for one
    // repository must not hold up the requests of the others (their tokens are fetched meanwhile).
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _tokenLocks = new(StringComparer.Ordinal);
    private volatile Challenge? _lastBearerChallenge;
    private volatile bool _useBasic;

    /// <summary>A scheme mix-up found once for this registry; every later request fails with it at once.</summary>
    private OperationException? _transportFailure;

    internal RegistryClient(string host, HttpClient http, RegistryOptions options, RunBudget? budget = null)
    {
        Host = host;
        _http = http;
        _options = options;
        Budget = budget ?? new RunBudget(options.Timeout, options.Time);
        ApiHost = host == Oci.Reference.DockerHub ? "registry-1.docker.io" : host;
        BaseUri = new Uri($"{(options.PlainHttp ? "http" : "https")}://{ApiHost}/");

        // --rate-limit is the ceiling; else the registry's published quota; else none until the registry throttles (AIMD).
        var ceiling = options.RateLimit
            ?? (options.Quotas.TryGetValue(host, out var quota)
                ? (options.Credentials.GetCredential(host) is null ? quota.Anonymous : quota.Authenticated)
                : null);
        _limiter = new RequestRateLimiter(ceiling, options.Time);
        Retry = new RetryPolicy(options.Retries, options.Log, options.RetryBaseDelay);
    }

    /// <summary>The run's time budget, shared by every client of one connector.</summary>
    public RunBudget Budget { get; }

    /// <summary>This registry's adaptive request rate.</summary>
    public RequestRateLimiter RateLimiter => _limiter;

    /// <summary>The registry as written in references (e.g. <c>docker.io</c>).</summary>
    public string Host { get; }

    /// <summary>The host the API is served from (e.g. <c>registry-1.docker.io</c> for Docker Hub).</summary>
    public string ApiHost { get; }

    public Uri BaseUri { get; }

    public RegistryOptions Options => _options;

    public RetryPolicy Retry { get; }

    public IMirrorLog Log => _options.Log;

    /// <summary>
    /// Runs <paramref name="once"/> again when it fails in a way <see cref="SendAsync"/> cannot retry: a body read cut short
    /// (reset, timeout) after the status was fine. Bounded like a request: the attempt cap, the request budget and the run
    /// budget; each wait gives back the caller's transfer slot. <paramref name="what"/> names the request in the warning.
    /// </summary>
    internal async Task<T> RetryBodyAsync<T>(string what, Func<CancellationToken, Task<T>> once, CancellationToken cancellationToken, IMirrorLog? log = null)
    {
        var localDeadline = _options.Time.GetUtcNow() + _options.RequestBudget;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await once(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not MirrorException && attempt <= _options.Retries && RetryPolicy.IsTransient(ex, cancellationToken)
                && BodyRetryDelay(attempt, ex) is var delay && Budget.Allows(delay, localDeadline))
            {
                (log ?? Log).Warn($"{what}: retry {attempt}/{_options.Retries} in {delay.TotalSeconds:0.0}s after: {RetryPolicy.Describe(ex)}");
                await TransferSlots.DelayAsync(delay, _options.Time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The wait before running a body read again: none the first time when the body was cut off (the status was fine,
    /// so the registry answered; a reset connection is usually one broken connection, as for a blob's resume), else the
    /// backoff of any failed attempt.
    /// </summary>
    private TimeSpan BodyRetryDelay(int attempt, Exception failure) =>
        attempt == 1 && failure is IOException ? TimeSpan.Zero : FailedAttemptDelay(attempt, null);

    private int _tokenRequests;

    /// <summary>The last bearer challenge a token was fetched for (its realm is the token endpoint; preflight reports it).</summary>
    public Challenge? LastBearerChallenge => _lastBearerChallenge;

    /// <summary>How many token requests this client made (tests use it to prove caching).</summary>
    public int TokenRequests => Volatile.Read(ref _tokenRequests);

    /// <summary>
    /// Sends a request with authentication and redirects handled. The caller disposes the response.
    /// <paramref name="content"/> is called once per attempt; pass <paramref name="replayableContent"/> false for
    /// streamed bodies, which are then never sent twice. <paramref name="followRedirects"/> false hands a redirect back
    /// to the caller (preflight records which host blobs are sent to).
    /// </summary>
    /// <remarks>
    /// Reads (GET, HEAD) are retried here, request by request: a transient status (408, 429, 5xx) or a broken connection
    /// is retried up to <see cref="RegistryOptions.Retries"/> times within <see cref="RegistryOptions.RequestBudget"/> and
    /// the run's budget, with exponential backoff and jitter, honouring <c>Retry-After</c>. The last response (or error) is
    /// handed to the caller. Writes are retried as whole operations by <see cref="RetryPolicy"/>.
    /// </remarks>
    public async Task<HttpResponseMessage> SendAsync(
        HttpMethod method,
        Uri uri,
        IReadOnlyList<string> scopes,
        CancellationToken cancellationToken,
        Action<HttpRequestMessage>? configure = null,
        Func<HttpContent>? content = null,
        bool replayableContent = true,
        bool followRedirects = true)
    {
        if (!RedirectableMethods.Contains(method) || content is not null)
        {
            return await SendOnceAsync(method, uri, scopes, cancellationToken, configure, content, replayableContent, followRedirects).ConfigureAwait(false);
        }

        var localDeadline = _options.Time.GetUtcNow() + _options.RequestBudget;
        for (var attempt = 1; ; attempt++)
        {
            HttpResponseMessage response;
            try
            {
                response = await SendOnceAsync(method, uri, scopes, cancellationToken, configure, null, true, followRedirects).ConfigureAwait(false);
            }
            catch (Exception ex) when (attempt <= _options.Retries && RetryPolicy.IsTransient(ex, cancellationToken))
            {
                var delay = FailedAttemptDelay(attempt, (ex as RegistryException)?.RetryAfter);
                if (!Budget.Allows(delay, localDeadline))
                {
                    throw;
                }

                Log.Warn($"{method} {RegistryException.StripQuery(uri)}: retry {attempt}/{_options.Retries} in {delay.TotalSeconds:0.0}s after: {RetryPolicy.Describe(ex)}");
                await TransferSlots.DelayAsync(delay, _options.Time, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (!RetryPolicy.IsTransientStatus(response.StatusCode))
            {
                NoteAnswered();
                return response;
            }

            if (ReadRetryWait(response, ref attempt, localDeadline, out var scheduled) is not { } wait)
            {
                return response;
            }

            Log.Warn($"{method} {RegistryException.StripQuery(uri)}: {(int)response.StatusCode} {response.StatusCode}, {RetryNote(scheduled, attempt)} in {wait.TotalSeconds:0.0}s");
            response.Dispose();
            await TransferSlots.DelayAsync(wait, _options.Time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// After a read answered with a transient status (<see cref="RetryPolicy.IsTransientStatus"/>): the wait before its
    /// next attempt, or null when the read is done (its attempt cap spent, or the wait would pass the request's or the
    /// run's budget). A 429 with <c>Retry-After</c> is the registry scheduling the request for later, not a failure: it
    /// spends no attempt (<paramref name="attempt"/> is stepped back). Counts one failure in the registry's streak.
    /// </summary>
    private TimeSpan? ReadRetryWait(HttpResponseMessage response, ref int attempt, DateTimeOffset localDeadline, out bool scheduled)
    {
        var retryAfter = RegistryException.RetryAfterOf(response);
        scheduled = RetryPolicy.IsScheduled(response.StatusCode, retryAfter);
        if (scheduled)
        {
            attempt--;
        }
        else if (attempt > _options.Retries)
        {
            Interlocked.Increment(ref _failureStreak);
            return null;
        }

        var wait = FailedAttemptDelay(attempt, retryAfter);
        return Budget.Allows(wait, localDeadline) ? wait : null;
    }

    /// <summary>
    /// Records one failed attempt (a transient status or a broken connection) and returns the wait before retry number
    /// <paramref name="attempt"/> of that request: <c>Retry-After</c> when given, else the exponential backoff at the
    /// step <see cref="RetryPolicy.BackoffStep"/> picks from this registry's failure streak.
    /// </summary>
    internal TimeSpan FailedAttemptDelay(int attempt, TimeSpan? retryAfter) =>
        RetryPolicy.Backoff(RetryPolicy.BackoffStep(attempt, Interlocked.Increment(ref _failureStreak)), _options.RetryBaseDelay, retryAfter);

    /// <summary>The registry answered a request well: its failure streak ends.</summary>
    internal void NoteAnswered()
    {
        if (Volatile.Read(ref _failureStreak) != 0)
        {
            Volatile.Write(ref _failureStreak, 0);
        }
    }

    /// <summary>Failures this registry gave since it last answered a request well (tests read it).</summary>
    internal int FailureStreak => Volatile.Read(ref _failureStreak);

    /// <summary>How many repositories' scopes one prepared token request asks for (the URL stays a few KiB).</summary>
    public const int ScopesPerPreparedToken = 32;

    /// <summary>
    /// Asks for one token covering many repositories (the token protocol takes repeated <c>scope</c> parameters, as
    /// Docker asks for source and target of a mount) before their requests are sent, instead of one 401 challenge and
    /// one token request per repository; a registry whose tokens are not per repository (ECR Public's scope is
    /// <c>aws</c>) would otherwise be asked for the same token once per image, at one request a second. One attempt per
    /// batch of <see cref="ScopesPerPreparedToken"/>, through the usual challenge (a <c>GET /v2/</c>): whatever goes wrong
    /// (no token service, a refusal, a token that turns out not to cover a repository) leaves each repository to get
    /// its own token as before, so the result is never worse than not asking.
    /// </summary>
    /// <param name="learnChallenge">Whether an unknown challenge is asked for with an anonymous <c>GET /v2/</c> (else nothing is prepared until a request met one).</param>
    /// <param name="once">One attempt per batch, no retry nor backoff (<see cref="PrefetchTokenAsync"/>).</param>
    /// <returns>Whether a token was cached.</returns>
    public async Task<bool> PrepareTokensAsync(IEnumerable<IReadOnlyList<string>> scopeSets, CancellationToken cancellationToken, bool learnChallenge = true, bool once = false)
    {
        ArgumentNullException.ThrowIfNull(scopeSets);
        var now = _options.Time.GetUtcNow();
        var wanted = scopeSets
            .Where(s => s.Count > 0)
            .DistinctBy(TokenKey, StringComparer.Ordinal)
            .Where(s => !(_tokens.TryGetValue(TokenKey(s), out var token) && token.ValidAt(now)))
            .ToList();
        if (wanted.Count < 2 || _useBasic)
        {
            return false;
        }

        var challenge = _lastBearerChallenge is { IsBearer: true, TokenEndpoint: not null } known ? known
            : learnChallenge ? await LearnBearerChallengeAsync(cancellationToken).ConfigureAwait(false)
            : null;
        if (challenge is null)
        {
            return false;
        }

        var cached = false;
        foreach (var batch in wanted.Chunk(ScopesPerPreparedToken))
        {
            var combined = batch.SelectMany(s => s).Distinct(StringComparer.Ordinal).ToList();
            CachedToken shared;
            try
            {
                shared = await FetchTokenAsync(challenge, combined, cancellationToken, once).ConfigureAwait(false);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                Log.Debug($"{Host}: no token for {batch.Length} repositories at once ({RetryPolicy.Describe(ex)}); each repository gets its own token");
                return cached;
            }

            foreach (var scopes in batch)
            {
                _tokens[TokenKey(scopes)] = shared;
            }

            cached = true;
            Log.Debug($"{Host}: one token for {batch.Length} repositories");
        }

        return cached;
    }

    /// <summary>
    /// The bearer challenge of an anonymous <c>GET /v2/</c> (null when the registry answers without one, or asks for
    /// Basic). A throttled or failing answer (429, 5xx) is asked again as any read is (the attempt cap,
    /// <c>Retry-After</c>, the budgets); a broken or refused connection gives up at once, so an unreachable registry is
    /// reported by the requests that need it, not waited for twice.
    /// </summary>
    private async Task<Challenge?> LearnBearerChallengeAsync(CancellationToken cancellationToken)
    {
        var localDeadline = _options.Time.GetUtcNow() + _options.RequestBudget;
        for (var attempt = 1; ; attempt++)
        {
            HttpResponseMessage response;
            try
            {
                await _limiter.WaitAsync(cancellationToken).ConfigureAwait(false);
                using var request = new HttpRequestMessage(HttpMethod.Get, ApiUri("v2/"));
                request.Headers.UserAgent.ParseAdd(_options.UserAgent);
                response = await SendRawAsync(request, cancellationToken).ConfigureAwait(false);
                ObserveRate(response);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                Log.Debug($"{Host}: GET /v2/ failed ({RetryPolicy.Describe(ex)}); each repository gets its own token");
                return null;
            }

            using (response)
            {
                if (response.StatusCode == HttpStatusCode.Unauthorized)
                {
                    NoteAnswered();
                    return ParseChallenge(response) is { IsBearer: true, TokenEndpoint: not null } challenge ? _lastBearerChallenge = challenge : null;
                }

                if (!RetryPolicy.IsTransientStatus(response.StatusCode) || ReadRetryWait(response, ref attempt, localDeadline, out _) is not { } wait)
                {
                    // 200: no token needed; anything else is for the requests themselves to report.
                    return null;
                }

                await TransferSlots.DelayAsync(wait, _options.Time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>"retry 2/4", or what a wait the registry scheduled says (it spends no attempt).</summary>
    private string RetryNote(bool scheduled, int attempt) =>
        scheduled ? "retry as told by Retry-After" : $"retry {attempt}/{_options.Retries}";

    private async Task<HttpResponseMessage> SendOnceAsync(
        HttpMethod method,
        Uri uri,
        IReadOnlyList<string> scopes,
        CancellationToken cancellationToken,
        Action<HttpRequestMessage>? configure,
        Func<HttpContent>? content,
        bool replayableContent,
        bool followRedirects)
    {
        var authAttempts = 0;
        var redirects = 0;
        var current = uri;
        var contentUsed = false;
        while (true)
        {
            var onRegistry = SameOrigin(current, BaseUri);
            if (onRegistry)
            {
                await _limiter.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            using var request = new HttpRequestMessage(method, current);
            request.Headers.UserAgent.ParseAdd(_options.UserAgent);
            configure?.Invoke(request);
            if (content is not null)
            {
                if (contentUsed && !replayableContent)
                {
                    throw new InvalidOperationException("a streamed request body cannot be sent twice");
                }

                request.Content = content();
                contentUsed = true;
            }

            if (onRegistry)
            {
                AttachAuthorization(request, scopes);
            }

            var response = await SendRawAsync(request, cancellationToken).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (onRegistry)
            {
                ObserveRate(response);
            }

            if (followRedirects && status is 301 or 302 or 303 or 307 or 308 && RedirectableMethods.Contains(method) && response.Headers.Location is { } location)
            {
                response.Dispose();
                if (++redirects > 10)
                {
                    throw new OperationException($"{method} {RegistryException.StripQuery(uri)}: more than 10 redirects");
                }

                current = location.IsAbsoluteUri ? location : new Uri(current, location);
                continue;
            }

            // A token may be refused at any moment (expired, revoked, a denial in a row): keep refreshing, a bounded number of times.
            if (!onRegistry || authAttempts >= MaxAuthRounds)
            {
                return response;
            }

            var expiredToken = await IsExpiredTokenResponseAsync(response, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.Unauthorized && !expiredToken)
            {
                return response;
            }

            var challenge = ParseChallenge(response) ?? (expiredToken ? _lastBearerChallenge : null);
            if (challenge is null)
            {
                return response;
            }

            if (authAttempts > 0 && challenge.Parameters.GetValueOrDefault("error") == "insufficient_scope" && request.Headers.Authorization is { Scheme: "Bearer" })
            {
                // A fresh token still lacks the scope (Docker Hub's answer for a repository that does not exist or is private).
                return response;
            }

            if (challenge.IsBasic && _useBasic && request.Headers.Authorization is { Scheme: "Basic" })
            {
                // The credentials themselves were refused: asking again changes nothing. Name who was presented.
                var refused = await RegistryException.FromResponseAsync(response, null, cancellationToken).ConfigureAwait(false);
                response.Dispose();
                var presented = _options.Credentials.GetCredential(Host);
                throw new OperationException(
                    $"registry {Host} rejected the credentials for {presented?.Who ?? "an unknown user"} ({(int)refused.StatusCode}){presented?.Origin}: check the username and password", refused)
                {
                    Remedy = Remedy.Credentials,
                    Subject = Host,
                };
            }

            if (content is not null && !replayableContent)
            {
                // The body stream is gone; drop the stale token and let the operation-level retry start over
                // (RetryPolicy.IsTransient treats an OperationException caused by a TimeoutException as transient).
                InvalidateTokens(scopes);
                var error = await RegistryException.FromResponseAsync(response, "authorization expired during upload", cancellationToken).ConfigureAwait(false);
                response.Dispose();
                throw new OperationException(error.Message, new TimeoutException("token expired", error));
            }

            response.Dispose();
            authAttempts++;
            if (challenge.IsBearer && challenge.TokenEndpoint is not null)
            {
                _lastBearerChallenge = challenge;
                var sent = request.Headers.Authorization is { Scheme: "Bearer" } bearer ? bearer.Parameter : null;
                await RefreshTokenAsync(challenge, scopes, sent, cancellationToken).ConfigureAwait(false);
            }
            else if (challenge.IsBasic || challenge.IsBearer)
            {
                // A Bearer challenge whose realm is no http(s) URL (Nexus: null://host/v2/token) falls back to Basic.
                if (_options.Credentials.GetCredential(Host) is null)
                {
                    throw new OperationException($"registry {Host} requires authentication and no credentials were found; give a username and password for it")
                    {
                        Remedy = Remedy.Credentials,
                        Subject = Host,
                    };
                }

                _useBasic = true;
            }
            else
            {
                throw new OperationException($"registry {Host} asks for unsupported authentication scheme '{challenge.Scheme}'");
            }
        }
    }

    /// <summary>How many times one request may fetch a new token after a refusal (at least twice, else one per retry).</summary>
    private int MaxAuthRounds => Math.Max(2, _options.Retries + 1);

    /// <summary>Feeds the adaptive rate: a 429 that names no wait halves the rate, any other answer lets it recover.</summary>
    private void ObserveRate(HttpResponseMessage response)
    {
        if (response.StatusCode == HttpStatusCode.TooManyRequests)
        {
            if (response.Headers.RetryAfter is null && _limiter.OnThrottled() is { } rate)
            {
                Log.Debug($"{Host}: 429 without Retry-After, request rate halved to {rate:0.##}/s");
            }
        }
        else
        {
            _limiter.OnAccepted();
        }
    }

    /// <summary>
    /// Opens up to <paramref name="connections"/> keep-alive connections to the registry ahead of the requests that will
    /// use them, each with one <c>HEAD /v2/</c> sent at once (no authentication, no retry: the answer, whatever it is, is
    /// dropped; a failure only means that connection is opened later, by the request that needs it). A caller with local
    /// work to do first (a bundle to verify) overlaps the connections' set-up (TCP, TLS) with it, so the first parallel
    /// round of requests costs one round trip, not two or three. Never throws.
    /// </summary>
    public Task WarmAsync(int connections, CancellationToken cancellationToken) =>
        Task.WhenAll(Enumerable.Range(0, Math.Max(0, connections)).Select(async _ =>
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Head, ApiUri("v2/"));
                request.Headers.UserAgent.ParseAdd(_options.UserAgent);
                using var response = await SendRawAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException or MirrorException or TimeoutException or OperationCanceledException or IOException)
            {
            }
        }));

    /// <summary>Throws a <see cref="RegistryException"/> for a non-success response (and disposes it).</summary>
    public static async Task EnsureSuccessAsync(HttpResponseMessage response, string? context, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var error = await RegistryException.FromResponseAsync(response, context, cancellationToken).ConfigureAwait(false);
        response.Dispose();
        throw error;
    }

    public Uri ApiUri(string pathAndQuery) => new(BaseUri, pathAndQuery);

    private async Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ResponseTimeout);
        if (_transportFailure is { } known)
        {
            throw known;
        }

        try
        {
            var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.ProxyAuthenticationRequired)
            {
                // Only a proxy answers 407 (a plain-HTTP request in absolute form); it is never the registry's answer.
                response.Dispose();
                throw ProxySettings.Refused(ProxySettings.Create(_options.Proxy).GetProxy(request.RequestUri!), request.RequestUri!, HttpStatusCode.ProxyAuthenticationRequired, null);
            }

            if (_options.PlainHttp && await TransportDiagnosis.PlainHttpToTlsAsync(response, request.RequestUri!.Authority, cancellationToken).ConfigureAwait(false) is { } tlsPort)
            {
                response.Dispose();
                throw _transportFailure = tlsPort;
            }

            return response;
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"{request.Method} {RegistryException.StripQuery(request.RequestUri!)}: no response within {_options.ResponseTimeout.TotalSeconds:0}s", ex);
        }
        catch (HttpRequestException ex) when (FindInner<AuthenticationException>(ex) is { } tls)
        {
            var host = request.RequestUri!.Authority;
            if (!_options.PlainHttp && string.IsNullOrEmpty(_options.Proxy)
                && await TransportDiagnosis.AnswersPlainHttpAsync(request.RequestUri.Host, request.RequestUri.Port, cancellationToken).ConfigureAwait(false))
            {
                throw _transportFailure = TransportDiagnosis.TlsToPlainHttp(host, ex);
            }

            throw new OperationException($"TLS connection to {host} failed: {tls.Message} The certificate is not trusted: trust the CA that issued it.", ex)
            {
                Remedy = Remedy.TrustCaFile,
                Subject = host,
            };
        }
        catch (HttpRequestException ex) when (ex.HttpRequestError == HttpRequestError.ProxyTunnelError)
        {
            throw ProxySettings.Refused(ProxySettings.Create(_options.Proxy).GetProxy(request.RequestUri!), request.RequestUri!, ex.StatusCode, ex);
        }
        catch (HttpRequestException ex) when (ex.HttpRequestError == HttpRequestError.SecureConnectionError)
        {
            throw new OperationException($"TLS connection to {request.RequestUri!.Authority} failed: {ex.Message}", ex)
            {
                Remedy = Remedy.PlainHttp,
                Subject = request.RequestUri!.Authority,
            };
        }
    }

    private void AttachAuthorization(HttpRequestMessage request, IReadOnlyList<string> scopes)
    {
        if (_tokens.TryGetValue(TokenKey(scopes), out var token) && token.ValidAt(_options.Time.GetUtcNow()))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token.Value);
        }
        else if (_useBasic && _options.Credentials.GetCredential(Host) is { IdentityToken: null } credential)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", credential.BasicHeaderValue);
        }
    }

    /// <summary>
    /// <see cref="PrepareTokensAsync"/> for a fetch ahead of need on a latency-bound path (the import pre-check): only
    /// when the bearer challenge is known already (no <c>GET /v2/</c> of its own), one attempt per batch, no retry nor
    /// backoff. A token granted for fewer scopes than asked is refused per repository (<c>insufficient_scope</c>), which
    /// then fetches its own token as it would have. Returns whether a token was cached.
    /// </summary>
    public Task<bool> PrefetchTokenAsync(IReadOnlyList<IReadOnlyList<string>> scopeSets, CancellationToken cancellationToken) =>
        PrepareTokensAsync(scopeSets, cancellationToken, learnChallenge: false, once: true);

    private void InvalidateTokens(IReadOnlyList<string> scopes) => _tokens.TryRemove(TokenKey(scopes), out _);

    /// <summary>
    /// Fetches a new token unless another request already replaced the one this request was refused with
    /// (<paramref name="refusedToken"/>; null when it carried none), so parallel requests share one token fetch.
    /// </summary>
    private async Task RefreshTokenAsync(Challenge challenge, IReadOnlyList<string> scopes, string? refusedToken, CancellationToken cancellationToken)
    {
        var key = TokenKey(scopes);
        var tokenLock = _tokenLocks.GetOrAdd(key, _ => new SemaphoreSlim(1, 1));
        await TransferSlots.WaitAsync(tokenLock, cancellationToken).ConfigureAwait(false);
        try
        {
            if (_tokens.TryGetValue(key, out var existing) && existing.Value != refusedToken && existing.ValidAt(_options.Time.GetUtcNow()))
            {
                return;
            }

            _tokens[key] = await FetchTokenAsync(challenge, scopes, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            tokenLock.Release();
        }
    }

    /// <param name="once">One attempt, no retry and no backoff (nor a failure streak counted): for a fetch ahead of need, whose failure only means each request fetches its own.</param>
    private async Task<CachedToken> FetchTokenAsync(Challenge challenge, IReadOnlyList<string> scopes, CancellationToken cancellationToken, bool once = false)
    {
        if (string.IsNullOrEmpty(challenge.Realm) || !Uri.TryCreate(challenge.Realm, UriKind.Absolute, out var realm))
        {
            throw new OperationException($"registry {Host} sent a bearer challenge without a usable realm");
        }

        var allScopes = new List<string>();
        if (!string.IsNullOrEmpty(challenge.Scope))
        {
            allScopes.AddRange(challenge.Scope.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        }

        allScopes.AddRange(scopes.Where(s => !allScopes.Contains(s)));
        var credential = _options.Credentials.GetCredential(Host);
        Interlocked.Increment(ref _tokenRequests);
        HttpRequestMessage NewRequest()
        {
            if (credential?.IdentityToken is { } refreshToken)
            {
                var form = new List<KeyValuePair<string, string>>
                {
                    new("grant_type", "refresh_token"),
                    new("refresh_token", refreshToken),
                    new("client_id", _options.UserAgent),
                };
                if (challenge.Service is { } svc)
                {
                    form.Add(new("service", svc));
                }

                form.Add(new("scope", string.Join(' ', allScopes)));
                return new HttpRequestMessage(HttpMethod.Post, realm) { Content = new FormUrlEncodedContent(form) };
            }

            var query = new List<string>();
            if (challenge.Service is { } service)
            {
                query.Add("service=" + Uri.EscapeDataString(service));
            }

            query.AddRange(allScopes.Select(s => "scope=" + Uri.EscapeDataString(s)));
            var builder = new UriBuilder(realm);
            var existing = builder.Query.TrimStart('?');
            builder.Query = string.Join('&', new[] { existing }.Where(q => q.Length > 0).Concat(query));
            var get = new HttpRequestMessage(HttpMethod.Get, builder.Uri);
            if (credential is not null)
            {
                get.Headers.Authorization = new AuthenticationHeaderValue("Basic", credential.BasicHeaderValue);
            }

            return get;
        }

        var localDeadline = _options.Time.GetUtcNow() + _options.RequestBudget;
        for (var attempt = 1; ; attempt++)
        {
            using var request = NewRequest();
            request.Headers.UserAgent.ParseAdd(_options.UserAgent);
            HttpResponseMessage response;
            try
            {
                response = await SendRawAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (!once && attempt <= _options.Retries && RetryPolicy.IsTransient(ex, cancellationToken)
                && FailedAttemptDelay(attempt, null) is var delay && Budget.Allows(delay, localDeadline))
            {
                Log.Warn($"token request for {Host}: retry {attempt}/{_options.Retries} in {delay.TotalSeconds:0.0}s after: {RetryPolicy.Describe(ex)}");
                await TransferSlots.DelayAsync(delay, _options.Time, cancellationToken).ConfigureAwait(false);
                continue;
            }

            using (response)
            {
                if (!response.IsSuccessStatusCode)
                {
                    // Token services fail like any other endpoint (throttling, 5xx) and, behind load balancers, refuse a
                    // request now and then that the next one passes (ECR): a refusal is final only once retries are spent.
                    var error = await RegistryException.FromResponseAsync(response, $"token request for {Host}", cancellationToken).ConfigureAwait(false);
                    if (once)
                    {
                        throw error;
                    }

                    var retriable = RetryPolicy.IsTransientStatus(response.StatusCode)
                        || response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.BadRequest;
                    var scheduled = RetryPolicy.IsScheduled(response.StatusCode, error.RetryAfter);
                    if (scheduled)
                    {
                        attempt--;
                    }

                    var wait = FailedAttemptDelay(attempt, error.RetryAfter);
                    if (retriable && attempt <= _options.Retries && Budget.Allows(wait, localDeadline))
                    {
                        Log.Warn($"token request for {Host}: {(int)response.StatusCode} {response.StatusCode}, {RetryNote(scheduled, attempt)} in {wait.TotalSeconds:0.0}s");
                        await TransferSlots.DelayAsync(wait, _options.Time, cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                    {
                        throw credential is null
                            ? new OperationException($"registry {Host} refused an anonymous token ({(int)response.StatusCode}); it needs credentials", error) { Remedy = Remedy.Credentials, Subject = Host }
                            : new OperationException($"registry {Host} rejected the credentials for {credential.Who} ({(int)response.StatusCode}){credential.Origin}: check the username and password", error) { Remedy = Remedy.Credentials, Subject = Host };
                    }

                    throw error;
                }

                NoteAnswered();
                return await ReadTokenAsync(response, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task<CachedToken> ReadTokenAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            var value = root.TryGetProperty("token", out var t) && t.GetString() is { Length: > 0 } tv ? tv
                : root.TryGetProperty("access_token", out var a) && a.GetString() is { Length: > 0 } av ? av
                : throw new OperationException($"token service of {Host} answered without a token");
            var lifetime = root.TryGetProperty("expires_in", out var e) && e.TryGetInt32(out var seconds) && seconds > 0 ? seconds : 60;
            return new CachedToken(value, _options.Time.GetUtcNow().AddSeconds(lifetime));
        }
        catch (JsonException ex)
        {
            throw new OperationException($"token service of {Host} answered with invalid JSON", ex);
        }
    }

    /// <summary>ECR answers an expired bearer token with 400 DENIED "Your Authorization Token is invalid." instead of 401.</summary>
    private static async Task<bool> IsExpiredTokenResponseAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        // ECR answers a repository's first request (no token yet) this way too, not only a request with a stale token.
        if (response.StatusCode != HttpStatusCode.BadRequest || response.RequestMessage?.Headers.Authorization is { Scheme: not "Bearer" })
        {
            return false;
        }

        await response.Content.LoadIntoBufferAsync(64 * 1024, cancellationToken).ConfigureAwait(false);
        var errors = await RegistryException.ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false);
        return errors.Any(e => e.Code == "DENIED" && e.Message.Contains("Authorization Token", StringComparison.OrdinalIgnoreCase));
    }

    private static Challenge? ParseChallenge(HttpResponseMessage response)
    {
        foreach (var header in response.Headers.WwwAuthenticate)
        {
            if (Challenge.TryParse(header.ToString(), out var challenge) && (challenge.IsBearer || challenge.IsBasic))
            {
                return challenge;
            }
        }

        return null;
    }

    private string TokenKey(IReadOnlyList<string> scopes) => string.Join(' ', scopes.Order(StringComparer.Ordinal));

    private static bool SameOrigin(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
        && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase)
        && a.Port == b.Port;

    private static T? FindInner<T>(Exception ex)
        where T : Exception
    {
        for (var e = ex.InnerException; e is not null; e = e.InnerException)
        {
            if (e is T match)
            {
                return match;
            }
        }

        return null;
    }

    private sealed record CachedToken(string Value, DateTimeOffset Expires)
    {
        public bool ValidAt(DateTimeOffset now) => now < Expires - TimeSpan.FromSeconds(5);
    }
}

/// <summary>
/// Creates and shares one <see cref="RegistryClient"/> per registry host (so tokens and rate limits are
/// per registry) over one HTTP handler with the configured TLS policy.
/// </summary>
public sealed class RegistryConnector : IDisposable
{
    private readonly ConcurrentDictionary<string, RegistryClient> _clients = new(StringComparer.OrdinalIgnoreCase);
    private readonly HttpClient _http;
    private readonly X509Certificate2Collection? _extraRoots;

    public RegistryConnector(RegistryOptions options)
    {
        Options = options;
        Budget = new RunBudget(options.Timeout, options.Time);
        if (options.CaFile is { } caFile)
        {
            _extraRoots = LoadCaFile(caFile);
        }

        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(30),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            MaxConnectionsPerServer = 64,
            UseCookies = false,
        };

        // Our own proxy selection: .NET's default would skip loopback hosts and ignores lower-case variables on some platforms.
        ProxySettings = ProxySettings.Create(options.Proxy);
        handler.UseProxy = ProxySettings.Enabled;
        handler.Proxy = ProxySettings.Enabled ? ProxySettings : null;
        if (ProxySettings.Enabled)
        {
            options.Log.Info($"using HTTP proxy {ProxySettings}");
        }

        handler.SslOptions.RemoteCertificateValidationCallback = ValidateCertificate;
        _http = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
    }

    public RegistryOptions Options { get; }

    /// <summary>The HTTP proxy every request of this connector goes through (credentials never shown).</summary>
    public ProxySettings ProxySettings { get; }

    /// <summary>The run's time budget (<see cref="RegistryOptions.Timeout"/>), started when this connector was created.</summary>
    public RunBudget Budget { get; }

    public RegistryClient Client(string host) => _clients.GetOrAdd(host, h => new RegistryClient(h, _http, Options, Budget));

    public RemoteRepository Repository(Oci.Reference reference) => new(Client(reference.Registry), reference.Repository);

    /// <summary>
    /// The repository a source image is fetched from: on its registry's pull-through mirror when
    /// <see cref="RegistryOptions.Mirrors"/> names one, else <see cref="Repository"/>. Only for pulling sources.
    /// </summary>
    public RemoteRepository SourceRepository(Oci.Reference reference) =>
        Options.Mirrors.For(reference.Registry) is { } mirror ? Repository(mirror.Locate(reference)) : Repository(reference);

    /// <summary>
    /// Prepares one token per registry for the reads of <paramref name="repositories"/> (<see cref="RegistryClient.PrepareTokensAsync"/>),
    /// registries in parallel.
    /// </summary>
    public Task PreparePullTokensAsync(IEnumerable<RemoteRepository> repositories, CancellationToken cancellationToken) =>
        Task.WhenAll(repositories
            .GroupBy(r => r.Client)
            .Select(g => g.Key.PrepareTokensAsync(g.Select(r => r.PullScope), cancellationToken)));

    public void Dispose() => _http.Dispose();

    private static X509Certificate2Collection LoadCaFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new InputException($"CA file '{path}' does not exist") { Setting = Setting.CaFile, Subject = path };
        }

        var collection = new X509Certificate2Collection();
        try
        {
            collection.ImportFromPemFile(path);
        }
        catch (System.Security.Cryptography.CryptographicException ex)
        {
            throw new InputException($"CA file '{path}' is not a PEM certificate file: {ex.Message}", ex) { Setting = Setting.CaFile, Subject = path };
        }

        if (collection.Count == 0)
        {
            throw new InputException($"CA file '{path}' contains no PEM certificate") { Setting = Setting.CaFile, Subject = path };
        }

        return collection;
    }

    /// <summary>This connector's TLS trust decision (the CA file, or none with insecure); preflight's handshake uses it too.</summary>
    internal bool ValidateCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (Options.Insecure || errors == SslPolicyErrors.None)
        {
            return true;
        }

        if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is null || _extraRoots is null)
        {
            return false;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_extraRoots);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null)
        {
            foreach (var element in chain.ChainElements)
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return custom.Build(leaf);
    }
}
