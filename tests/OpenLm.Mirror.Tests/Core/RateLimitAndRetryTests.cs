using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

public sealed class RequestRateLimiterTests
{
    [Fact]
    public async Task RequestRateLimiter_WaitAsync_SpacesCallersByTheInterval()
    {
        // Given a limiter of 20 requests per second on a clock that stands still
        var time = new RecordingTimeProvider();
        var limiter = new RequestRateLimiter(20, time);

        // When five requests arrive at the same instant
        for (var i = 0; i < 5; i++)
        {
            await limiter.WaitAsync(CancellationToken.None);
        }

        // Then the first goes at once and each next one waits 50 ms more
        Assert.Equal(
            [TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(150), TimeSpan.FromMilliseconds(200)],
            time.Delays);
    }

    [Fact]
    public async Task RequestRateLimiter_WaitAsync_AfterIdleTime_DoesNotWait()
    {
        // Given a limiter that was used, then left idle for longer than its interval
        var time = new RecordingTimeProvider();
        var limiter = new RequestRateLimiter(2, time);
        await limiter.WaitAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(5));

        // When the next request comes
        await limiter.WaitAsync(CancellationToken.None);

        // Then it goes at once (no burst credit, no waiting)
        Assert.Empty(time.Delays);
    }

    [Fact]
    public async Task RequestRateLimiter_WaitAsync_RealClock_NRequestsTakeAtLeastNMinusOneIntervals()
    {
        // Given a limiter of 20 requests per second on the real clock
        var limiter = new RequestRateLimiter(20);
        var clock = Stopwatch.StartNew();

        // When 6 requests are made concurrently
        await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => limiter.WaitAsync(CancellationToken.None).AsTask()));

        // Then it took at least (6-1)/20 s, and not absurdly longer
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(240), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task RequestRateLimiter_WaitAsync_Cancelled_Throws()
    {
        // Given a slow limiter with its next slot taken
        var limiter = new RequestRateLimiter(0.01);
        await limiter.WaitAsync(CancellationToken.None);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));

        // When a caller waits and is cancelled
        // Then the wait ends with cancellation
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => limiter.WaitAsync(cts.Token).AsTask());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(double.NaN)]
    public void RequestRateLimiter_Ctor_NonPositiveRate_Throws(double rate)
    {
        // Given a rate that makes no sense
        // When a limiter is made
        // Then it is refused
        Assert.Throws<ArgumentOutOfRangeException>(() => new RequestRateLimiter(rate));
    }

    /// <summary>A clock that moves only when told; timers fire at once and record their due time.</summary>
    private sealed class RecordingTimeProvider : TimeProvider
    {
        private long _ticks = TimeSpan.FromDays(1).Ticks;

        public ConcurrentQueue<TimeSpan> Delays { get; } = new();

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _ticks);

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Delays.Enqueue(dueTime);
            ThreadPool.QueueUserWorkItem(_ => callback(state));
            return new NoopTimer();
        }

        private sealed class NoopTimer : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}

public sealed class RetryPolicyTests
{
    private static readonly Uri Uri = new("https://r.example/v2/a/manifests/1?token=secret");

    private static RegistryException Registry(HttpStatusCode status, string? code = null, TimeSpan? retryAfter = null) =>
        new("GET", Uri, status, code is null ? [] : [new RegistryError(code, "m")], retryAfter);

