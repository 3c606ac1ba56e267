using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace OpenLm.Mirror.TestKit;

/// <summary>
/// Live fault settings of a fault-injecting proxy (read per request): the integration tests' <c>FaultProxy</c> and the
/// <c>fault-proxy</c> verb of the bench share them and <see cref="FaultPlan"/>. Every random draw is a hash of the seed,
/// the request (method, path and query) and how often that exact request was seen before, so a run fails the same
/// requests the same way whatever the interleaving of parallel requests.
/// </summary>
public sealed class FaultProxyOptions
{
    /// <summary>Status answered instead of forwarding (e.g. 429 or 503); null for none.</summary>
    public int? FailStatus { get; set; }

    /// <summary>Probability (0..1) of answering <see cref="FailStatus"/>.</summary>
    public double FailProbability { get; set; }

    /// <summary><c>Retry-After</c> seconds sent with <see cref="FailStatus"/>; null sends none.</summary>
    public int? RetryAfterSeconds { get; set; }

    /// <summary>
    /// Every Nth request of each kind behaves as if the token had just expired; 0 disables. Kinds are counted apart so
    /// each is hit whatever the interleaving: a token request gets 401; a request without a token (a repository's first)
    /// gets ECR's <c>400 DENIED "Your Authorization Token is invalid."</c> instead of its challenge; a request with a
    /// bearer token gets that 400 DENIED or a 401 challenge (alternately).
    /// </summary>
    public int ExpireTokenEveryNth { get; set; }

    /// <summary>Probability (0..1) of cutting a successful GET body in half and resetting the connection.</summary>
    public double ResetProbability { get; set; }

    /// <summary>Added before every request is handled.</summary>
    public TimeSpan Latency { get; set; }

    public int Seed { get; set; } = 20261202;

    /// <summary>
    /// Repositories (e.g. <c>fault/app03</c>) whose blob requests are always answered <see cref="PermanentFailStatus"/>:
    /// a registry that cannot serve some images at all, however often it is asked. Change only between runs.
    /// </summary>
    public ISet<string> FailBlobsOfRepositories { get; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>The status of <see cref="FailBlobsOfRepositories"/>' answers (503 UNAVAILABLE by default).</summary>
    public int PermanentFailStatus { get; set; } = 503;

    public void Clear()
    {
        FailBlobsOfRepositories.Clear();
        PermanentFailStatus = 503;
        FailStatus = null;
        FailProbability = 0;
        RetryAfterSeconds = null;
        ExpireTokenEveryNth = 0;
        ResetProbability = 0;
        Latency = TimeSpan.Zero;
    }
}

/// <summary>What a fault proxy does with one request before (or instead of) forwarding it.</summary>
public abstract record FaultDecision
{
    /// <summary>Forward the request; <paramref name="StripAuthorization"/> drops its token (the upstream then challenges, as for an expired one).</summary>
    public sealed record Forward(bool StripAuthorization) : FaultDecision;

    /// <summary>Answer with a registry error (<c>{"errors":[{"code","message"}]}</c>) instead of forwarding.</summary>
    public sealed record Refuse(int Status, string Code, string Message, int? RetryAfterSeconds) : FaultDecision
    {
        public string Body => "{\"errors\":[{\"code\":\"" + JsonEncodedText.Encode(Code) + "\",\"message\":\"" + JsonEncodedText.Encode(Message) + "\"}]}";

        public string? RetryAfter => RetryAfterSeconds?.ToString(CultureInfo.InvariantCulture);
    }
}

/// <summary>
/// The decisions of a fault-injecting proxy, apart from any HTTP server: which request fails how, and counters of what
/// was injected. Thread-safe.
/// </summary>
public sealed class FaultPlan(FaultProxyOptions options)
{
    private readonly Dictionary<string, int> _seen = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _streaks = new(StringComparer.Ordinal);
    private int _longestStreak;
    private readonly Lock _gate = new();
    private int _requests;
    private int _failed;
    private int _expired;
    private int _resets;
    private int _permanent;
    private int _expiredTokenRequests;
    private int _expiredWithoutToken;
    private readonly int[] _perKind = new int[3];

    public FaultProxyOptions Options { get; } = options;

    public int Requests => Volatile.Read(ref _requests);

    public int FailedResponses => Volatile.Read(ref _failed);

    public int ExpiredTokens => Volatile.Read(ref _expired);

    /// <summary>Of <see cref="ExpiredTokens"/>, the token requests refused.</summary>
    public int ExpiredTokenRequests => Volatile.Read(ref _expiredTokenRequests);

    /// <summary>Of <see cref="ExpiredTokens"/>, requests that carried no token yet (a repository's first request).</summary>
    public int ExpiredWithoutToken => Volatile.Read(ref _expiredWithoutToken);

    public int Resets => Volatile.Read(ref _resets);

    /// <summary>Requests to the registry that carried no token (a repository's first, or a challenge probe).</summary>
    public int RequestsWithoutToken
    {
        get
        {
            lock (_gate)
            {
                return _perKind[2];
            }
        }
    }

    /// <summary>
    /// The most times one request (method, path and query) was refused with <see cref="FaultProxyOptions.FailStatus"/> in
    /// a row. A client that honours <c>Retry-After: s</c> cannot finish sooner than this times s: the benchmark's floor.
    /// </summary>
    public int LongestRefusalStreak => Volatile.Read(ref _longestStreak);

    /// <summary>Answers to <see cref="FaultProxyOptions.FailBlobsOfRepositories"/>' blob requests.</summary>
    public int PermanentFailures => Volatile.Read(ref _permanent);

