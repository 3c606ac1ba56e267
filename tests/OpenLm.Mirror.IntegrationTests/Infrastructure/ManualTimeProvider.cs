namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// A <see cref="TimeProvider"/> whose clock only moves when told to. Covers <see cref="GetUtcNow"/> and timestamps;
/// timers (<see cref="TimeProvider.CreateTimer"/>) still run on real time.
/// </summary>
public sealed class ManualTimeProvider : TimeProvider
{
    private long _utcTicks;

    public ManualTimeProvider(DateTimeOffset? start = null)
    {
        _utcTicks = (start ?? new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero)).UtcTicks;
    }

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _utcTicks), TimeSpan.Zero);

    public override long GetTimestamp() => Interlocked.Read(ref _utcTicks);

    public void Advance(TimeSpan delta)
    {
        if (delta < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(delta), "Time only moves forward.");
        }

        Interlocked.Add(ref _utcTicks, delta.Ticks);
    }

    public void SetUtcNow(DateTimeOffset value) => Interlocked.Exchange(ref _utcTicks, value.UtcTicks);
}
