namespace OpenLm.Mirror.Registry;

/// <summary>
/// Concurrency slots (images in flight, blob transfers) that a request gives back while it waits out a backoff or a
/// <c>Retry-After</c>, so other work proceeds meanwhile; it takes its slot again before its next attempt. Work runs in a
/// slot with <see cref="RunAsync{T}"/>; every retry wait goes through <see cref="DelayAsync"/>, which frees the innermost
/// slot of the calling flow for the length of the wait (outer slots stay held, so slots are always taken outer first).
/// A lock that such a waiting flow may hold is taken with <see cref="WaitAsync"/>, so no wait can deadlock. Flows forked
/// inside one slot share it: it is freed when one of them starts waiting and taken back as soon as one of them stops.
/// </summary>
public static class TransferSlots
{
    private static readonly AsyncLocal<Holding?> Current = new();

    /// <summary>Runs <paramref name="work"/> holding one slot of <paramref name="slots"/> (given back while it waits to retry).</summary>
    public static Task<T> RunAsync<T>(SemaphoreSlim slots, Func<Task<T>> work, CancellationToken cancellationToken) =>
        RunAsync(ct => slots.WaitAsync(ct), () => slots.Release(), work, cancellationToken);

    /// <summary>Runs <paramref name="work"/> holding a slot of <paramref name="slots"/> granted in the order of <paramref name="key"/> (kept when it retakes the slot after a wait).</summary>
    internal static Task<T> RunAsync<T>(OrderedSlots slots, string key, Func<Task<T>> work, CancellationToken cancellationToken) =>
        RunAsync(ct => slots.WaitAsync(key, ct), slots.Release, work, cancellationToken);

    private static async Task<T> RunAsync<T>(Func<CancellationToken, Task> take, Action release, Func<Task<T>> work, CancellationToken cancellationToken)
    {
        await take(cancellationToken).ConfigureAwait(false);
        var holding = new Holding(take, release);
        // Set inside this async method: the value flows into work and is gone again when this method returns.
        Current.Value = holding;
        try
        {
            return await work().ConfigureAwait(false);
        }
        finally
        {
            Current.Value = null;
            await holding.EndAsync().ConfigureAwait(false);
        }
    }

    public static Task RunAsync(SemaphoreSlim slots, Func<Task> work, CancellationToken cancellationToken) =>
        RunAsync(slots, async () =>
        {
            await work().ConfigureAwait(false);
            return true;
        }, cancellationToken);

    /// <summary>
    /// Waits <paramref name="delay"/> before a retry, without holding the caller's slot meanwhile. Returns once the slot
    /// is held again (even when cancelled, so the slot is given back exactly once).
    /// </summary>
    public static async Task DelayAsync(TimeSpan delay, TimeProvider time, CancellationToken cancellationToken)
    {
        if (delay <= TimeSpan.Zero)
        {
            return;
        }

        var holding = Current.Value;
        holding?.StartWaiting();
        try
        {
            await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (holding is not null)
            {
                await holding.StopWaitingAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Takes <paramref name="gate"/> (a lock some other flow may hold while it waits out a retry, e.g. one token fetch
    /// per scope), giving the caller's slot back while blocked on it: otherwise the lock's holder, its wait over, could
    /// find every slot held by flows queued on its lock, and none would move again.
    /// </summary>
    public static async Task WaitAsync(SemaphoreSlim gate, CancellationToken cancellationToken)
    {
        if (gate.Wait(0, CancellationToken.None))
        {
            return;
        }

        var holding = Current.Value;
        holding?.StartWaiting();
        try
        {
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (holding is not null)
            {
                await holding.StopWaitingAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Whether the calling flow holds a slot right now (tests).</summary>
    internal static bool Holds => Current.Value is { } holding && holding.Held;

    private sealed class Holding(Func<CancellationToken, Task> take, Action release)
    {
        private readonly Lock _gate = new();
        private bool _released;
        private Task? _retaking;

        public bool Held
        {
            get
            {
                lock (_gate)
                {
                    return !_released;
                }
            }
        }

        public void StartWaiting()
        {
            lock (_gate)
            {
                if (!_released && _retaking is null)
                {
                    _released = true;
                    release();
                }
            }
        }

        /// <summary>A wait ended: take the slot back (or join the retake already under way) before the next attempt.</summary>
        public async Task StopWaitingAsync()
        {
            TaskCompletionSource? mine = null;
            Task? retaking;
            lock (_gate)
            {
                if (_released && _retaking is null)
                {
                    mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    _retaking = mine.Task;
                }

                retaking = _retaking;
            }

            if (mine is not null)
            {
                // Not cancellable: the holder gives the slot back exactly once (in EndAsync), and a cancelled run frees
                // every slot as its work unwinds, so this wait ends.
                await take(CancellationToken.None).ConfigureAwait(false);
                lock (_gate)
                {
                    _released = false;
                    _retaking = null;
                }

                mine.SetResult();
            }
            else if (retaking is not null)
            {
                await retaking.ConfigureAwait(false);
            }
        }

        /// <summary>The work is done: wait for a retake under way, then give the slot back.</summary>
        public async Task EndAsync()
        {
            Task? retaking;
            lock (_gate)
            {
                retaking = _retaking;
            }

            if (retaking is not null)
            {
                await retaking.ConfigureAwait(false);
            }

            lock (_gate)
            {
                if (!_released)
                {
                    _released = true;
                    release();
                }
            }
        }
    }
}
