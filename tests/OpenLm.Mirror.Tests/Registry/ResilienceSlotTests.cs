using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Export;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.Registry;

/// <summary>A request waiting to retry gives its concurrency slot back for the wait (TransferSlots, KeepGoing).</summary>
public sealed class ResilienceSlotTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task TransferSlots_WhileARequestWaitsToRetry_ItsSlotServesOtherWork()
    {
        // Given one slot, held by work that waits out a (long) retry delay
        using var slots = new SemaphoreSlim(1, 1);
        var time = new GatedTime();
        var waiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var heldAfterWait = false;
        var first = TransferSlots.RunAsync(slots, async () =>
        {
            waiting.SetResult();
            await TransferSlots.DelayAsync(TimeSpan.FromMinutes(5), time, CancellationToken.None);
            heldAfterWait = TransferSlots.Holds;
        }, CancellationToken.None);
        await waiting.Task.WaitAsync(Patience);

        // When other work asks for the slot meanwhile, then it runs to its end while the first still waits
        var ran = false;
        await TransferSlots.RunAsync(slots, () =>
        {
            ran = true;
            return Task.CompletedTask;
        }, CancellationToken.None).WaitAsync(Patience);
        Assert.True(ran);
        Assert.False(first.IsCompleted);

        // And the first goes on holding the slot again once its wait is over; the slot is given back exactly once
        time.Fire();
        await first.WaitAsync(Patience);
        Assert.True(heldAfterWait);
        Assert.Equal(1, slots.CurrentCount);
    }

    [Fact]
    public async Task TransferSlots_AfterItsWait_ARequestWaitsForItsSlotBeforeTheNextAttempt()
    {
        // Given work waiting to retry, and other work that took the freed slot and still runs
        using var slots = new SemaphoreSlim(1, 1);
        var time = new GatedTime();
        var waiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var retried = false;
        var first = TransferSlots.RunAsync(slots, async () =>
        {
            waiting.SetResult();
            await TransferSlots.DelayAsync(TimeSpan.FromMinutes(5), time, CancellationToken.None);
            retried = true;
        }, CancellationToken.None);
        await waiting.Task.WaitAsync(Patience);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inSlot = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var second = TransferSlots.RunAsync(slots, async () =>
        {
            inSlot.SetResult();
            await release.Task;
        }, CancellationToken.None);
        await inSlot.Task.WaitAsync(Patience);

        // When the wait is over, then the retry does not start until the other work gives the slot back
        time.Fire();
        await Task.Delay(200);
        Assert.False(retried);
        release.SetResult();
        await Task.WhenAll(first, second).WaitAsync(Patience);
        Assert.True(retried);
        Assert.Equal(1, slots.CurrentCount);
    }

    [Fact]
    public async Task TransferSlots_CancelledDuringItsWait_GivesTheSlotBackOnce()
    {
        using var slots = new SemaphoreSlim(1, 1);
        using var cancel = new CancellationTokenSource();
        var waiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var work = TransferSlots.RunAsync(slots, async () =>
        {
            waiting.SetResult();
            await TransferSlots.DelayAsync(TimeSpan.FromMinutes(5), TimeProvider.System, cancel.Token);
        }, CancellationToken.None);
        await waiting.Task.WaitAsync(Patience);

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => work.WaitAsync(Patience));
        Assert.Equal(1, slots.CurrentCount);
    }

    [Fact]
    public async Task TransferSlots_DelayOutsideAnySlot_JustWaits()
    {
        var time = new GatedTime();
        var wait = TransferSlots.DelayAsync(TimeSpan.FromMinutes(5), time, CancellationToken.None);
        Assert.False(wait.IsCompleted);
        time.Fire();
        await wait.WaitAsync(Patience);
        Assert.False(TransferSlots.Holds);
    }

    [Fact]
    public async Task KeepGoing_AnImageWaitingToRetry_LetsTheNextImageRunInItsSlot()
    {
        // Given one image at a time, and a first image whose request waits out a Retry-After
        using var connector = new RegistryConnector(new RegistryOptions());
        var time = new GatedTime();
        var secondDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondDoneBeforeFirst = false;
        var keepGoing = new KeepGoing(connector, NullMirrorLog.Instance) { Parallelism = 1 };

        // When both run
        var run = keepGoing.RunAsync(["a:1", "b:1"], KeepGoing.Verb.Resolve, async (i, ct) =>
        {
            if (i == 0)
            {
                await TransferSlots.DelayAsync(TimeSpan.FromSeconds(1), time, ct);
                secondDoneBeforeFirst = secondDone.Task.IsCompleted;
            }
            else
            {
                secondDone.SetResult();
            }
        }, CancellationToken.None);

        // Then the second image is done while the first still waits, and the first finishes after its wait
        await secondDone.Task.WaitAsync(Patience);
        time.Fire();
        await run.WaitAsync(Patience);
        Assert.True(secondDoneBeforeFirst);
    }

    [Fact]
    public async Task KeepGoing_AFailedImage_IsTriedAgainWhileTheOthersStillRun()
    {
        // Given two images at a time: the first fails transiently once, the second runs until the first's retry began
        using var connector = new RegistryConnector(new RegistryOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(1) });
        var keepGoing = new KeepGoing(connector, NullMirrorLog.Instance) { Parallelism = 2 };
        var retried = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var attempts = 0;
        var others = 0;

        // When both run
        var run = keepGoing.RunAsync(["a:1", "b:1"], KeepGoing.Verb.Pull, async (i, ct) =>
        {
            if (i == 0)
            {
                if (Interlocked.Increment(ref attempts) == 1)
                {
                    throw new IOException("connection reset");
                }

                retried.SetResult();
                return;
            }

            Interlocked.Increment(ref others);
            await retried.Task.WaitAsync(Patience, ct);
        }, CancellationToken.None);

        // Then the failed image went back to the queue at once, not after the pass of all images: both complete, and
        // the second never failed waiting for it
        await run.WaitAsync(Patience * 3);
        Assert.Equal(2, attempts);
        Assert.Equal(1, others);
    }

    [Fact]
    public async Task KeepGoing_AFailedImage_IsQueuedBehindTheImagesNotYetStarted()
    {
        // Given one image at a time, and a first image that fails transiently once
        using var connector = new RegistryConnector(new RegistryOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(1) });
        var keepGoing = new KeepGoing(connector, NullMirrorLog.Instance) { Parallelism = 1 };
        var order = new System.Collections.Concurrent.ConcurrentQueue<int>();

        // When three images run
        await keepGoing.RunAsync(["a:1", "b:1", "c:1"], KeepGoing.Verb.Pull, (i, ct) =>
        {
            order.Enqueue(i);
            return i == 0 && order.Count == 1 ? Task.FromException(new IOException("connection reset")) : Task.CompletedTask;
        }, CancellationToken.None).WaitAsync(Patience);

        // Then its retry came after the images that were waiting for the slot
        Assert.Equal([0, 1, 2, 0], order.ToArray());
    }

    [Fact]
    public async Task KeepGoing_AnImageFailingEveryRound_IsReportedAfterItsRounds()
    {
        // Given an image that always fails transiently, and two extra rounds
        using var connector = new RegistryConnector(new RegistryOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(1) });
        var keepGoing = new KeepGoing(connector, NullMirrorLog.Instance) { Parallelism = 2, RetryRounds = 2 };
        var attempts = 0;

        // When it runs beside a healthy image
        var error = await Assert.ThrowsAsync<OpenLm.Mirror.Errors.OperationException>(() => keepGoing.RunAsync(["a:1", "b:1"], KeepGoing.Verb.Pull, (i, ct) =>
        {
            if (i == 0)
            {
                Interlocked.Increment(ref attempts);
                return Task.FromException(new IOException("connection reset"));
            }

            return Task.CompletedTask;
        }, CancellationToken.None).WaitAsync(Patience));

        // Then it was tried 1 + 2 times and the failure names only it
        Assert.Equal(3, attempts);
        Assert.StartsWith("1 of 2 images could not be pulled", error.Message, StringComparison.Ordinal);
        Assert.Contains("a:1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KeepGoing_AFailureThatIsNotAnImagesOwn_StopsTheOthersAndIsThrown()
    {
        using var connector = new RegistryConnector(new RegistryOptions());
        var keepGoing = new KeepGoing(connector, NullMirrorLog.Instance) { Parallelism = 2 };

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => keepGoing.RunAsync(["a:1", "b:1"], KeepGoing.Verb.Resolve, async (i, ct) =>
        {
            if (i == 0)
            {
                throw new InvalidOperationException("a bug");
            }

            await Task.Delay(TimeSpan.FromMinutes(5), ct);
        }, CancellationToken.None).WaitAsync(Patience));
        Assert.Equal("a bug", error.Message);
    }

    /// <summary>Timers that fire when the test says so (a retry wait that ends on cue).</summary>
    private sealed class GatedTime : TimeProvider
    {
        private readonly TaskCompletionSource _fire = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Fire() => _fire.TrySetResult();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = new GatedTimer();
            _ = _fire.Task.ContinueWith(_ =>
            {
                if (!timer.Disposed)
                {
                    callback(state);
                }
            }, TaskScheduler.Default);
            return timer;
        }

        private sealed class GatedTimer : ITimer
        {
            public bool Disposed { get; private set; }

            public bool Change(TimeSpan dueTime, TimeSpan period) => !Disposed;

            public void Dispose() => Disposed = true;

            public ValueTask DisposeAsync()
            {
                Disposed = true;
                return ValueTask.CompletedTask;
            }
        }
    }
}

