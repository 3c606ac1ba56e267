using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.Registry;

public sealed class DurationTests
{
    [Theory]
    [InlineData("90s", 90)]
    [InlineData("30m", 1800)]
    [InlineData("2h", 7200)]
    [InlineData("1h30m", 5400)]
    [InlineData("500ms", 0.5)]
    [InlineData("1d", 86400)]
    [InlineData("45", 45)]
    public void Duration_TryParse_AcceptsWrittenDurations(string text, double seconds)
    {
        Assert.True(Duration.TryParse(text, out var duration));
        Assert.Equal(TimeSpan.FromSeconds(seconds), duration);
    }

    [Theory]
    [InlineData("")]
    [InlineData("2x")]
    [InlineData("-5")]
    [InlineData("0s")]
    [InlineData("h")]
    public void Duration_TryParse_RejectsNonsense(string text) => Assert.False(Duration.TryParse(text, out _));
}

public sealed class BackoffTests
{
    [Theory]
    [InlineData(1, 0, 1)]
    [InlineData(1, 7, 1)]
    [InlineData(5, 1, 1)]
    [InlineData(5, 2, 2)]
    [InlineData(5, 30, 5)]
    public void RetryPolicy_BackoffStep_IsTheRequestsAttemptCappedByTheRegistrysFailureStreak(int attempt, int streak, int step) =>
        Assert.Equal(step, RetryPolicy.BackoffStep(attempt, streak));

    [Fact]
    public void RetryPolicy_Backoff_GrowsExponentiallyWithFullJitterAndIsCapped()
    {
        var random = new Random(7);
        for (var attempt = 1; attempt <= 20; attempt++)
        {
            var ceiling = Math.Min(100 * Math.Pow(2, attempt - 1), RetryPolicy.MaxBackoff.TotalMilliseconds);
            var delays = Enumerable.Range(0, 200).Select(_ => RetryPolicy.Backoff(attempt, TimeSpan.FromMilliseconds(100), null, random).TotalMilliseconds).ToList();
            Assert.All(delays, d => Assert.InRange(d, 0, ceiling));
            // Full jitter: the waits spread over the whole range, not only its upper half.
            Assert.True(delays.Min() < ceiling / 4, $"attempt {attempt}: shortest {delays.Min()} of ceiling {ceiling}");
            Assert.True(delays.Max() > ceiling * 3 / 4, $"attempt {attempt}: longest {delays.Max()} of ceiling {ceiling}");
        }
    }

    [Fact]
    public void RetryPolicy_FirstBackoffByDefault_IsAtMost200MillisecondsAndAbout100OnAverage()
    {
        // A 503 or a 429 without Retry-After is first retried within 200 ms (it was 250-500 ms).
        Assert.Equal(TimeSpan.FromMilliseconds(200), new RegistryOptions().RetryBaseDelay);
        var random = new Random(11);
        var first = Enumerable.Range(0, 1000).Select(_ => RetryPolicy.Backoff(1, new RegistryOptions().RetryBaseDelay, null, random).TotalMilliseconds).ToList();
        Assert.All(first, d => Assert.InRange(d, 0, 200));
        Assert.InRange(first.Average(), 80, 120);
        // Still exponential: the fifth retry may wait up to 16 times as long.
        Assert.Contains(Enumerable.Range(0, 200).Select(_ => RetryPolicy.Backoff(5, TimeSpan.FromMilliseconds(200), null, random).TotalMilliseconds), d => d > 2000);
    }

    [Fact]
    public async Task RetryPolicy_WholeOperationRetries_WaitTheShortBackoffNotPollysDefault()
    {
        // Given an operation that fails transiently twice, under the default base delay
        var policy = new RetryPolicy(3, NullMirrorLog.Instance, new RegistryOptions().RetryBaseDelay);
        var attempts = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();

        // When it is retried as a whole
        var result = await policy.ExecuteAsync(_ => ++attempts < 3 ? throw new IOException("reset") : ValueTask.FromResult(attempts), CancellationToken.None);

        // Then two full-jitter waits of at most 200 and 400 ms were spent (Polly's own 500 ms backoff would take longer)
        Assert.Equal(3, result);
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(600 + 400), $"took {clock.Elapsed}");
    }

    [Fact]
    public void ResumableBlobStream_FirstResume_IsImmediateThenBacksOffUpTo2Seconds()
    {
        Assert.Equal(TimeSpan.Zero, ResumableBlobStream.ResumeDelay(1));
        Assert.Equal(TimeSpan.FromMilliseconds(200), ResumableBlobStream.ResumeDelay(2));
        Assert.Equal(TimeSpan.FromMilliseconds(400), ResumableBlobStream.ResumeDelay(3));
        Assert.Equal(TimeSpan.FromSeconds(2), ResumableBlobStream.ResumeDelay(50));
    }

    [Fact]
    public void RetryPolicy_Backoff_HonoursRetryAfterUpToTheCap()
    {
        var random = new Random(7);
        Assert.InRange(RetryPolicy.Backoff(1, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(3), random).TotalSeconds, 3, 3.3);
        Assert.InRange(RetryPolicy.Backoff(1, TimeSpan.FromMilliseconds(100), TimeSpan.FromHours(1), random), RetryPolicy.MaxRetryAfter, RetryPolicy.MaxRetryAfter * 1.1);
    }
}

