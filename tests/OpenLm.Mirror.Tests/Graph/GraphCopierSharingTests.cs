using System.Collections.Concurrent;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Tests.Core;
using Xunit;

namespace OpenLm.Mirror.Tests.Graph;

/// <summary>How one copier shares work between images: transfers once, failures forgotten, mounts within a registry.</summary>
public sealed class GraphCopierSharingTests(SampleLayoutsFixture samples) : IClassFixture<SampleLayoutsFixture>
{
    private const string Server = "r3q3q2f4/olm-server:1.0.0";
    private const string Worker = "r3q3q2f4/olm-worker:1.0.0";

    private OciLayoutStore Source => OciLayoutStore.Open(samples.Oci.Directory, create: false);

    [Fact]
    public async Task GraphCopier_CopyAsync_FailedTransferIsForgotten_TheNextCopyRetriesIt()
    {
        // Given a source whose first fetch of one layer fails, and one copier for both attempts
        var image = samples.Oci[Server];
        var victim = Digest.Parse(image.BlobDigests.Last());
        var source = new FlakySource(Source, victim);
        var registry = new MemoryRegistry("reg.test");
        var copier = new GraphCopier(new CopyOptions());

        // When the image is copied, fails, and is copied again with the same copier
        await Assert.ThrowsAsync<OperationException>(() => copier.CopyAsync(source, Server, registry.Repository("a"), "1"));
        var result = await copier.CopyAsync(source, Server, registry.Repository("a"), "1");

        // Then the second copy transferred the blob instead of repeating the first failure
        Assert.True(registry.Holds("a", victim));
        Assert.Equal(image.Digest, result.Root.Digest.ToString());
    }

    [Fact]
    public async Task GraphCopier_CopyAsync_OneBlobToManyRepositoriesOfOneRegistry_UploadedOnceThenMounted()
    {
        // Given two images that share base layers, copied in parallel into two repositories of one registry
        var registry = new MemoryRegistry("reg.test");
        var copier = new GraphCopier(new CopyOptions { Concurrency = 8 });
        var shared = samples.Oci[Server].BlobDigests.Intersect(samples.Oci[Worker].BlobDigests).ToList();
        Assert.NotEmpty(shared);

        // When both copies run at once
        await Task.WhenAll(
            copier.CopyAsync(Source, Server, registry.Repository("server"), "1"),
            copier.CopyAsync(Source, Worker, registry.Repository("worker"), "1"));

        // Then every shared blob was uploaded once and mounted into the other repository
        foreach (var digest in shared.Select(d => Digest.Parse(d)))
        {
            Assert.Equal(1, registry.Uploads.GetValueOrDefault(digest));
            Assert.Equal(1, registry.Mounts.GetValueOrDefault(digest));
            Assert.True(registry.Holds("server", digest) && registry.Holds("worker", digest));
        }
    }

    /// <summary>Fails the first fetch of one digest with an operational error.</summary>
    private sealed class FlakySource(IReadOnlyTarget inner, Digest victim) : IReadOnlyTarget
    {
        private int _failed;

        public string DisplayName => inner.DisplayName;

        public Task<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken = default) => inner.ResolveAsync(reference, cancellationToken);

        public Task<bool> ExistsAsync(Descriptor descriptor, CancellationToken cancellationToken = default) => inner.ExistsAsync(descriptor, cancellationToken);

        public Task<Stream> FetchAsync(Descriptor descriptor, CancellationToken cancellationToken = default) =>
            descriptor.Digest == victim && Interlocked.Exchange(ref _failed, 1) == 0
                ? throw new OperationException($"{descriptor.Digest}: connection reset (test)")
                : inner.FetchAsync(descriptor, cancellationToken);
    }

    /// <summary>An in-memory registry: repositories with blobs and manifests, cross-repository mounts, counted.</summary>
    private sealed class MemoryRegistry(string host)
    {
        private readonly ConcurrentDictionary<(string Repository, Digest Digest), byte[]> _content = new();
        private readonly ConcurrentDictionary<(string Repository, string Tag), Descriptor> _tags = new();

        public ConcurrentDictionary<Digest, int> Uploads { get; } = new();

        public ConcurrentDictionary<Digest, int> Mounts { get; } = new();

        public bool Holds(string repository, Digest digest) => _content.ContainsKey((repository, digest));

        public ITarget Repository(string name) => new MemoryRepository(this, name);

        private sealed class MemoryRepository(MemoryRegistry registry, string name) : ITarget, IMountable
        {
            public string DisplayName => $"{registry.HostName}/{name}";

            public string RegistryHost => registry.HostName;

            public string RepositoryName => name;

            public Task<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken = default) =>
                registry._tags.TryGetValue((name, reference), out var d) ? Task.FromResult(d) : throw new NotFoundException($"{DisplayName}:{reference}");

            public Task<Stream> FetchAsync(Descriptor descriptor, CancellationToken cancellationToken = default) =>
                Task.FromResult<Stream>(new VerifyingStream(new MemoryStream(registry._content[(name, descriptor.Digest)]), descriptor, DisplayName));

            public Task<bool> ExistsAsync(Descriptor descriptor, CancellationToken cancellationToken = default) =>
                Task.FromResult(registry.Holds(name, descriptor.Digest));

            public async Task PushAsync(Descriptor expected, Stream content, CancellationToken cancellationToken = default)
            {
                var push = VerifyingStream.Ensure(content, expected, DisplayName);
                await using (push)
                {
                    using var copy = new MemoryStream();
                    await push.Stream.CopyToAsync(copy, cancellationToken);
                    Assert.True(push.Verifier.Verified);
                    registry._content[(name, expected.Digest)] = copy.ToArray();
                }

                if (!MediaTypes.IsManifest(expected.MediaType))
                {
                    registry.Uploads.AddOrUpdate(expected.Digest, 1, (_, n) => n + 1);
                }
            }

            public Task TagAsync(Descriptor descriptor, string reference, CancellationToken cancellationToken = default)
            {
                registry._tags[(name, reference)] = descriptor;
                return Task.CompletedTask;
            }

            public Task<bool> MountAsync(Descriptor descriptor, string fromRepository, CancellationToken cancellationToken = default)
            {
                if (!registry._content.TryGetValue((fromRepository, descriptor.Digest), out var bytes))
                {
                    return Task.FromResult(false);
                }

                registry._content[(name, descriptor.Digest)] = bytes;
                registry.Mounts.AddOrUpdate(descriptor.Digest, 1, (_, n) => n + 1);
                return Task.FromResult(true);
            }
        }

        public string HostName => host;
    }
}