public sealed class ResilienceSlotLockTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task TransferSlots_ALockHeldAcrossARetryWait_DoesNotDeadlockTheSlots()
    {
        // Given one slot, and a flow that holds a lock (one token fetch per scope) while it waits out a Retry-After
        using var slots = new SemaphoreSlim(1, 1);
        using var tokenLock = new SemaphoreSlim(1, 1);
        var time = new SignalledTime();
        var holdsLock = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fetcher = TransferSlots.RunAsync(slots, async () =>
        {
            await TransferSlots.WaitAsync(tokenLock, CancellationToken.None);
            try
            {
                holdsLock.SetResult();
                await TransferSlots.DelayAsync(TimeSpan.FromMinutes(5), time, CancellationToken.None);
            }
            finally
            {
                tokenLock.Release();
            }
        }, CancellationToken.None);
        await holdsLock.Task.WaitAsync(Patience);

        // When another flow takes the freed slot and queues on the lock, and the first flow's wait ends
        var queued = TransferSlots.RunAsync(slots, async () =>
        {
            await TransferSlots.WaitAsync(tokenLock, CancellationToken.None);
            tokenLock.Release();
        }, CancellationToken.None);
        await Task.Delay(100);
        time.Fire();

        // Then the queued flow gave its slot back while blocked on the lock, so both finish
        await Task.WhenAll(fetcher, queued).WaitAsync(Patience);
        Assert.Equal(1, slots.CurrentCount);
        Assert.Equal(1, tokenLock.CurrentCount);
    }

    private sealed class SignalledTime : TimeProvider
    {
        private readonly TaskCompletionSource _fire = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Fire() => _fire.TrySetResult();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = new Timer();
            _ = _fire.Task.ContinueWith(_ => callback(state), TaskScheduler.Default);
            return timer;
        }

        private sealed class Timer : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
