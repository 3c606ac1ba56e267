namespace OpenLm.Mirror.Registry;

/// <summary>
/// Spaces requests to one registry at most <c>N</c> per second (ECR Public allows 1/s anonymously).
/// Each caller reserves the next free slot and waits until it comes.
/// </summary>
public sealed class RequestRateLimiter
{
    private readonly TimeSpan _interval;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private long _nextSlotTicks;

    public RequestRateLimiter(double requestsPerSecond, TimeProvider? time = null)
    {
        if (requestsPerSecond <= 0 || double.IsNaN(requestsPerSecond))
        {
            throw new ArgumentOutOfRangeException(nameof(requestsPerSecond), "the rate limit must be a positive number of requests per second");
        }

        _interval = TimeSpan.FromSeconds(1 / requestsPerSecond);
        _time = time ?? TimeProvider.System;
    }

    public async ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        TimeSpan wait;
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            var nowTicks = (long)(now * ((double)TimeSpan.TicksPerSecond / _time.TimestampFrequency));
            var slot = Math.Max(nowTicks, _nextSlotTicks);
            _nextSlotTicks = slot + _interval.Ticks;
            wait = TimeSpan.FromTicks(slot - nowTicks);
        }

        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
        }
    }
}
