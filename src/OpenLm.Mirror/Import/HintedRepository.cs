using System.Collections.Concurrent;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Import;

/// <summary>
/// A target repository that answers "does it exist?" from what an earlier batched pass (<see cref="ExistencePass"/>, the
/// base check) already asked, so the copier does not send the same HEAD again, one blob at a time, inside its upload
/// slots. Each answer is used once: a retry after a failed upload, or the next pass of the import, asks the registry
/// itself. Everything else goes straight through.
/// </summary>
internal sealed class HintedRepository : ITarget, IMountable
{
    private readonly ConcurrentDictionary<Digest, bool> _hints = new();

    public HintedRepository(ITarget inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        Inner = inner is IMountable ? inner : throw new ArgumentException($"{inner.DisplayName} is not a registry repository", nameof(inner));
    }

    public ITarget Inner { get; }

    public string DisplayName => Inner.DisplayName;

    public string RegistryHost => ((IMountable)Inner).RegistryHost;

    public string RepositoryName => ((IMountable)Inner).RepositoryName;

    /// <summary>Answers not used yet.</summary>
    public int Pending => _hints.Count;

    /// <summary>Records what the registry answered for <paramref name="digest"/> (the last answer wins).</summary>
    public void Hint(Digest digest, bool present) => _hints[digest] = present;

    /// <summary>Whether a hint says the registry has <paramref name="digest"/> (the hint stays for the copier).</summary>
    public bool KnownPresent(Digest digest) => _hints.TryGetValue(digest, out var present) && present;

    public Task<bool> ExistsAsync(Descriptor descriptor, CancellationToken cancellationToken = default) =>
        _hints.TryRemove(descriptor.Digest, out var present) ? Task.FromResult(present) : Inner.ExistsAsync(descriptor, cancellationToken);

    /// <summary>Asks the registry, bypassing (and leaving) the hints: what the pass itself calls.</summary>
    public Task<bool> AskAsync(Descriptor descriptor, CancellationToken cancellationToken) => Inner.ExistsAsync(descriptor, cancellationToken);

    public Task<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken = default) => Inner.ResolveAsync(reference, cancellationToken);

    public Task<Stream> FetchAsync(Descriptor descriptor, CancellationToken cancellationToken = default) => Inner.FetchAsync(descriptor, cancellationToken);

    public Task PushAsync(Descriptor expected, Stream content, CancellationToken cancellationToken = default) => Inner.PushAsync(expected, content, cancellationToken);

    public Task TagAsync(Descriptor descriptor, string reference, CancellationToken cancellationToken = default) => Inner.TagAsync(descriptor, reference, cancellationToken);

    public Task<bool> MountAsync(Descriptor descriptor, string fromRepository, CancellationToken cancellationToken = default) =>
        ((IMountable)Inner).MountAsync(descriptor, fromRepository, cancellationToken);
}
