using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Registry.Auth;

namespace OpenLm.Mirror.Registry;

/// <summary>How to talk to registries. Setters reject values that make no sense.</summary>
public sealed class RegistryOptions
{
    private int _retries = 4;
    private double? _rateLimit;
    private int _resumeAttempts = 5;
    private TimeSpan _idleTimeout = TimeSpan.FromSeconds(60);
    private TimeSpan _responseTimeout = TimeSpan.FromSeconds(120);
    private TimeSpan _timeout = TimeSpan.FromHours(2);
    private TimeSpan _requestBudget = TimeSpan.FromMinutes(10);

    /// <summary>Use http:// instead of https:// (loopback test registries).</summary>
    public bool PlainHttp { get; set; }

    /// <summary>PEM file of extra CA certificates to trust for registry TLS.</summary>
    public string? CaFile { get; set; }

    /// <summary>Skip TLS verification entirely (the CLI warns loudly).</summary>
    public bool Insecure { get; set; }

    public ICredentialProvider Credentials { get; set; } = AnonymousCredentialProvider.Instance;

    public IMirrorLog Log { get; set; } = NullMirrorLog.Instance;

    public string UserAgent { get; set; } = "openlm-mirror";

    public int Retries
    {
        get => _retries;
        set => _retries = value is >= 0 and <= 100 ? value : throw new ArgumentOutOfRangeException(nameof(Retries), value, "must be between 0 and 100");
    }

    /// <summary>Requests per second per registry host, or null for no limit.</summary>
    public double? RateLimit
    {
        get => _rateLimit;
        set => _rateLimit = value is null || (value > 0 && value <= 100_000) ? value : throw new ArgumentOutOfRangeException(nameof(RateLimit), value, "must be a positive number of requests per second");
    }

    /// <summary>How many times an interrupted blob download resumes with <c>Range</c> before giving up.</summary>
    public int ResumeAttempts
    {
        get => _resumeAttempts;
        set => _resumeAttempts = value is >= 0 and <= 1000 ? value : throw new ArgumentOutOfRangeException(nameof(ResumeAttempts), value, "resume attempts must be between 0 and 1000");
    }

    /// <summary>A body read that makes no progress for this long counts as a broken connection.</summary>
    public TimeSpan IdleTimeout
    {
        get => _idleTimeout;
        set => _idleTimeout = value > TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(nameof(IdleTimeout), value, "the idle timeout must be positive");
    }

    /// <summary>How long to wait for response headers.</summary>
    public TimeSpan ResponseTimeout
    {
        get => _responseTimeout;
        set => _responseTimeout = value > TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(nameof(ResponseTimeout), value, "the response timeout must be positive");
    }

    /// <summary>
    /// Base delay of the exponential backoff (tests shorten it): the first retry waits up to this long (full jitter), each
    /// further one up to twice as long as the one before, capped at <see cref="RetryPolicy.MaxBackoff"/>.
    /// </summary>
    public TimeSpan RetryBaseDelay { get; set; } = RetryPolicy.DefaultBaseDelay;

    /// <summary>
    /// The time budget of the whole run: no retry is started that would wait past it, and work still failing then is
    /// reported as failed. Default 2 hours (an anonymous export of a large platform at 1 request/s takes a while).
    /// </summary>
    public TimeSpan Timeout
    {
        get => _timeout;
        set => _timeout = value > TimeSpan.Zero && value <= TimeSpan.FromDays(30) ? value : throw new ArgumentOutOfRangeException(nameof(Timeout), value, "the run timeout must be positive and at most 30 days");
    }

    /// <summary>
    /// How long one request may keep being retried (transient statuses, resets, token refreshes) before its failure is
    /// handed to the caller; <see cref="Retries"/> caps the attempts within it.
    /// </summary>
    public TimeSpan RequestBudget
    {
        get => _requestBudget;
        set => _requestBudget = value > TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(nameof(RequestBudget), value, "the request budget must be positive");
    }

    /// <summary>An HTTP proxy URL for every request (user info = proxy credentials); null uses HTTPS_PROXY/HTTP_PROXY/NO_PROXY.</summary>
    public string? Proxy { get; set; }

    /// <summary>Pull-through mirrors for source registries (used by <see cref="RegistryConnector.SourceRepository"/>).</summary>
    public RegistryMirrors Mirrors { get; set; } = RegistryMirrors.None;

    /// <summary>The clock for budgets, backoff and rate limits (tests use a manual one).</summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;

    /// <summary>
    /// Published request quotas per registry host, used as the rate ceiling when <see cref="RateLimit"/> is not set.
    /// ECR Public documents 1 request/s per IP for anonymous pulls and 10/s with credentials.
    /// </summary>
    public IDictionary<string, RegistryQuota> Quotas { get; } = new Dictionary<string, RegistryQuota>(StringComparer.OrdinalIgnoreCase)
    {
        ["public.ecr.aws"] = new RegistryQuota(Anonymous: 1, Authenticated: 10),
    };
}

/// <summary>A registry's published request rate, in requests per second, without and with credentials.</summary>
public sealed record RegistryQuota(double Anonymous, double Authenticated);