    public static TheoryData<Exception, bool> Classification() => new()
    {
        { Registry(HttpStatusCode.RequestTimeout), true },
        { Registry(HttpStatusCode.TooManyRequests, "TOOMANYREQUESTS"), true },
        { Registry(HttpStatusCode.InternalServerError), true },
        { Registry(HttpStatusCode.BadGateway), true },
        { Registry(HttpStatusCode.ServiceUnavailable), true },
        { Registry(HttpStatusCode.GatewayTimeout), true },
        { Registry(HttpStatusCode.NotImplemented), false },
        { Registry(HttpStatusCode.HttpVersionNotSupported), false },
        { Registry(HttpStatusCode.NotFound, "MANIFEST_UNKNOWN"), false },
        { Registry(HttpStatusCode.Unauthorized, "UNAUTHORIZED"), false },
        { Registry(HttpStatusCode.Forbidden, "DENIED"), false },
        { Registry(HttpStatusCode.BadRequest, "DIGEST_INVALID"), false },
        { Registry(HttpStatusCode.BadRequest, "MANIFEST_INVALID"), false },
        { new IOException("reset"), true },
        { new SocketException((int)SocketError.ConnectionReset), true },
        { new TimeoutException("slow"), true },
        { new HttpRequestException("refused"), true },
        { new HttpRequestException("bad", null, HttpStatusCode.BadGateway), true },
        { new HttpRequestException("bad", null, HttpStatusCode.NotFound), false },
        { new IntegrityException("digest mismatch"), false },
        { new InputException("bad reference"), false },
        { new NotFoundException("no such image"), false },
        { new OperationException("no credentials"), false },
        { new OperationCanceledException("timed out"), true },
        { new TaskCanceledException("timed out"), true },
        { new InvalidOperationException("wrapper", new IOException("reset")), true },
        { new InvalidOperationException("bug"), false },
        { new ArgumentException("bug"), false },
    };

    [Theory]
    [MemberData(nameof(Classification))]
    public void RetryPolicy_IsTransient_ClassifiesFailures(Exception exception, bool transient)
    {
        // Given a failure while the user has not cancelled
        // When it is classified
        // Then only failures that may go away are transient
        Assert.Equal(transient, RetryPolicy.IsTransient(exception, CancellationToken.None));
    }

    [Fact]
    public void RetryPolicy_IsTransient_UserCancellation_IsNotTransient()
    {
        // Given the user cancelled
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        // When the resulting cancellation is classified
        // Then it is not retried (a timeout with the token alive is)
        Assert.False(RetryPolicy.IsTransient(new OperationCanceledException(cts.Token), cts.Token));
        Assert.True(RetryPolicy.IsTransient(new OperationCanceledException(), CancellationToken.None));
    }

    [Fact]
    public void RegistryException_Message_StripsQueryAndListsErrors()
    {
        // Given a registry error with a token in the query string and two error codes
        var ex = new RegistryException("GET", Uri, HttpStatusCode.BadRequest, [new("DIGEST_INVALID", "digest did not match"), new("SIZE_INVALID", string.Empty)], null, "push");

        // When the message is built
        // Then the query is gone, codes show and digest errors count as integrity failures
        Assert.Equal("push: GET https://r.example/v2/a/manifests/1 returned 400 BadRequest (DIGEST_INVALID: digest did not match; SIZE_INVALID)", ex.Message);
        Assert.DoesNotContain("secret", ex.Uri.ToString(), StringComparison.Ordinal);
        Assert.Equal(FailureKind.Integrity, ex.Kind);
        Assert.True(ex.HasCode("digest_invalid"));
    }