    /// <summary>Forgets the per-request history and counters, so the next run draws the same faults again.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _seen.Clear();
            _streaks.Clear();
            _longestStreak = 0;
            _requests = _failed = _expired = _resets = _permanent = _expiredTokenRequests = _expiredWithoutToken = 0;
            Array.Clear(_perKind);
        }
    }

    /// <summary>Registers one request; the returned ticket decides its fault and, later, whether its body is cut.</summary>
    public FaultTicket Begin(string method, string path, string pathAndQuery)
    {
        var key = method + " " + pathAndQuery;
        lock (_gate)
        {
            var number = ++_requests;
            var occurrence = _seen[key] = _seen.GetValueOrDefault(key) + 1;
            return new FaultTicket(this, method, path, key, number, occurrence);
        }
    }

    internal FaultDecision Decide(FaultTicket ticket, bool isTokenRequest, bool hasBearer)
    {
        var options = Options;
        var stripAuthorization = false;
        var every = options.ExpireTokenEveryNth;
        int number;
        lock (_gate)
        {
            number = ++_perKind[isTokenRequest ? 0 : hasBearer ? 1 : 2];
        }

        if (every > 0 && number % every == 0)
        {
            Interlocked.Increment(ref _expired);
            if (isTokenRequest)
            {
                Interlocked.Increment(ref _expiredTokenRequests);
                return new FaultDecision.Refuse(401, "DENIED", "Your authorization token has expired", null);
            }

            if (!hasBearer)
            {
                Interlocked.Increment(ref _expiredWithoutToken);
                return new FaultDecision.Refuse(400, "DENIED", "Your Authorization Token is invalid.", null);
            }

            if (number / every % 2 == 0)
            {
                return new FaultDecision.Refuse(400, "DENIED", "Your Authorization Token is invalid.", null);
            }

            // The upstream answers the request without its token with a 401 challenge, as it would an expired token.
            stripAuthorization = true;
        }

        var permanent = options.FailBlobsOfRepositories.Count > 0 && IsBlobOf(options.FailBlobsOfRepositories, ticket.Path);
        if (permanent || (options.FailStatus is not null && Draw(options.Seed, "fail", ticket.Key, ticket.Occurrence) < options.FailProbability))
        {
            if (!permanent)
            {
                lock (_gate)
                {
                    var streak = _streaks[ticket.Key] = _streaks.GetValueOrDefault(ticket.Key) + 1;
                    _longestStreak = Math.Max(_longestStreak, streak);
                }
            }

            var status = permanent ? options.PermanentFailStatus : options.FailStatus!.Value;
            _ = permanent ? Interlocked.Increment(ref _permanent) : Interlocked.Increment(ref _failed);
            var code = status switch
            {
                429 => "TOOMANYREQUESTS",
                403 => "DENIED",
                404 => "BLOB_UNKNOWN",
                _ => "UNAVAILABLE",
            };
            return new FaultDecision.Refuse(status, code, status == 429 ? "Rate exceeded" : "service unavailable", permanent ? null : options.RetryAfterSeconds);
        }

        if (options.FailStatus is not null)
        {
            lock (_gate)
            {
                _streaks.Remove(ticket.Key);
            }
        }

        return new FaultDecision.Forward(stripAuthorization);
    }

    internal bool ShouldReset(FaultTicket ticket)
    {
        if (Draw(Options.Seed, "reset", ticket.Key, ticket.Occurrence) >= Options.ResetProbability)
        {
            return false;
        }

        Interlocked.Increment(ref _resets);
        return true;
    }

    /// <summary>Whether <paramref name="path"/> is <c>/v2/REPO/blobs/…</c> for one of <paramref name="repositories"/>.</summary>
    private static bool IsBlobOf(ISet<string> repositories, string path)
    {
        var at = path.IndexOf("/blobs/", StringComparison.Ordinal);
        return at > 4 && path.StartsWith("/v2/", StringComparison.Ordinal) && repositories.Contains(path[4..at]);
    }

    /// <summary>A uniform draw in [0, 1) fixed by the seed, the kind of fault, the request and its occurrence.</summary>
    private static double Draw(int seed, string kind, string key, int occurrence)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{seed}|{kind}|{key}|{occurrence}"));
        return (BitConverter.ToUInt64(hash, 0) >> 11) * (1.0 / (1UL << 53));
    }
}

/// <summary>One request's place in a <see cref="FaultPlan"/>.</summary>
public sealed class FaultTicket
{
    private readonly FaultPlan _plan;

    internal FaultTicket(FaultPlan plan, string method, string path, string key, int number, int occurrence)
    {
        _plan = plan;
        Method = method;
        Path = path;
        Key = key;
        Number = number;
        Occurrence = occurrence;
    }

    public string Method { get; }

    public string Path { get; }

    internal string Key { get; }

    internal int Number { get; }

    internal int Occurrence { get; }

    /// <summary>The fault for this request (token requests are those to <c>/token</c>).</summary>
    public FaultDecision Decide(bool hasBearer) => _plan.Decide(this, Path.StartsWith("/token", StringComparison.Ordinal), hasBearer);

    /// <summary>Whether the successful GET body of this request is cut in half and the connection reset.</summary>
    public bool ShouldResetBody(long contentLength) =>
        string.Equals(Method, "GET", StringComparison.OrdinalIgnoreCase) && contentLength > 1 && _plan.ShouldReset(this);
}
