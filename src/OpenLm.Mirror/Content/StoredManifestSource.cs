using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Content;

/// <summary>
/// A source whose manifests by digest come from a <see cref="ManifestStore"/> when it holds them (verified on read), and
/// otherwise from <paramref name="inner"/>, keeping each one fetched (verified against its digest) for the next run. A
/// tag always goes to the source (tags move); configs and layers always do. The bytes are those the source served for
/// that digest, so what is built from them is the same either way.
/// </summary>
public sealed class StoredManifestSource(IReadOnlyTarget inner, ManifestStore store) : IReadOnlyTarget, IManifestFetchable
{
    private int _served;

    public string DisplayName => inner.DisplayName;

    /// <summary>Manifests answered from the store instead of the source (tests and logs read it).</summary>
    public int ServedFromStore => Volatile.Read(ref _served);

    public async Task<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken = default)
    {
        if (Stored(reference) is { } stored)
        {
            return stored.Descriptor;
        }

        return await inner.ResolveAsync(reference, cancellationToken).ConfigureAwait(false);
    }

    public async Task<(Descriptor Descriptor, byte[] Bytes)> FetchManifestAsync(string reference, CancellationToken cancellationToken = default)
    {
        if (Stored(reference) is { } stored)
        {
            return stored;
        }

        (Descriptor Descriptor, byte[] Bytes) fetched;
        if (inner is IManifestFetchable direct)
        {
            fetched = await direct.FetchManifestAsync(reference, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var descriptor = await inner.ResolveAsync(reference, cancellationToken).ConfigureAwait(false);
            fetched = (descriptor, await ManifestReader.ReadBytesAsync(inner, descriptor, inner.DisplayName, cancellationToken).ConfigureAwait(false));
        }

        Keep(fetched.Descriptor, fetched.Bytes);
        return fetched;
    }

    public async Task<Stream> FetchAsync(Descriptor descriptor, CancellationToken cancellationToken = default)
    {
        if (!MediaTypes.IsManifest(descriptor.MediaType))
        {
            return await inner.FetchAsync(descriptor, cancellationToken).ConfigureAwait(false);
        }

        if (store.TryGet(descriptor.Digest) is { } stored && stored.Bytes.Length == descriptor.Size)
        {
            Interlocked.Increment(ref _served);
            return new MemoryStream(stored.Bytes, writable: false);
        }

        // A manifest is small (ManifestReader bounds it): read it whole through the source's verifying stream, keep it.
        var bytes = await ManifestReader.ReadBytesAsync(inner, descriptor, inner.DisplayName, cancellationToken).ConfigureAwait(false);
        Keep(descriptor, bytes);
        return new MemoryStream(bytes, writable: false);
    }

    public Task<bool> ExistsAsync(Descriptor descriptor, CancellationToken cancellationToken = default) =>
        inner.ExistsAsync(descriptor, cancellationToken);

    private (Descriptor Descriptor, byte[] Bytes)? Stored(string reference)
    {
        if (!reference.StartsWith("sha256:", StringComparison.Ordinal) || store.TryGet(Digest.Parse(reference)) is not { } stored)
        {
            return null;
        }

        Interlocked.Increment(ref _served);
        return (new Descriptor { MediaType = stored.MediaType, Digest = Digest.Parse(reference), Size = stored.Bytes.Length }, stored.Bytes);
    }

    private void Keep(Descriptor descriptor, byte[] bytes)
    {
        if (descriptor.Digest.Algorithm != "sha256")
        {
            return;
        }

        if (Digest.Sha256(bytes) != descriptor.Digest)
        {
            // The source's own check failed to catch it: never keep bytes under a digest they do not have.
            throw new IntegrityException($"{inner.DisplayName}@{descriptor.Digest}: the manifest served has another digest");
        }

        try
        {
            store.Put(descriptor.Digest, descriptor.MediaType, bytes);
        }
        catch (IOException)
        {
            // The store only saves requests: a full disk or a read-only cache does not fail the run.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
