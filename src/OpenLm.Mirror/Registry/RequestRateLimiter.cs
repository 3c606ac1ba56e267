namespace OpenLm.Mirror.Registry;

/// <summary>
/// Spaces requests to one registry, adapting to what it tolerates (AIMD): the rate starts at the ceiling; a 429 without
/// <c>Retry-After</c> halves it (at most once per second and once per <see cref="DecreaseEvidence"/> answers, so one
/// burst of refusals counts once); every request that is not refused adds back a small step until the ceiling is
/// reached again. Each caller reserves the next free slot and
/// waits until it comes. A limiter without a ceiling lets everything through until the registry first throttles; it
/// then starts from half the rate it was actually seeing.
/// </summary>
public sealed class RequestRateLimiter
{
    /// <summary>The slowest the limiter goes (one request every 20 s).</summary>
    public const double MinimumRate = 0.05;

    /// <summary>
    /// How many answers must come back after a halving before the next one. Without it, refusals that do not depend on
    /// the rate (a front end answering 429 to half the requests, whatever their pace) halved the rate on every refusal
    /// once requests were more than a second apart, and starved the run at a request every 10 s. With it, half the
    /// answers refused still lets the rate grow (16 acceptances at +5 % outweigh one halving).
    /// </summary>
    public const int DecreaseEvidence = 32;

    private const int WindowSize = 32;

    /// <summary>Requests an unlimited limiter must have spaced before a 429 sets its rate from their pace.</summary>
    public const int MinimumObserved = 8;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly long[] _recent = new long[WindowSize];
    private int _recentCount;
    private int _recentNext;
    private long _nextSlotTicks;
    private long? _lastDecreaseTicks;
    private int _answersSinceDecrease;
    private double? _rate;
    private double? _ceiling;

    /// <param name="ceiling">The most requests per second ever sent (null: no ceiling, only what the registry asks for).</param>
    public RequestRateLimiter(double? ceiling, TimeProvider? time = null)
    {
        if (ceiling is { } c && (c <= 0 || double.IsNaN(c) || double.IsInfinity(c)))
        {
            throw new ArgumentOutOfRangeException(nameof(ceiling), "the rate limit must be a positive number of requests per second");
        }

        _ceiling = ceiling;
        _rate = ceiling;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The current rate in requests per second, or null while unlimited.</summary>
    public double? CurrentRate
    {
        get
        {
            lock (_gate)
            {
                return _rate;
            }
        }
    }

    /// <summary>The ceiling in requests per second, or null when there is none.</summary>
    public double? Ceiling
    {
        get
        {
            lock (_gate)
            {
                return _ceiling;
            }
        }
    }

    /// <summary>Sets a ceiling learnt later (e.g. the published quota of the service a challenge names) unless one is lower already.</summary>
    public void LowerCeiling(double ceiling)
    {
        lock (_gate)
        {
            if (_ceiling is null || ceiling < _ceiling)
            {
                _ceiling = ceiling;
                _rate = _rate is { } r ? Math.Min(r, ceiling) : ceiling;
            }
        }
    }

    public async ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        TimeSpan wait;
        lock (_gate)
        {
            var nowTicks = NowTicks();
            var slot = nowTicks;
            if (_rate is { } rate)
            {
                slot = Math.Max(nowTicks, _nextSlotTicks);
                _nextSlotTicks = slot + (long)(TimeSpan.TicksPerSecond / rate);
            }

            _recent[_recentNext] = slot;
            _recentNext = (_recentNext + 1) % WindowSize;
            _recentCount = Math.Min(_recentCount + 1, WindowSize);
            wait = TimeSpan.FromTicks(slot - nowTicks);
        }

        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The registry refused a request with 429 and did not say how long to wait: halve the rate. Returns the new rate
    /// when it was halved, null when this refusal fell within the evidence window of the last halving.
    /// </summary>
    public double? OnThrottled()
    {
        lock (_gate)
        {
            var now = NowTicks();
            _answersSinceDecrease++;
            if (_lastDecreaseTicks is { } last && (now - last < TimeSpan.TicksPerSecond || _answersSinceDecrease < DecreaseEvidence))
            {
                return null;
            }

            if (_rate is null && _recentCount < MinimumObserved)
            {
                // Unlimited so far and too few requests sent to know the pace: halving a guess (it was 1/s) set a run
                // whose very first request was refused to one request every 2 s. The refusal is retried with backoff;
                // the rate is halved once there is a pace to halve.
                return null;
            }

            _lastDecreaseTicks = now;
            _answersSinceDecrease = 0;
            var current = _rate ?? ObservedRate(now);
            _rate = Math.Max(MinimumRate, current / 2);
            return _rate;
        }
    }

    /// <summary>A request was not throttled: recover (see the step below), never above the ceiling.</summary>
    public void OnAccepted()
    {
        lock (_gate)
        {
            _answersSinceDecrease++;
            if (_rate is not { } rate)
            {
                return;
            }

            // Per accepted request: a twentieth of the ceiling spread over a second's worth of requests, or 5 % of the
            // current rate if that is more. Refusals that do not depend on the rate (a flaky front end) then settle at a
            // rate where one halving per second is balanced by the recovery, instead of starving the run.
            var step = Math.Max(MinimumRate, (_ceiling ?? rate) / 20);
            var next = rate + Math.Max(step / Math.Max(1, rate), rate / 20);
            _rate = _ceiling is { } ceiling ? Math.Min(ceiling, next) : next;
        }
    }

    /// <summary>Requests per second over the last few requests (at least one per second).</summary>
    private double ObservedRate(long now)
    {
        if (_recentCount < 2)
        {
            return 1;
        }

        var oldest = _recent[(_recentNext - _recentCount + WindowSize) % WindowSize];
        var seconds = (now - oldest) / (double)TimeSpan.TicksPerSecond;
        return seconds <= 0 ? _recentCount : Math.Max(1, _recentCount / seconds);
    }

    private long NowTicks() => (long)(_time.GetTimestamp() * ((double)TimeSpan.TicksPerSecond / _time.TimestampFrequency));
}
