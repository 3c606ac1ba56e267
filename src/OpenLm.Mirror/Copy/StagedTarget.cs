using System.Collections.Concurrent;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Copy;

/// <summary>What committing a staged tag did.</summary>
public enum TagOutcome
{
    /// <summary>The tag did not exist and now names the manifest.</summary>
    Created,

    /// <summary>The tag named another manifest and was moved (warned).</summary>
    Moved,

    /// <summary>The tag already named this manifest.</summary>
    Unchanged,

    /// <summary>Not committed (a dry run, or the commit never happened).</summary>
    Planned,
}

/// <summary>One tag a <see cref="StagedTarget"/> set (or found already set) at commit.</summary>
public sealed record CommittedTag(string Tag, Descriptor Descriptor, TagOutcome Outcome, Digest? Previous);

/// <summary>
/// A target wrapper after containers/image's "nothing visible until Commit": blobs and manifests go straight through
/// (by digest they name nothing), but tags are only recorded; <see cref="CommitAsync"/> sets them, and the caller calls
/// it only after every node of every image verified and was stored. A copy that fails halfway therefore creates or moves
/// no tag. <see cref="Wrap"/> keeps the inner target's mount capability visible to the copier.
/// </summary>
public class StagedTarget : ITarget
{
    private readonly ConcurrentDictionary<string, Descriptor> _staged = new(StringComparer.Ordinal);

    protected StagedTarget(ITarget inner, RetryPolicy retry)
    {
        Inner = inner;
        Retry = retry;
    }

    /// <summary>The target the content goes to.</summary>
    public ITarget Inner { get; }

    protected RetryPolicy Retry { get; }

    public string DisplayName => Inner.DisplayName;

    /// <summary>Tags recorded and not yet committed, with the manifests they will name.</summary>
    public IReadOnlyDictionary<string, Descriptor> Staged => _staged;

    /// <summary>Stages tags on <paramref name="inner"/>; registry repositories stay mountable through the wrapper.</summary>
    public static StagedTarget Wrap(ITarget inner, RetryPolicy? retry = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        return inner is IMountable ? new MountableStagedTarget(inner, retry ?? RetryPolicy.None) : new StagedTarget(inner, retry ?? RetryPolicy.None);
    }

    public Task<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken = default) => Inner.ResolveAsync(reference, cancellationToken);

    public Task<Stream> FetchAsync(Descriptor descriptor, CancellationToken cancellationToken = default) => Inner.FetchAsync(descriptor, cancellationToken);

    public Task<bool> ExistsAsync(Descriptor descriptor, CancellationToken cancellationToken = default) => Inner.ExistsAsync(descriptor, cancellationToken);

    public Task PushAsync(Descriptor expected, Stream content, CancellationToken cancellationToken = default) => Inner.PushAsync(expected, content, cancellationToken);

    /// <summary>Records the tag; nothing is sent until <see cref="CommitAsync"/>. One tag can be staged for one manifest only.</summary>
    public Task TagAsync(Descriptor descriptor, string reference, CancellationToken cancellationToken = default)
    {
        var staged = _staged.GetOrAdd(reference, descriptor);
        if (staged.Digest != descriptor.Digest)
        {
            throw new InputException($"{DisplayName}: tag '{reference}' was staged for {staged.Digest} and then for {descriptor.Digest}; two images map to one name");
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Sets every staged tag (in parallel, each retried as one operation): a tag that already names its manifest is left
    /// alone, any other is created or moved. Returns what happened to each, ordered by tag.
    /// </summary>
    public async Task<IReadOnlyList<CommittedTag>> CommitAsync(int parallelism = 4, CancellationToken cancellationToken = default)
    {
        var results = new ConcurrentBag<CommittedTag>();
        await Parallel.ForEachAsync(
            _staged,
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = cancellationToken },
            async (pair, ct) => results.Add(await CommitOneAsync(pair.Key, pair.Value, ct).ConfigureAwait(false))).ConfigureAwait(false);
        _staged.Clear();
        return results.OrderBy(r => r.Tag, StringComparer.Ordinal).ToList();
    }

    private async Task<CommittedTag> CommitOneAsync(string tag, Descriptor descriptor, CancellationToken cancellationToken)
    {
        Digest? current = null;
        try
        {
            current = (await Retry.ExecuteAsync(ct => new ValueTask<Descriptor>(Inner.ResolveAsync(tag, ct)), cancellationToken).ConfigureAwait(false)).Digest;
        }
        catch (NotFoundException)
        {
        }

        if (current == descriptor.Digest)
        {
            return new CommittedTag(tag, descriptor, TagOutcome.Unchanged, current);
        }

        await Retry.ExecuteAsync(async ct => await Inner.TagAsync(descriptor, tag, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        return new CommittedTag(tag, descriptor, current is null ? TagOutcome.Created : TagOutcome.Moved, current);
    }

    /// <summary>A staged registry repository: mounts go straight through, like pushes.</summary>
    private sealed class MountableStagedTarget(ITarget inner, RetryPolicy retry) : StagedTarget(inner, retry), IMountable
    {
        private IMountable Mountable => (IMountable)Inner;

        public string RegistryHost => Mountable.RegistryHost;

        public string RepositoryName => Mountable.RepositoryName;

        public Task<bool> MountAsync(Descriptor descriptor, string fromRepository, CancellationToken cancellationToken = default) =>
            Mountable.MountAsync(descriptor, fromRepository, cancellationToken);
    }
}
