using System.Text;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

public sealed class ManifestStoreTests : IDisposable
{
    private static readonly byte[] Config = Encoding.UTF8.GetBytes("{\"architecture\":\"amd64\",\"os\":\"linux\"}");
    private static readonly byte[] Layer = TestContent.Random(5_000, 3);
    private readonly TempDirectory _dir = new();

    private static byte[] ManifestBytes() => Encoding.UTF8.GetBytes(
        $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciManifest}\",\"config\":{TestContent.DescriptorJson(MediaTypes.OciConfig, Config)},\"layers\":[{TestContent.DescriptorJson(MediaTypes.OciLayerGzip, Layer)}]}}");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ManifestStore_PutThenTryGet_GivesTheBytesAndMediaType()
    {
        var store = new ManifestStore(_dir.Sub("store"));
        var bytes = ManifestBytes();
        var digest = Digest.Sha256(bytes);

        store.Put(digest, MediaTypes.OciManifest, bytes);

        var stored = store.TryGet(digest);
        Assert.NotNull(stored);
        Assert.Equal(MediaTypes.OciManifest, stored.Value.MediaType);
        Assert.Equal(bytes, stored.Value.Bytes);
        Assert.Null(store.TryGet(Digest.Sha256(Config)));
    }

    [Fact]
    public void ManifestStore_FileWithOtherBytes_IsAbsentAndDeleted()
    {
        // Given a stored manifest whose file was changed on disk
        var store = new ManifestStore(_dir.Sub("store"));
        var bytes = ManifestBytes();
        var digest = Digest.Sha256(bytes);
        store.Put(digest, MediaTypes.OciManifest, bytes);
        var file = Path.Combine(store.Root, "sha256", digest.Hex);
        var changed = File.ReadAllBytes(file);
        changed[^2] ^= 1;
        File.WriteAllBytes(file, changed);

        // Then it is not served, and not kept
        Assert.Null(store.TryGet(digest));
        Assert.False(File.Exists(file));
    }

    [Fact]
    public void ManifestStore_PutBytesOfAnotherDigest_Refused()
    {
        var store = new ManifestStore(_dir.Sub("store"));

        Assert.Throws<ArgumentException>(() => store.Put(Digest.Sha256(Config), MediaTypes.OciManifest, ManifestBytes()));
        Assert.False(Directory.Exists(store.Root));
    }

    [Fact]
    public async Task StoredManifestSource_SecondRun_ReadsManifestsFromTheStoreAndBlobsFromTheRegistry()
    {
        // Given a registry with one image, and a first run that fetched its manifest by tag
        await using var registry = FakeRegistry.Start();
        registry.AddBlob(Config);
        registry.AddBlob(Layer);
        var bytes = ManifestBytes();
        var digest = registry.AddManifest("1", bytes, MediaTypes.OciManifest);
        var store = new ManifestStore(_dir.Sub("store"));
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true, RetryBaseDelay = TimeSpan.FromMilliseconds(1) });
        var first = new StoredManifestSource(connector.Repository(Reference.Parse($"{registry.Authority}/{FakeRegistry.Repository}:1")), store);
        var fetched = await first.FetchManifestAsync("1");
        Assert.Equal(digest, fetched.Descriptor.Digest.ToString());
        var manifestRequests = registry.Requests.Count(r => r.Path.Contains("/manifests/", StringComparison.Ordinal));

        // When a second run asks for it by digest (resolve, then fetch), and for its config
        var second = new StoredManifestSource(connector.Repository(Reference.Parse($"{registry.Authority}/{FakeRegistry.Repository}:1")), store);
        var descriptor = await second.ResolveAsync(digest);
        var again = await ManifestReader.ReadBytesAsync(second, descriptor, "test", CancellationToken.None);
        await using var config = await second.FetchAsync(TestContent.DescriptorOf(MediaTypes.OciConfig, Config));
        using var copy = new MemoryStream();
        await config.CopyToAsync(copy);

        // Then the manifest came from the store (no request), with its media type; the config from the registry
        Assert.Equal(bytes, again);
        Assert.Equal(MediaTypes.OciManifest, descriptor.MediaType);
        Assert.Equal(manifestRequests, registry.Requests.Count(r => r.Path.Contains("/manifests/", StringComparison.Ordinal)));
        Assert.Equal(2, second.ServedFromStore);
        Assert.Equal(Config, copy.ToArray());
    }

    [Fact]
    public async Task StoredManifestSource_TagIsAlwaysAskedAtTheRegistry()
    {
        // Given a stored manifest and a tag since moved to another one
        await using var registry = FakeRegistry.Start();
        var store = new ManifestStore(_dir.Sub("store"));
        var old = ManifestBytes();
        store.Put(Digest.Sha256(old), MediaTypes.OciManifest, old);
        var moved = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(ManifestBytes()).Replace("\"schemaVersion\":2", "\"schemaVersion\":2,\"annotations\":{\"a\":\"b\"}", StringComparison.Ordinal));
        var digest = registry.AddManifest("1", moved, MediaTypes.OciManifest);
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true });
        var source = new StoredManifestSource(connector.Repository(Reference.Parse($"{registry.Authority}/{FakeRegistry.Repository}:1")), store);

        // When the tag is fetched
        var fetched = await source.FetchManifestAsync("1");

        // Then the registry's current manifest is what comes back, and it is kept too
        Assert.Equal(digest, fetched.Descriptor.Digest.ToString());
        Assert.Equal(0, source.ServedFromStore);
        Assert.NotNull(store.TryGet(Digest.Parse(digest)));
    }

    [Fact]
    public void OciLayoutStore_OpenCreate_AcceptsADirectoryHoldingOnlyTheManifestStore()
    {
        // Given a cache directory in which resolve kept manifests before any export made it a layout
        var cache = _dir.Sub("cache");
        var bytes = ManifestBytes();
        ManifestStore.In(cache).Put(Digest.Sha256(bytes), MediaTypes.OciManifest, bytes);

        // When export opens it as its cache
        var layout = OciLayoutStore.Open(cache, create: true);

        // Then it becomes a layout and the manifests stay
        Assert.True(File.Exists(Path.Combine(layout.Root, "oci-layout")));
        Assert.NotNull(ManifestStore.Beside(layout).TryGet(Digest.Sha256(bytes)));
    }
}
