namespace OpenLm.Mirror.Registry;

/// <summary>
/// A fixed number of slots, like a semaphore, except that a freed slot goes to the waiter with the smallest key
/// (ordinal; equal keys in arrival order) instead of the one that asked first. An export uses it so blobs are pulled
/// in the order the bundle writer copies them, whatever order the images ask for them in.
/// </summary>
internal sealed class OrderedSlots
{
    private readonly Lock _gate = new();
    private readonly PriorityQueue<TaskCompletionSource, (string Key, long Arrival)> _waiting = new(Comparer<(string Key, long Arrival)>.Create(Compare));
    private int _free;
    private long _arrivals;

    public OrderedSlots(int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        _free = count;
    }

    /// <summary>Slots free right now (tests).</summary>
    internal int Free
    {
        get
        {
            lock (_gate)
            {
                return _free;
            }
        }
    }

    public Task WaitAsync(string key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        cancellationToken.ThrowIfCancellationRequested();
        TaskCompletionSource waiter;
        lock (_gate)
        {
            if (_free > 0 && _waiting.Count == 0)
            {
                _free--;
                return Task.CompletedTask;
            }

            waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting.Enqueue(waiter, (key, _arrivals++));
        }

        return WaitForTurnAsync(waiter, cancellationToken);
    }

    public void Release()
    {
        lock (_gate)
        {
            // A cancelled waiter stays queued (its task already cancelled) and is skipped here.
            while (_waiting.TryDequeue(out var next, out _))
            {
                if (next.TrySetResult())
                {
                    return;
                }
            }

            _free++;
        }
    }

    private static async Task WaitForTurnAsync(TaskCompletionSource waiter, CancellationToken cancellationToken)
    {
        // Cancelled before a slot was handed over: the waiter is dropped; handed over first: the slot is the caller's.
        using (cancellationToken.Register(() => waiter.TrySetCanceled(cancellationToken)))
        {
            await waiter.Task.ConfigureAwait(false);
        }
    }

    private static int Compare((string Key, long Arrival) a, (string Key, long Arrival) b)
    {
        var byKey = string.CompareOrdinal(a.Key, b.Key);
        return byKey != 0 ? byKey : a.Arrival.CompareTo(b.Arrival);
    }
}
