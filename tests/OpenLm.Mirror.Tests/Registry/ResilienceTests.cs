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
    [Fact]
    public void RetryPolicy_Backoff_GrowsExponentiallyWithJitterAndIsCapped()
    {
        var random = new Random(7);
        for (var attempt = 1; attempt <= 20; attempt++)
        {
            var ceiling = Math.Min(100 * Math.Pow(2, attempt - 1), RetryPolicy.MaxBackoff.TotalMilliseconds);
            var delay = RetryPolicy.Backoff(attempt, TimeSpan.FromMilliseconds(100), null, random).TotalMilliseconds;
            Assert.InRange(delay, ceiling / 2, ceiling);
        }
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
