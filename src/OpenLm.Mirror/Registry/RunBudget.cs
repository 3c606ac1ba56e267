namespace OpenLm.Mirror.Registry;

/// <summary>
/// The time budget of one run (<see cref="RegistryOptions.Timeout"/>), started when the <see cref="RegistryConnector"/>
/// is created. Retries consult it so that nothing waits past the end of the run.
/// </summary>
public sealed class RunBudget
{
    private readonly TimeProvider _time;

    public RunBudget(TimeSpan timeout, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        Timeout = timeout;
        Deadline = _time.GetUtcNow() + timeout;
    }

    public TimeSpan Timeout { get; }

    public DateTimeOffset Deadline { get; }

    public TimeSpan Remaining
    {
        get
        {
            var left = Deadline - _time.GetUtcNow();
            return left > TimeSpan.Zero ? left : TimeSpan.Zero;
        }
    }

    public bool Exhausted => Remaining == TimeSpan.Zero;

    /// <summary>Whether waiting <paramref name="delay"/> still ends inside both this run and a local budget ending at <paramref name="localDeadline"/>.</summary>
    public bool Allows(TimeSpan delay, DateTimeOffset? localDeadline = null)
    {
        var end = _time.GetUtcNow() + delay;
        return end < Deadline && (localDeadline is null || end < localDeadline);
    }
}
