using System.Text.Json;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

public sealed class OciLayoutStoreTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static byte[] Manifest(byte[] config) =>
        TestContent.Utf8($"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciManifest}\",\"config\":{TestContent.DescriptorJson(MediaTypes.OciConfig, config)},\"layers\":[]}}");

    private static async Task<Descriptor> PushManifestAsync(OciLayoutStore store, int seed)
    {
        var config = TestContent.Utf8($"{{\"seed\":{seed}}}");
        await store.PushBytesAsync(TestContent.DescriptorOf(MediaTypes.OciConfig, config), config);
        var manifest = Manifest(config);
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciManifest, manifest);
        await store.PushBytesAsync(descriptor, manifest);
        return descriptor;
    }

    private static JsonElement ReadIndex(string root) =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(root, "index.json"))).RootElement;

    private static string[] FilesUnder(string root) =>
        Directory.GetFiles(root, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(root, f)).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void OciLayoutStore_Open_Create_WritesAnEmptyLayout()
    {
        // Given a directory that does not exist
        var root = _dir.Sub("new/layout");

        // When a layout is opened with create
        var store = OciLayoutStore.Open(root, create: true);

        // Then oci-layout, an empty index.json and blobs/sha256 exist
        Assert.Equal(Path.GetFullPath(root), store.Root);
        Assert.Equal($"oci:{Path.GetFullPath(root)}", store.DisplayName);
        Assert.Equal("{\"imageLayoutVersion\":\"1.0.0\"}", File.ReadAllText(Path.Combine(root, "oci-layout")));
        var index = ReadIndex(root);
        Assert.Equal(2, index.GetProperty("schemaVersion").GetInt32());
        Assert.Equal(0, index.GetProperty("manifests").GetArrayLength());
        Assert.True(Directory.Exists(Path.Combine(root, "blobs", "sha256")));
    }

    [Fact]
    public void OciLayoutStore_Open_EmptyExistingDirectory_Create_Works()
    {
        // Given an empty existing directory
        var root = _dir.Sub("empty");
        Directory.CreateDirectory(root);

        // When a layout is created there
        OciLayoutStore.Open(root, create: true);

        // Then it is a layout
        Assert.True(File.Exists(Path.Combine(root, "oci-layout")));
    }

    [Fact]
    public async Task OciLayoutStore_Open_Existing_ReadsWhatWasWritten()
    {
        // Given a layout with one tagged image
        var root = _dir.Sub("layout");
        var first = OciLayoutStore.Open(root, create: true);
        var descriptor = await PushManifestAsync(first, 1);
        await first.TagAsync(descriptor, "olm/server:1.2");

        // When it is opened again without create
        var second = OciLayoutStore.Open(root, create: false);

        // Then the image resolves
        var resolved = await second.ResolveAsync("olm/server:1.2");
        Assert.True(resolved.SameContent(descriptor));
    }

    [Fact]
    public void OciLayoutStore_Open_NonEmptyNonLayout_IsRefused()
    {
        // Given a directory with unrelated files
        var root = _dir.Sub("documents");
        Directory.CreateDirectory(root);
        File.WriteAllText(Path.Combine(root, "thesis.txt"), "precious");

        // When a layout is opened there with create
        var ex = Assert.Throws<InputException>(() => OciLayoutStore.Open(root, create: true));

        // Then it refuses and leaves the directory alone
        Assert.Contains("is not empty and is not an OCI layout", ex.Message, StringComparison.Ordinal);
        Assert.Equal(["thesis.txt"], FilesUnder(root));
    }

    [Fact]
    public void OciLayoutStore_Open_MissingWithoutCreate_IsRefused()
    {
        // Given no directory
        // When it is opened without create
        var ex = Assert.Throws<InputException>(() => OciLayoutStore.Open(_dir.Sub("nope"), create: false));

        // Then it says it does not exist
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OciLayoutStore_Open_DirectoryWithoutLayoutFile_WithoutCreate_IsRefused()
    {
        // Given a directory that is not a layout
        var root = _dir.Sub("plain");
        Directory.CreateDirectory(root);

        // When it is opened without create
        var ex = Assert.Throws<InputException>(() => OciLayoutStore.Open(root, create: false));

        // Then it names the missing oci-layout file
        Assert.Contains("no oci-layout file", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"imageLayoutVersion\":\"2.0.0\"}", "unsupported imageLayoutVersion")]
    [InlineData("{\"imageLayoutVersion\":1}", "unsupported imageLayoutVersion")]
    [InlineData("{}", "unsupported imageLayoutVersion")]
    [InlineData("[]", "unsupported imageLayoutVersion")]
    [InlineData("not json", "not valid JSON")]
    public void OciLayoutStore_Open_BadLayoutFile_ThrowsInputException(string content, string why)
    {
        // Given a layout whose oci-layout file is wrong
        var root = _dir.Sub("bad");
        Directory.CreateDirectory(root);
        File.WriteAllText(Path.Combine(root, "oci-layout"), content);

        // When it is opened
        var ex = Assert.Throws<InputException>(() => OciLayoutStore.Open(root, create: true));

        // Then the file and problem are named
        Assert.Contains("oci-layout", ex.Message, StringComparison.Ordinal);
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OciLayoutStore_PushAsync_GoodContent_StoresBlobAtDigestPath()
    {
        // Given a layout and some content
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var content = TestContent.Random(300_000, 3);
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciLayerGzip, content);

        // When the content is pushed
        await using (var stream = new MemoryStream(content))
        {
            await store.PushAsync(descriptor, stream);
        }

        // Then it sits under blobs/sha256/<hex>, exists, fetches back and no temp file is left
        Assert.Equal(content, await File.ReadAllBytesAsync(store.BlobPath(descriptor.Digest)));
        Assert.True(await store.ExistsAsync(descriptor));
        await using var fetched = await store.FetchAsync(descriptor);
        using var copy = new MemoryStream();
        await fetched.CopyToAsync(copy);
        Assert.Equal(content, copy.ToArray());
        Assert.Empty(Directory.GetFiles(Path.Combine(store.Root, OciLayoutStore.TempDirectoryName)));
    }

    [Fact]
    public async Task OciLayoutStore_PushAsync_WrongDigest_LeavesNoBlobAndNoTempFile()
    {
        // Given content that does not match the descriptor
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var content = TestContent.Random(50_000, 4);
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciLayerGzip, content);
        var tampered = (byte[])content.Clone();
        tampered[^1] ^= 0xff;

        // When it is pushed
        await using var stream = new MemoryStream(tampered);
        await Assert.ThrowsAsync<IntegrityException>(() => store.PushAsync(descriptor, stream));

        // Then neither the blob nor a temporary file is left
        Assert.False(File.Exists(store.BlobPath(descriptor.Digest)));
        Assert.False(await store.ExistsAsync(descriptor));
        Assert.DoesNotContain(FilesUnder(store.Root), f => f.Contains(descriptor.Digest.Hex, StringComparison.Ordinal));
        Assert.Empty(Directory.GetFiles(Path.Combine(store.Root, OciLayoutStore.TempDirectoryName)));
    }

    [Fact]
    public async Task OciLayoutStore_PushAsync_ShortContent_LeavesNoBlob()
    {
        // Given content shorter than declared
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var content = TestContent.Random(1000, 5);
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciLayerGzip, content);

        // When it is pushed
        await using var stream = new MemoryStream(content[..500]);
        await Assert.ThrowsAsync<IntegrityException>(() => store.PushAsync(descriptor, stream));

        // Then nothing is stored
        Assert.False(File.Exists(store.BlobPath(descriptor.Digest)));
    }

    [Fact]
    public async Task OciLayoutStore_PushAsync_Twice_IsIdempotent()
    {
        // Given a blob already in the layout
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var content = TestContent.Random(1000, 6);
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciLayerGzip, content);
        await store.PushBytesAsync(descriptor, content);
        var written = File.GetLastWriteTimeUtc(store.BlobPath(descriptor.Digest));

        // When it is pushed again (even from a stream that would fail)
        await store.PushAsync(descriptor, new ThrowingStream());

        // Then the stored blob is untouched
        Assert.Equal(written, File.GetLastWriteTimeUtc(store.BlobPath(descriptor.Digest)));
        Assert.Equal(content, await File.ReadAllBytesAsync(store.BlobPath(descriptor.Digest)));
    }

    [Fact]
    public async Task OciLayoutStore_PushAsync_ExistingBlobOfWrongSize_IsReplaced()
    {
        // Given a layout whose blob file for a digest is truncated (e.g. damaged by hand)
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var content = TestContent.Random(1000, 7);
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciLayerGzip, content);
        await File.WriteAllBytesAsync(store.BlobPath(descriptor.Digest), content[..10]);

        // When the right content is pushed
        await store.PushBytesAsync(descriptor, content);

        // Then the blob holds the verified content
        Assert.Equal(content, await File.ReadAllBytesAsync(store.BlobPath(descriptor.Digest)));
        Assert.True(await store.ExistsAsync(descriptor));
    }

    [Fact]
    public async Task OciLayoutStore_FetchAsync_MissingBlob_SaysMissing()
    {
        // Given a layout without a blob
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciLayerGzip, [1, 2, 3]);

        // When it is fetched
        var ex = await Assert.ThrowsAsync<OperationException>(() => store.FetchAsync(descriptor));

        // Then the digest is named
        Assert.Contains($"blob {descriptor.Digest} is missing", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OciLayoutStore_FetchAsync_TamperedBlob_FailsVerification()
    {
        // Given a stored blob overwritten with other bytes of the same size
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var content = TestContent.Random(1000, 8);
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciLayerGzip, content);
        await store.PushBytesAsync(descriptor, content);
        await File.WriteAllBytesAsync(store.BlobPath(descriptor.Digest), TestContent.Random(1000, 9));

        // When it is fetched and read
        await using var stream = await store.FetchAsync(descriptor);

        // Then reading it fails the digest check
        await Assert.ThrowsAsync<IntegrityException>(() => stream.CopyToAsync(Stream.Null));
    }

    [Fact]
    public async Task OciLayoutStore_TagAsync_WritesRefNameAndSameNameReplaces()
    {
        // Given two manifests in a layout
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var one = await PushManifestAsync(store, 1);
        var two = await PushManifestAsync(store, 2);

        // When the same ref name is given to one, then to two, and another name to one
        await store.TagAsync(one, "olm/server:1.2");
        await store.TagAsync(two, "olm/server:1.2");
        await store.TagAsync(one, "olm/server:1.1");

        // Then index.json holds one entry per ref name, the last tag winning
        var entries = await store.ReadIndexAsync();
        Assert.Equal(2, entries.Count);
        Assert.Equal(two.Digest, entries.Single(e => e.RefName == "olm/server:1.2").Digest);
        Assert.Equal(one.Digest, entries.Single(e => e.RefName == "olm/server:1.1").Digest);
        Assert.Equal(two.Digest, (await store.ResolveAsync("olm/server:1.2")).Digest);
    }

    [Fact]
    public async Task OciLayoutStore_TagAsync_IndexJsonIsValidAndNoTempFilesRemain()
    {
        // Given a layout with a tagged manifest carrying a platform
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var descriptor = await PushManifestAsync(store, 1) with
        {
            Platform = new Platform { Os = "linux", Architecture = "arm64", Variant = "v8" },
            Annotations = new Dictionary<string, string> { ["x"] = "dropped" },
        };

        // When it is tagged
        await store.TagAsync(descriptor, "docker.io/library/mongo:7.0");

        // Then index.json is a valid OCI index with the descriptor, platform and ref name only
        var index = ReadIndex(store.Root);
        Assert.Equal(2, index.GetProperty("schemaVersion").GetInt32());
        Assert.Equal(MediaTypes.OciIndex, index.GetProperty("mediaType").GetString());
        var entry = Assert.Single(index.GetProperty("manifests").EnumerateArray().ToList());
        Assert.Equal(MediaTypes.OciManifest, entry.GetProperty("mediaType").GetString());
        Assert.Equal(descriptor.Digest.ToString(), entry.GetProperty("digest").GetString());
        Assert.Equal(descriptor.Size, entry.GetProperty("size").GetInt64());
        Assert.Equal("arm64", entry.GetProperty("platform").GetProperty("architecture").GetString());
        var annotations = entry.GetProperty("annotations");
        Assert.Equal("docker.io/library/mongo:7.0", annotations.GetProperty(Descriptor.RefNameAnnotation).GetString());
        Assert.False(annotations.TryGetProperty("x", out _));
        Assert.DoesNotContain(Directory.GetFiles(store.Root), f => f.EndsWith(".tmp", StringComparison.Ordinal));
    }

    [Fact]
    public async Task OciLayoutStore_TagAsync_ManifestNotStored_IsRefused()
    {
        // Given a descriptor whose manifest is not in the layout
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var descriptor = TestContent.DescriptorOf(MediaTypes.OciManifest, [1]);

        // When it is tagged
        var ex = await Assert.ThrowsAsync<OperationException>(() => store.TagAsync(descriptor, "x"));

        // Then the tag is refused and index.json is unchanged
        Assert.Contains("is not in the layout", ex.Message, StringComparison.Ordinal);
        Assert.Empty(await store.ReadIndexAsync());
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    public async Task OciLayoutStore_TagAsync_EmptyRefName_IsRefused(string name)
    {
        // Given a stored manifest
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var descriptor = await PushManifestAsync(store, 1);

        // When it is tagged with an empty name
        // Then it is refused
        await Assert.ThrowsAsync<InputException>(() => store.TagAsync(descriptor, name));
    }

    [Theory]
    [InlineData("olm/server:1.2")]
    [InlineData("127.0.0.1:5000/a/b:t")]
    [InlineData("public.ecr.aws/r3q3q2f4/olm-server:1.260716.1540")]
    [InlineData("latest")]
    public async Task OciLayoutStore_ResolveAsync_RefNamesWithSlashesAndColons(string name)
    {
        // Given a manifest tagged with a ref name containing '/' and ':'
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var descriptor = await PushManifestAsync(store, 1);
        await store.TagAsync(descriptor, name);

        // When it is resolved by that name
        var resolved = await store.ResolveAsync(name);

        // Then the descriptor comes back
        Assert.Equal(descriptor.Digest, resolved.Digest);
        Assert.Equal(name, resolved.RefName);
    }

    [Fact]
    public async Task OciLayoutStore_ResolveAsync_ByDigest_FindsTheEntry()
    {
        // Given a tagged manifest
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var descriptor = await PushManifestAsync(store, 1);
        await store.TagAsync(descriptor, "a:1");

        // When it is resolved by digest
        var resolved = await store.ResolveAsync(descriptor.Digest.ToString());

        // Then it is found
        Assert.Equal(descriptor.Digest, resolved.Digest);
    }

    [Fact]
    public async Task OciLayoutStore_ResolveAsync_Unknown_ListsKnownNames()
    {
        // Given a layout with two names
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var descriptor = await PushManifestAsync(store, 1);
        await store.TagAsync(descriptor, "a:1");
        await store.TagAsync(descriptor, "b:2");

        // When an unknown name is resolved
        var ex = await Assert.ThrowsAsync<NotFoundException>(() => store.ResolveAsync("c:3"));

        // Then the message names it and what the layout has
        Assert.Contains("no image named 'c:3'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("a:1, b:2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OciLayoutStore_ResolveAsync_EmptyLayout_SaysEmpty()
    {
        // Given an empty layout
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);

        // When anything is resolved
        var ex = await Assert.ThrowsAsync<NotFoundException>(() => store.ResolveAsync("a:1"));

        // Then it says the layout is empty
        Assert.Contains("the layout is empty", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OciLayoutStore_ResolveAsync_DuplicateRefName_IsAmbiguous()
    {
        // Given a hand-written layout listing one ref name twice
        var root = _dir.Sub("dup");
        var layout = new HandLayout(root);
        var m1 = layout.AddImage(MediaTypes.OciManifest, MediaTypes.OciConfig, MediaTypes.OciLayerGzip, TestContent.Utf8("{\"a\":1}"));
        var m2 = layout.AddImage(MediaTypes.OciManifest, MediaTypes.OciConfig, MediaTypes.OciLayerGzip, TestContent.Utf8("{\"a\":2}"));
        layout.Name("x:1", MediaTypes.OciManifest, m1);
        layout.Name("x:1", MediaTypes.OciManifest, m2);
        var store = OciLayoutStore.Open(root, create: false);

        // When the name is resolved
        var ex = await Assert.ThrowsAsync<InputException>(() => store.ResolveAsync("x:1"));

        // Then it is reported as ambiguous
        Assert.Contains("appears 2 times", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{ this is not json")]
    [InlineData("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"sha256:bad\",\"size\":1}]}")]
    [InlineData("")]
    public async Task OciLayoutStore_ReadIndexAsync_CorruptedIndex_ThrowsClearInputException(string content)
    {
        // Given a layout whose index.json is corrupted
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        await File.WriteAllTextAsync(Path.Combine(store.Root, "index.json"), content);

        // When it is read (directly, by resolve or by tag)
        var ex = await Assert.ThrowsAsync<InputException>(() => store.ResolveAsync("a:1"));

        // Then the error names the layout and index.json
        Assert.StartsWith($"{store.DisplayName}: index.json is invalid: ", ex.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InputException>(() => store.ReadIndexAsync());
    }

    [Fact]
    public async Task OciLayoutStore_ReadIndexAsync_MissingIndex_SaysMissing()
    {
        // Given a layout whose index.json was deleted
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        File.Delete(Path.Combine(store.Root, "index.json"));

        // When it is read
        var ex = await Assert.ThrowsAsync<InputException>(() => store.ReadIndexAsync());

        // Then it says index.json is missing
        Assert.Contains("index.json is missing", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OciLayoutStore_TagAsync_ConcurrentTags_AllLand()
    {
        // Given a stored manifest
        var store = OciLayoutStore.Open(_dir.Sub("l"), create: true);
        var descriptor = await PushManifestAsync(store, 1);

        var other = OciLayoutStore.Open(store.Root, create: false);

        // When 20 different names are tagged concurrently through two store instances (as two processes would)
        await Task.WhenAll(Enumerable.Range(0, 20).Select(i => Task.Run(() => (i % 2 == 0 ? store : other).TagAsync(descriptor, $"t:{i}"))));

        // Then every name is in index.json exactly once
        var names = (await store.ReadIndexAsync()).Select(e => e.RefName).ToList();
        Assert.Equal(20, names.Distinct().Count());
        Assert.Equal(20, names.Count);
    }

    private sealed class ThrowingStream : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => 0; set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new IOException("must not be read");

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
