using System.Net;
using System.Net.Sockets;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using Polly;
using Polly.Retry;

namespace OpenLm.Mirror.Registry;

/// <summary>
/// Retries whole operations (e.g. open source → start upload → mount → stream → commit) on transient
/// failures, with exponential backoff and jitter, honouring <c>Retry-After</c> up to a bound.
/// Whether a failure is transient is decided in <see cref="IsTransient"/> and nowhere else.
/// </summary>
public sealed class RetryPolicy
{
    public static readonly TimeSpan MaxRetryAfter = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The ceiling of the first backoff (<see cref="RegistryOptions.RetryBaseDelay"/>). Short, as in the AWS "full jitter"
    /// scheme: a 503 or a 429 without <c>Retry-After</c> from one overloaded replica is usually answered by the next
    /// attempt, and the exponential growth (with the rate limiter halving on throttling) covers real overload.
    /// </summary>
    public static readonly TimeSpan DefaultBaseDelay = TimeSpan.FromMilliseconds(200);
    private readonly ResiliencePipeline _pipeline;

    public RetryPolicy(int retries, IMirrorLog log, TimeSpan? baseDelay = null)
    {
        if (retries < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(retries), "retries cannot be negative");
        }

        Retries = retries;
        var builder = new ResiliencePipelineBuilder();
        if (retries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = retries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = baseDelay ?? DefaultBaseDelay,
                MaxDelay = MaxBackoff,
                ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Exception is { } ex && IsTransient(ex, args.Context.CancellationToken)),
                // The registry's Retry-After (capped), else the backoff of a single request's retries
                // (RegistryClient.SendAsync): full jitter from a short first backoff.
                DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(
                    args.Outcome.Exception is RegistryException { RetryAfter: { } after }
                        ? (after > MaxRetryAfter ? MaxRetryAfter : after)
                        : Backoff(args.AttemptNumber + 1, baseDelay ?? DefaultBaseDelay, null)),
                OnRetry = args =>
                {
                    log.Warn($"retry {args.AttemptNumber + 1}/{retries} in {args.RetryDelay.TotalSeconds:0.0}s after: {Describe(args.Outcome.Exception)}");
                    return ValueTask.CompletedTask;
                },
            });
        }

        _pipeline = builder.Build();
    }

    public int Retries { get; }

    public static RetryPolicy None { get; } = new(0, NullMirrorLog.Instance);

    public ValueTask<T> ExecuteAsync<T>(Func<CancellationToken, ValueTask<T>> operation, CancellationToken cancellationToken) =>
        _pipeline.ExecuteAsync(operation, cancellationToken);

    public ValueTask ExecuteAsync(Func<CancellationToken, ValueTask> operation, CancellationToken cancellationToken) =>
        _pipeline.ExecuteAsync(operation, cancellationToken);

    /// <summary>The one place that decides whether a failure may go away on a retry.</summary>
    public static bool IsTransient(Exception exception, CancellationToken cancellationToken)
    {
        switch (exception)
        {
            case RegistryException registry:
                return IsTransientStatus(registry.StatusCode);
            case OperationException { InnerException: TimeoutException }:
                // RegistryClient: the token expired while a streamed body was being sent; a new attempt re-authenticates.
                return true;
            case MirrorException:
                return false;
            case OperationCanceledException:
                // A timeout, not the user pressing Ctrl+C.
                return !cancellationToken.IsCancellationRequested;
            case HttpRequestException http when TransportDiagnosis.IsConnectionRefused(http):
                // Nothing listens at that port: fail at once with one message instead of a stream of retry warnings.
                return false;
            case HttpRequestException http:
                return http.StatusCode is null or HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests
                    || (int)http.StatusCode >= 500;
            case IOException or SocketException or TimeoutException:
                return true;
            default:
                return exception.InnerException is { } inner && IsTransient(inner, cancellationToken);
        }
    }

    /// <summary>Whether a response status may go away on a retry (the status side of <see cref="IsTransient"/>).</summary>
    public static bool IsTransientStatus(HttpStatusCode status) =>
        status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests
        || ((int)status >= 500 && status is not HttpStatusCode.NotImplemented and not HttpStatusCode.HttpVersionNotSupported);

    /// <summary>
    /// Whether a response schedules its request for later rather than failing it: a 429 with <c>Retry-After</c> (RFC 6585
    /// §4, RFC 9110 §10.2.3: the server says when to come back). Waiting as told does not spend
    /// the attempt cap (<see cref="RegistryOptions.Retries"/>), only the request and run budgets. A 429 without
    /// <c>Retry-After</c> and a 5xx (with or without it) are failures and count.
    /// </summary>
    public static bool IsScheduled(HttpStatusCode status, TimeSpan? retryAfter) =>
        status == HttpStatusCode.TooManyRequests && retryAfter is not null;

    /// <summary>
    /// The wait before retry number <paramref name="attempt"/> (1-based): the registry's <c>Retry-After</c> when it sent one
    /// (capped at <see cref="MaxRetryAfter"/>, plus up to 10% so parallel requests do not return in one burst), else
    /// exponential from <paramref name="baseDelay"/> with full jitter (anywhere from nothing up to the exponential
    /// ceiling, capped at <see cref="MaxBackoff"/>), so that many requests failed by one blip spread their retries out
    /// instead of returning together, and a first retry mostly follows within a fraction of the base delay.
    /// </summary>
    public static TimeSpan Backoff(int attempt, TimeSpan baseDelay, TimeSpan? retryAfter, Random? random = null)
    {
        random ??= Random.Shared;
        if (retryAfter is { } after)
        {
            var capped = after > MaxRetryAfter ? MaxRetryAfter : after < TimeSpan.Zero ? TimeSpan.Zero : after;
            return capped + (capped * 0.1 * random.NextDouble());
        }

        var exponent = Math.Min(Math.Max(attempt - 1, 0), 16);
        var ceiling = Math.Min(baseDelay.TotalMilliseconds * Math.Pow(2, exponent), MaxBackoff.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(ceiling * random.NextDouble());
    }

    /// <summary>
    /// Which step of the exponential backoff retry number <paramref name="attempt"/> of one request waits:
    /// the request's own attempt, but never more than <paramref name="registryStreak"/>, the failures the registry gave
    /// since it last answered any request well (this one included). The exponent measures overload: a registry that
    /// refuses everything (a streak growing with every parallel request) is backed off from exponentially as before,
    /// while one that keeps answering other requests between the refusals of this one (a load balancer with one bad
    /// replica, a throttling front end refusing some requests whatever their pace) is not overloaded, and a request
    /// that drew several refusals in a row retries after a short wait instead of waiting out a doubled one each time.
    /// </summary>
    public static int BackoffStep(int attempt, int registryStreak) => Math.Max(1, Math.Min(attempt, registryStreak));

    /// <summary>The longest computed backoff between two attempts (a <c>Retry-After</c> may ask for more, up to <see cref="MaxRetryAfter"/>).</summary>
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    internal static string Describe(Exception? exception) => exception switch
    {
        null => "unknown failure",
        HttpRequestException { InnerException: { } inner } http => $"{http.Message} ({inner.Message})",
        _ => exception.Message,
    };
}
