using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Content;

/// <summary>Turns a tag or digest into the descriptor of the content it names.</summary>
public interface IResolvable
{
    Task<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken = default);
}

/// <summary>Reads content by descriptor. The stream verifies size and digest as it is read.</summary>
public interface IFetchable
{
    Task<Stream> FetchAsync(Descriptor descriptor, CancellationToken cancellationToken = default);
}

/// <summary>Tells whether content is present.</summary>
public interface IExistable
{
    Task<bool> ExistsAsync(Descriptor descriptor, CancellationToken cancellationToken = default);
}

/// <summary>
/// Stores content. Implementations verify the bytes against <paramref name="expected"/> while they stream
/// and make nothing visible unless they match.
/// </summary>
public interface IPushable
{
    Task PushAsync(Descriptor expected, Stream content, CancellationToken cancellationToken = default);
}

/// <summary>Points a tag (or layout ref name) at a manifest that is already stored.</summary>
public interface ITaggable
{
    Task TagAsync(Descriptor descriptor, string reference, CancellationToken cancellationToken = default);
}

/// <summary>Registry-only: links a blob from another repository of the same registry without sending bytes.</summary>
public interface IMountable
{
    /// <summary>Returns false when the registry declined the mount (the caller uploads instead).</summary>
    Task<bool> MountAsync(Descriptor descriptor, string fromRepository, CancellationToken cancellationToken = default);

    /// <summary>The registry host this target lives on (mounts only work within one registry).</summary>
    string RegistryHost { get; }

    string RepositoryName { get; }
}

/// <summary>A place images are read from.</summary>
public interface IReadOnlyTarget : IResolvable, IFetchable, IExistable
{
    /// <summary>A human-readable name for messages, e.g. <c>127.0.0.1:5000/olm/server</c> or <c>oci:out</c>.</summary>
    string DisplayName { get; }
}

/// <summary>A place images are copied to: a registry repository or an OCI layout.</summary>
public interface ITarget : IReadOnlyTarget, IPushable, ITaggable
{
}

/// <summary>Fetches a manifest by tag or digest in one request, returning its descriptor and exact bytes (digest checked).</summary>
public interface IManifestFetchable
{
    Task<(Descriptor Descriptor, byte[] Bytes)> FetchManifestAsync(string reference, CancellationToken cancellationToken = default);
}
