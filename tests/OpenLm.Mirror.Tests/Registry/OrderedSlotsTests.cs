using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.Registry;

/// <summary>Slots handed out smallest key first (an export pulls blobs in the order its writer copies them).</summary>
public sealed class OrderedSlotsTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task OrderedSlots_WaitersQueuedOutOfOrder_FreedSlotsGoSmallestKeyFirstAndEqualKeysInArrivalOrder()
    {
        // Given one slot, held, and waiters that arrived in the order c, a, b, a
        var slots = new OrderedSlots(1);
        await slots.WaitAsync("z", CancellationToken.None);
        var granted = new List<string>();
        var waiters = new[] { "c", "a1", "b", "a2" }.Select(name => (Name: name, Task: slots.WaitAsync(name[..1], CancellationToken.None))).ToList();
        Assert.All(waiters, w => Assert.False(w.Task.IsCompleted));

        // When the slot is freed again and again (each holder giving it back)
        for (var i = 0; i < waiters.Count; i++)
        {
            slots.Release();
            var next = await Task.WhenAny(waiters.Where(w => !granted.Contains(w.Name)).Select(w => w.Task)).WaitAsync(Patience);
            granted.Add(waiters.Single(w => w.Task == next).Name);
            await Task.Yield();
            Assert.Equal(1 + i, waiters.Count(w => w.Task.IsCompleted));
        }

        // Then the order is by key, ties by arrival, and the last release frees the slot
        Assert.Equal(["a1", "a2", "b", "c"], granted);
        slots.Release();
        Assert.Equal(1, slots.Free);
    }

    [Fact]
    public async Task OrderedSlots_CancelledWaiter_IsSkippedAndItsTurnGoesToTheNext()
    {
        // Given one held slot and two waiters, the first in order cancelled
        var slots = new OrderedSlots(1);
        await slots.WaitAsync("x", CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var cancelled = slots.WaitAsync("a", cancel.Token);
        var next = slots.WaitAsync("b", CancellationToken.None);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Patience));

        // When the slot is freed, then the remaining waiter has it and no slot is left over
        slots.Release();
        await next.WaitAsync(Patience);
        Assert.Equal(0, slots.Free);
    }

    [Fact]
    public async Task OrderedSlots_FreeSlot_TakenAtOnceUntilNoneIsLeft()
    {
        var slots = new OrderedSlots(2);
        await slots.WaitAsync("b", CancellationToken.None).WaitAsync(Patience);
        await slots.WaitAsync("a", CancellationToken.None).WaitAsync(Patience);
        var third = slots.WaitAsync("a", CancellationToken.None);
        Assert.False(third.IsCompleted);
        Assert.Equal(0, slots.Free);
        slots.Release();
        await third.WaitAsync(Patience);
    }
}