public sealed class AdaptiveRateTests
{
    [Fact]
    public void RequestRateLimiter_ThrottledThenAccepted_HalvesOncePerSecondAndRecoversToTheCeiling()
    {
        var time = new ManualClock();
        var limiter = new RequestRateLimiter(10, time);

        // A burst of 429s within one second counts once, and so do refusals before enough answers came back
        limiter.OnThrottled();
        limiter.OnThrottled();
        Assert.Equal(5, limiter.CurrentRate);
        time.Advance(TimeSpan.FromSeconds(1.5));
        limiter.OnThrottled();
        Assert.Equal(5, limiter.CurrentRate);
        for (var i = 0; i < RequestRateLimiter.DecreaseEvidence; i++)
        {
            limiter.OnThrottled();
        }

        Assert.Equal(2.5, limiter.CurrentRate);

        // Accepted requests add back slowly, never above the ceiling
        limiter.OnAccepted();
        Assert.InRange(limiter.CurrentRate!.Value, 2.5, 3);
        for (var i = 0; i < 1000; i++)
        {
            limiter.OnAccepted();
        }

        Assert.Equal(10, limiter.CurrentRate);
    }

    [Fact]
    public void RequestRateLimiter_HalfTheAnswersRefusedWhateverThePace_RateDoesNotStarve()
    {
        // Given a front end refusing every other request with 429 (no Retry-After), independent of the rate
        var time = new ManualClock();
        var limiter = new RequestRateLimiter(10, time);

        // When 2000 answers come back, one per paced slot
        for (var i = 0; i < 2000; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1 / limiter.CurrentRate!.Value));
            if (i % 2 == 0)
            {
                limiter.OnThrottled();
            }
            else
            {
                limiter.OnAccepted();
            }
        }

        // Then the rate holds well above the floor (it used to settle near 0.1 request/s)
        Assert.True(limiter.CurrentRate > 2, $"rate {limiter.CurrentRate}");
    }

    [Fact]
    public async Task RequestRateLimiter_NoCeiling_UnlimitedUntilThrottledThenHalfTheObservedRate()
    {
        var time = new ManualClock();
        var limiter = new RequestRateLimiter(null, time);
        for (var i = 0; i < 20; i++)
        {
            await limiter.WaitAsync(CancellationToken.None);
            time.Advance(TimeSpan.FromMilliseconds(50));
        }

        Assert.Null(limiter.CurrentRate);
        limiter.OnThrottled();
        Assert.InRange(limiter.CurrentRate!.Value, 9, 11);
    }

    [Fact]
    public async Task RequestRateLimiter_NoCeiling_ThrottledBeforeAnyPaceIsKnown_StaysUnlimitedUntilThereIsOne()
    {
        // Given an unlimited limiter whose first request is refused with 429 (no Retry-After)
        var time = new ManualClock();
        var limiter = new RequestRateLimiter(null, time);
        await limiter.WaitAsync(CancellationToken.None);

        // Then no rate is made up (it used to become 0.5/s from a guessed 1/s)
        Assert.Null(limiter.OnThrottled());
        Assert.Null(limiter.CurrentRate);

        // And once requests were spaced at 20/s, a refusal halves that pace
        for (var i = 0; i < RequestRateLimiter.MinimumObserved; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(50));
            await limiter.WaitAsync(CancellationToken.None);
        }

        Assert.NotNull(limiter.OnThrottled());
        Assert.InRange(limiter.CurrentRate!.Value, 8, 12);
    }

    [Fact]
    public void RequestRateLimiter_LowerCeiling_CapsTheRate()
    {
        var limiter = new RequestRateLimiter(null, new ManualClock());
        limiter.LowerCeiling(1);
        Assert.Equal(1, limiter.CurrentRate);
        limiter.LowerCeiling(10);
        Assert.Equal(1, limiter.Ceiling);
    }

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks = TimeSpan.TicksPerDay;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public override DateTimeOffset GetUtcNow() => new(_ticks, TimeSpan.Zero);

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}

public sealed class PublishedQuotaTests
{
    [Fact]
    public void RegistryConnector_EcrPublic_AnonymousGetsOnePerSecondAuthenticatedTen()
    {
        // Given ECR Public without and with a docker login entry
        using var anonymous = new RegistryConnector(new RegistryOptions());
        using var authenticated = new RegistryConnector(new RegistryOptions
        {
            Credentials = new OpenLm.Mirror.Registry.Auth.StaticCredentialProvider(new OpenLm.Mirror.Registry.Auth.Credential("AWS", "secret"), OpenLm.Mirror.Registry.Auth.AnonymousCredentialProvider.Instance),
        });

        // Then the published quotas are the ceilings, and --rate-limit (RateLimit) wins over them
        Assert.Equal(1, anonymous.Client("public.ecr.aws").RateLimiter.Ceiling);
        Assert.Equal(10, authenticated.Client("public.ecr.aws").RateLimiter.Ceiling);
        Assert.Null(anonymous.Client("registry.example:5000").RateLimiter.Ceiling);
        using var limited = new RegistryConnector(new RegistryOptions { RateLimit = 0.5 });
        Assert.Equal(0.5, limited.Client("public.ecr.aws").RateLimiter.Ceiling);
    }
}
