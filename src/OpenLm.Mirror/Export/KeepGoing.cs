using System.Collections.Concurrent;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Export;

/// <summary>
/// "Keep going, then decide" for a list of images (resolve and export share it): every image is tried; one that failed
/// transiently goes back to the end of the queue at once (after a short backoff, holding no slot), behind every image not
/// yet started, up to <c>rounds</c> more times while the run's budget lasts. So the failed ones are still retried after
/// the others, but their retries overlap the rest of the pass instead of forming a second pass of their own. Only then
/// does it fail, naming every image that still failed with the registry's error code. Each request already retried
/// itself, so a failure here has used its request's budget.
/// </summary>
internal sealed class KeepGoing(RegistryConnector registries, IMirrorLog log)
{
    public int Parallelism { get; init; } = 4;

    public int RetryRounds { get; init; } = 3;

    /// <param name="references">What each image is called in messages (its reference).</param>
    /// <param name="verb">The work in messages: "resolve" gives "failed to resolve" and "could not be resolved".</param>
    /// <param name="work">Does image <c>i</c>; it may run again for the same index after a transient failure.</param>
    public async Task RunAsync(IReadOnlyList<string> references, Verb verb, Func<int, CancellationToken, Task> work, CancellationToken cancellationToken)
    {
        var failures = new ConcurrentDictionary<int, (MirrorException Error, bool Transient)>();
        // Parallelism images at a time hold a slot; an image whose request waits out a backoff or a Retry-After
        // gives its slot to the next image meanwhile (TransferSlots), so one throttled request does not idle a slot.
        // The slot's waiters are served in order (SemaphoreSlim queues them), so an image asking again after a failure
        // waits behind every image already queued: the failed ones go last.
        // The first error that is not an image's own failure (e.g. cancellation) cancels the others and is thrown.
        using var slots = new SemaphoreSlim(Parallelism, Parallelism);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var ct = stop.Token;
        var allQueued = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        async Task AttemptAsync(int i)
        {
            try
            {
                await work(i, ct).ConfigureAwait(false);
                failures.TryRemove(i, out _);
            }
            catch (MirrorException ex)
            {
                failures[i] = (ex, RetryPolicy.IsTransient(ex, ct));
            }
            catch (Exception ex) when (RetryPolicy.IsTransient(ex, ct))
            {
                failures[i] = (new OperationException($"{references[i]}: {ex.Message}", ex), true);
            }
            catch
            {
                await stop.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }

        async Task ImageAsync(int i)
        {
            for (var round = 0; ; round++)
            {
                await TransferSlots.RunAsync(slots, () => AttemptAsync(i), ct).ConfigureAwait(false);
                if (!failures.TryGetValue(i, out var failure) || !failure.Transient || round >= RetryRounds)
                {
                    return;
                }

                var delay = RetryPolicy.Backoff(round + 1, registries.Options.RetryBaseDelay * 4, null);
                if (!registries.Budget.Allows(delay))
                {
                    return;
                }

                log.Warn($"{references[i]} failed to {verb.Infinitive}; trying it again in {delay.TotalSeconds:0.0}s after the images queued before it (round {round + 1}/{RetryRounds}): {failure.Error.Message}");
                await Task.Delay(delay, registries.Options.Time, ct).ConfigureAwait(false);

                // Behind every image not yet started: a backoff that rounds to nothing (or an image failing at once)
                // must not take the slot again before the later images have even asked for one.
                await allQueued.Task.WaitAsync(ct).ConfigureAwait(false);
            }
        }

        var running = Enumerable.Range(0, references.Count).Select(ImageAsync).ToList();
        allQueued.SetResult();
        try
        {
            await Task.WhenAll(running).ConfigureAwait(false);
        }
        catch when (running.FirstOrDefault(t => t.IsFaulted) is { } faulted)
        {
            // Like Parallel.ForEachAsync: the first real failure, not the cancellations it caused.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(faulted.Exception!.InnerException!).Throw();
        }

        if (failures.IsEmpty)
        {
            return;
        }

        var ordered = failures.OrderBy(f => f.Key).ToList();
        var kind = ordered.Select(f => f.Value.Error.Kind).Max();
        var budget = registries.Budget.Exhausted ? $" (the run's time budget of {registries.Budget.Timeout} is spent)" : string.Empty;
        // One cause for every image (e.g. a proxy refusing its credentials): its advice holds for the whole run.
        var advice = ordered.Select(f => Advice(f.Value.Error)).Distinct().ToList();
        var message = $"{ordered.Count} of {references.Count} images could not be {verb.Participle}{budget}:\n  " + string.Join("\n  ", ordered.Select(f => Describe(references[f.Key], f.Value.Error)));
        var (remedy, subject) = advice.Count == 1 ? advice[0] : (Remedy.None, null);
        throw kind switch
        {
            // Typed like the worst failure, so callers (and the exit code) see an integrity failure as one. No inner
            // exception: the CLI takes advice from the first cause in the chain, which holds only when all agree (above).
            FailureKind.Integrity => new IntegrityException(message) { Remedy = remedy, Subject = subject },
            FailureKind.Usage => new InputException(message) { Remedy = remedy, Subject = subject },
            FailureKind.Operational => new OperationException(message) { Remedy = remedy, Subject = subject },
            _ => new MirrorException(kind, message) { Remedy = remedy, Subject = subject },
        };
    }

    /// <summary>The work named in messages.</summary>
    public sealed record Verb(string Infinitive, string Participle)
    {
        public static readonly Verb Resolve = new("resolve", "resolved");

        public static readonly Verb Pull = new("pull", "pulled");
    }

    private static (Remedy Remedy, string? Subject) Advice(Exception error)
    {
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            if (e is MirrorException { Remedy: not Remedy.None } advised)
            {
                return (advised.Remedy, advised.Subject);
            }
        }

        return (Remedy.None, null);
    }

    /// <summary>One line per failed image: the reference, the registry's error codes (when it sent any) and the message.</summary>
    private static string Describe(string reference, MirrorException error)
    {
        var registry = FindRegistryError(error);
        var codes = registry is null ? null
            : registry.Errors.Count > 0 ? string.Join(",", registry.Errors.Select(e => e.Code).Distinct(StringComparer.Ordinal))
            : $"HTTP {(int)registry.StatusCode}";
        var message = error.Message.Contains(reference, StringComparison.Ordinal) ? error.Message : $"{reference}: {error.Message}";
        return codes is null ? message : $"[{codes}] {message}";
    }

    private static RegistryException? FindRegistryError(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is RegistryException registry)
            {
                return registry;
            }
        }

        return null;
    }
}