    [Fact]
    public async Task RetryPolicy_ExecuteAsync_TransientThenSuccess_Retries()
    {
        // Given an operation that fails twice with a 503, then succeeds
        var log = new ListLog();
        var policy = new RetryPolicy(3, log, TimeSpan.FromMilliseconds(1));
        var attempts = 0;

        // When it is executed
        var result = await policy.ExecuteAsync(
            _ => ++attempts < 3 ? throw Registry(HttpStatusCode.ServiceUnavailable) : ValueTask.FromResult(42),
            CancellationToken.None);

        // Then it was attempted three times and each retry was logged
        Assert.Equal(42, result);
        Assert.Equal(3, attempts);
        Assert.Equal(2, log.Lines.Count(l => l.Contains("retry", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task RetryPolicy_ExecuteAsync_PermanentFailure_StopsAtOnce()
    {
        // Given an operation that fails with 404
        var policy = new RetryPolicy(5, NullMirrorLog.Instance, TimeSpan.FromMilliseconds(1));
        var attempts = 0;

        // When it is executed
        await Assert.ThrowsAsync<RegistryException>(() => policy.ExecuteAsync<int>(
            _ =>
            {
                attempts++;
                throw Registry(HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
            },
            CancellationToken.None).AsTask());

        // Then it was attempted once
        Assert.Equal(1, attempts);
    }

    [Fact]
    public async Task RetryPolicy_ExecuteAsync_IntegrityFailure_StopsAtOnce()
    {
        // Given an operation that finds corrupt content
        var policy = new RetryPolicy(5, NullMirrorLog.Instance, TimeSpan.FromMilliseconds(1));
        var attempts = 0;

        // When it is executed
        await Assert.ThrowsAsync<IntegrityException>(() => policy.ExecuteAsync(
            _ =>
            {
                attempts++;
                throw new IntegrityException("digest mismatch");
            },
            CancellationToken.None).AsTask());

        // Then it was attempted once
        Assert.Equal(1, attempts);
    }

    [Fact]
    public async Task RetryPolicy_ExecuteAsync_GivesUpAfterRetries()
    {
        // Given an operation that always resets
        var policy = new RetryPolicy(2, NullMirrorLog.Instance, TimeSpan.FromMilliseconds(1));
        var attempts = 0;

        // When it is executed
        await Assert.ThrowsAsync<IOException>(() => policy.ExecuteAsync<int>(
            _ =>
            {
                attempts++;
                throw new IOException("reset");
            },
            CancellationToken.None).AsTask());

        // Then it was attempted 1 + retries times
        Assert.Equal(3, attempts);
    }

    [Fact]
    public async Task RetryPolicy_None_DoesNotRetry()
    {
        // Given the no-retry policy
        var attempts = 0;

        // When a transient failure happens
        await Assert.ThrowsAsync<IOException>(() => RetryPolicy.None.ExecuteAsync<int>(
            _ =>
            {
                attempts++;
                throw new IOException("reset");
            },
            CancellationToken.None).AsTask());

        // Then there was a single attempt
        Assert.Equal(1, attempts);
        Assert.Equal(0, RetryPolicy.None.Retries);
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy(-1, NullMirrorLog.Instance));
    }

    [Fact]
    public async Task RetryPolicy_ExecuteAsync_HonoursRetryAfter()
    {
        // Given a 429 asking to wait 400 ms, and a tiny backoff base
        var policy = new RetryPolicy(1, NullMirrorLog.Instance, TimeSpan.FromMilliseconds(1));
        var attempts = 0;
        var clock = Stopwatch.StartNew();

        // When the operation is executed
        await policy.ExecuteAsync(
            _ => ++attempts == 1 ? throw Registry(HttpStatusCode.TooManyRequests, "TOOMANYREQUESTS", TimeSpan.FromMilliseconds(400)) : ValueTask.FromResult(true),
            CancellationToken.None);

        // Then the retry waited for Retry-After, not the 1 ms backoff
        Assert.Equal(2, attempts);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(380), $"retried after {clock.Elapsed.TotalMilliseconds} ms");
    }

    [Fact]
    public async Task RetryPolicy_ExecuteAsync_RetryAfterIsBounded()
    {
        // Given a 429 asking to wait an hour
        using var cts = new CancellationTokenSource();
        var log = new ListLog(_ => cts.Cancel());
        var policy = new RetryPolicy(1, log, TimeSpan.FromMilliseconds(1));

        // When the operation is executed (and cancelled as soon as the retry is announced)
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => policy.ExecuteAsync<bool>(
            _ => throw Registry(HttpStatusCode.TooManyRequests, null, TimeSpan.FromHours(1)),
            cts.Token).AsTask());

        // Then the announced wait is the 60 s bound, not an hour
        var line = Assert.Single(log.Lines);
        Assert.Contains($"in {RetryPolicy.MaxRetryAfter.TotalSeconds:0.0}s", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RetryPolicy_ExecuteAsync_UserCancellation_IsNotRetried()
    {
        // Given an operation that observes a cancelled token
        var policy = new RetryPolicy(5, NullMirrorLog.Instance, TimeSpan.FromMilliseconds(1));
        using var cts = new CancellationTokenSource();
        var attempts = 0;

        // When the user cancels during the first attempt
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => policy.ExecuteAsync<int>(
            ct =>
            {
                attempts++;
                cts.Cancel();
                ct.ThrowIfCancellationRequested();
                return ValueTask.FromResult(1);
            },
            cts.Token).AsTask());

        // Then there is no retry
        Assert.Equal(1, attempts);
    }

    internal sealed class ListLog(Action<string>? onWrite = null) : IMirrorLog
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public IReadOnlyList<string> Lines => _lines.ToList();

        public void Write(LogLevel level, string message)
        {
            _lines.Enqueue(message);
            onWrite?.Invoke(message);
        }
    }
}
