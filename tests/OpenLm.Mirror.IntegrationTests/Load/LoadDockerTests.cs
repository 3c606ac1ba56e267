using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Docker.DotNet;
using Docker.DotNet.Models;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Layout;
using Descriptor = OpenLm.Mirror.Oci.Descriptor;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestKit;
using Xunit;
using OciMediaTypes = OpenLm.Mirror.Oci.MediaTypes;

namespace OpenLm.Mirror.IntegrationTests.Load;

/// <summary>
/// <c>openlm-mirror load</c> against the real (private, Docker 20.10, vfs) engine: the small sample platform goes in
/// through the docker-archive conversion and comes out with the bundle's config digests and layers.
/// Every test uses its own namespace and removes the tags it created.
/// </summary>
[Trait("Category", "Integration")]
public sealed class LoadDockerTests : IAsyncLifetime
{
    private const string Registry = "public.ecr.aws";

    private readonly TempDir _temp = new();
    private readonly string _namespace = "itload" + Guid.NewGuid().ToString("N")[..10];
    private readonly string _dockerHost = Environment.GetEnvironmentVariable("DOCKER_HOST") is { Length: > 0 } host ? host : RegistryContainer.DefaultDockerHost;
    private readonly HashSet<string> _created = new(StringComparer.Ordinal);
    private DockerClient _docker = null!;
    private GeneratedPlatform _platform = null!;
    private string _bundle = null!;
    private string _publicKey = null!;
    private string _enginePlatform = null!;

    public async Task InitializeAsync()
    {
        _docker = new DockerClientBuilder().WithEndpoint(new Uri(_dockerHost)).WithApiVersion(new System.Version(1, 41)).Build();
        var version = await _docker.System.GetVersionAsync();
        _enginePlatform = $"{version.Os}/{version.Arch}";

        // A signed bundle of the small platform, every image named by its full source reference
        var layoutDir = _temp.Sub("layout");
        _platform = SamplePlatform.Small(seed: 21, @namespace: _namespace).WriteLayout(layoutDir);
        var store = OciLayoutStore.Open(layoutDir, create: false);
        var entries = (await store.ReadIndexAsync()).Select(e => e.WithRefName($"{Registry}/{e.RefName}")).ToList();
        await store.ReplaceIndexAsync(entries);
        var keyBase = _temp.Sub("release");
        KeyPairGenerator.Generate(keyBase, passphrase: null);
        _publicKey = keyBase + ".pub";
        _bundle = await WriteBundleAsync(store, "olm.tar");
    }

    private async Task<string> WriteBundleAsync(OciLayoutStore store, string name, string version = "1.0.0", BundleDeltaInput? delta = null)
    {
        using var key = SigningKey.Load(_temp.Sub("release") + ".key");
        var path = _temp.Sub(name);
        await BundleWriter.WriteAsync(store, new BundleManifest
        {
            Platform = new BundleProduct { Name = "olm", Version = version },
            Tool = new BundleProduct { Name = "openlm-mirror", Version = "0.1.0" },
            Source = $"{Registry}/{_namespace}",
        }, key, path, new BundleWriteOptions { Delta = delta });
        return path;
    }

    /// <summary>A bundle with one hand-made single-layer image (layer bytes, media type and diff_id as given).</summary>
    private async Task<(string Bundle, string Tag, Descriptor Config)> SingleImageBundleAsync(string name, byte[] layer, string layerMediaType, string diffId)
    {
        var store = OciLayoutStore.Open(_temp.Sub(name + "-layout"), create: true);
        var layerDescriptor = Descriptor.For(layerMediaType, layer);
        await store.PushBytesAsync(layerDescriptor, layer);
        var config = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new
        {
            architecture = "amd64",
            os = "linux",
            config = new { Cmd = new[] { "/hello" } },
            rootfs = new { type = "layers", diff_ids = new[] { diffId } },
        }));
        var configDescriptor = Descriptor.For(OciMediaTypes.OciConfig, config);
        await store.PushBytesAsync(configDescriptor, config);
        var manifest = JsonSerializer.SerializeToUtf8Bytes(new
        {
            schemaVersion = 2,
            mediaType = OciMediaTypes.OciManifest,
            config = new { mediaType = configDescriptor.MediaType, digest = configDescriptor.Digest.ToString(), size = configDescriptor.Size },
            layers = new[] { new { mediaType = layerDescriptor.MediaType, digest = layerDescriptor.Digest.ToString(), size = layerDescriptor.Size } },
        });
        var manifestDescriptor = Descriptor.For(OciMediaTypes.OciManifest, manifest);
        await store.PushBytesAsync(manifestDescriptor, manifest);
        var tag = $"{Registry}/{_namespace}/{name}:1.0.0";
        await store.TagAsync(manifestDescriptor, tag);
        Track([tag]);
        return (await WriteBundleAsync(store, name + ".tar"), tag, configDescriptor);
    }

    private static byte[] LayerTar(string content)
    {
        var ms = new MemoryStream();
        using (var writer = new TarWriter(ms, TarEntryFormat.Ustar, leaveOpen: true))
        {
            writer.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "hello")
            {
                DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
                ModificationTime = DateTimeOffset.UnixEpoch,
            });
        }

        return ms.ToArray();
    }

    private static string Sha256(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    public async Task DisposeAsync()
    {
        foreach (var tag in _created)
        {
            try
            {
                await _docker.Images.DeleteImageAsync(tag, new ImageDeleteParameters { Force = true });
            }
            catch (DockerImageNotFoundException)
            {
            }
        }

        _docker.Dispose();
        _temp.Dispose();
    }

    private IEnumerable<GeneratedImage> ContainerImages =>
        _platform.Images.Where(i => i.Kind is not (SampleImageKind.Artifact or SampleImageKind.HelmChart));

    private static GeneratedManifest Chosen(GeneratedImage image, string platform) =>
        image.IsIndex ? image.Manifests.Single(m => $"{m.Platform!.Os}/{m.Platform.Architecture}" == platform) : image.Manifests.Single();

    private async Task<CliRun> LoadAsync(params string[] extra)
    {
        var run = await MirrorCli.RunAsync(["load", _bundle, "--docker-host", _dockerHost, .. extra]);
        return run;
    }

    private async Task<ImageInspectResponse?> InspectAsync(string tag)
    {
        try
        {
            return await _docker.Images.InspectImageAsync(tag);
        }
        catch (DockerImageNotFoundException)
        {
            return null;
        }
    }

    private void Track(IEnumerable<string> tags)
    {
        foreach (var tag in tags)
        {
            _created.Add(tag);
        }
    }

    [Fact]
    public async Task Load_DeltaWithBase_EveryTagHasTheBundlesConfigAndLayers_AndWithoutBaseNothingIsLoaded()
    {
        // Given release 1.0.0 (the full bundle) and 1.0.1, a delta over it that carries only the manifests
        Track(ContainerImages.Select(i => $"{Registry}/{i.Reference}"));
        var store = OciLayoutStore.Open(_temp.Sub("layout"), create: false);
        var (_, input) = await OpenLm.Mirror.Delta.DeltaBases.LoadAsync([_bundle], "olm");
        var delta = await WriteBundleAsync(store, "olm-delta.tar", "1.0.1", input);

        // Without --base: refused, naming the flag, and nothing is in the engine
        var refused = await MirrorCli.RunAsync(["load", delta, "--docker-host", _dockerHost, "--key", _publicKey]);
        Assert.True(refused.ExitCode == 2, refused.ToString());
        Assert.Contains("--base", refused.ToString(), StringComparison.Ordinal);
        foreach (var image in ContainerImages)
        {
            Assert.Null(await InspectAsync($"{Registry}/{image.Reference}"));
        }

        // With the full bundle as its base: every image in the engine with the bundle's config and layers
        var run = await MirrorCli.RunAsync(["load", delta, "--docker-host", _dockerHost, "--key", _publicKey, "--base", _bundle]);
        Assert.True(run.ExitCode == 0, run.ToString());
        foreach (var image in ContainerImages)
        {
            var chosen = Chosen(image, _enginePlatform);
            var inspected = await InspectAsync($"{Registry}/{image.Reference}");
            Assert.True(inspected is not null, $"{image.Reference} is not in the engine\n{run}");
            Assert.Equal(chosen.ConfigDigest, inspected.ID);
            Assert.Equal(chosen.Layers.Select(l => l.DiffId), inspected.RootFS.Layers);
        }
    }

    [Fact]
    public async Task Load_SmallPlatform_EveryTagHasTheBundlesConfigAndLayers()
    {
        // Given the tags the images will get (removed at the end whatever happens)
        Track(ContainerImages.Select(i => $"{Registry}/{i.Reference}"));

        // When the signed bundle is loaded into the engine
        var run = await LoadAsync("--key", _publicKey, "--json");

        // Then every container image is there: image ID = config digest (schema2 on Docker 20.10), layers = diff_ids
        Assert.True(run.ExitCode == 0, run.ToString());
        using var report = JsonDocument.Parse(run.Output);
        var loaded = report.RootElement.GetProperty("images").EnumerateArray().ToList();
        Assert.Equal(ContainerImages.Count(), loaded.Count);
        foreach (var image in ContainerImages)
        {
            var tag = $"{Registry}/{image.Reference}";
            var chosen = Chosen(image, _enginePlatform);
            var inspected = await InspectAsync(tag);
            Assert.True(inspected is not null, $"{tag} is not in the engine\n{run}");
            Assert.Equal(chosen.ConfigDigest, inspected.ID);
            Assert.Equal(chosen.Layers.Select(l => l.DiffId), inspected.RootFS.Layers);
            Assert.Contains(tag, inspected.RepoTags);

            var entry = Assert.Single(loaded, e => e.GetProperty("reference").GetString() == tag);
            Assert.Equal(image.Digest, entry.GetProperty("digest").GetString());
            var imagePlatform = entry.GetProperty("imagePlatform");
            var variant = imagePlatform.TryGetProperty("variant", out var v) && v.ValueKind == JsonValueKind.String ? "/" + v.GetString() : string.Empty;
            Assert.Equal(_enginePlatform, $"{imagePlatform.GetProperty("os").GetString()}/{imagePlatform.GetProperty("architecture").GetString()}{variant}");
            Assert.Equal(chosen.ConfigDigest, entry.GetProperty("imageId").GetString());
        }

        // The chart and the artifact are reported as skipped; the signature was verified; the API was negotiated
        var skipped = report.RootElement.GetProperty("skipped").EnumerateArray().Select(s => s.GetProperty("kind").GetString()).Order().ToList();
        Assert.Equal(["artifact", "chart"], skipped);
        Assert.Equal("verified", report.RootElement.GetProperty("signature").GetProperty("status").GetString());
        Assert.Equal("1.41", report.RootElement.GetProperty("engine").GetProperty("apiVersion").GetString());

        // And loading again is harmless (same IDs)
        var again = await LoadAsync("--key", _publicKey);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("6 image(s) of olm 1.0.0 loaded", again.Output);
    }

    [Fact]
    public async Task Load_WithTo_TagsTheAirGapNamesOnly()
    {
        var target = "registry.corp:5000/openlm-" + _namespace;
        Track(ContainerImages.Select(i => $"{target}/{i.Reference[(_namespace.Length + 1)..]}"));
        Track(ContainerImages.Select(i => $"{Registry}/{i.Reference}"));

        var run = await LoadAsync("--key", _publicKey, "--to", target, "--platform", "linux/arm64");

        Assert.True(run.ExitCode == 0, run.ToString());
        foreach (var image in ContainerImages)
        {
            // olm-server:1.0.0 under public.ecr.aws/<ns> becomes <target>/olm-server:1.0.0
            var tag = $"{target}/{image.Reference[(_namespace.Length + 1)..]}";
            var inspected = await InspectAsync(tag);
            Assert.True(inspected is not null, $"{tag} is not in the engine\n{run}");
            Assert.Equal(Chosen(image, image.IsIndex ? "linux/arm64" : "linux/amd64").ConfigDigest, inspected.ID);
            Assert.Null(await InspectAsync($"{Registry}/{image.Reference}"));
        }

        Assert.Contains("single-platform linux/amd64 image", run.Error);
    }

    [Fact]
    public async Task Load_WithToAndMaxPathComponents_TagsTheNamesTheFlattenedImportStored()
    {
        // Given names mapped 4 deep (<target>/team/sub/<image>) and the import's --max-path-components 3
        var target = "registry.corp:5000/openlm-" + _namespace;
        var flattened = ContainerImages.Select(i => $"{target}/team/sub-{i.Reference[(_namespace.Length + 1)..]}").ToList();
        Track(flattened);

        var run = await LoadAsync("--key", _publicKey, "--to", target, "--map", $"{Registry}/{_namespace}=team/sub", "--max-path-components", "3", "--platform", "linux/arm64");

        // Then the engine holds the flattened names import, check and values use, not the deep ones
        Assert.True(run.ExitCode == 0, run.ToString());
        foreach (var (image, tag) in ContainerImages.Zip(flattened))
        {
            Assert.True(await InspectAsync(tag) is not null, $"{tag} is not in the engine\n{run}");
            Assert.Null(await InspectAsync($"{target}/team/sub/{image.Reference[(_namespace.Length + 1)..]}"));
        }
    }

    [Fact]
    public async Task Load_WrongKey_Exit3AndNothingLoaded()
    {
        Track(ContainerImages.Select(i => $"{Registry}/{i.Reference}"));
        var otherBase = _temp.Sub("other");
        KeyPairGenerator.Generate(otherBase, passphrase: null);

        var run = await LoadAsync("--key", otherBase + ".pub");

        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.Contains("does not verify", run.Error);
        foreach (var image in ContainerImages)
        {
            Assert.Null(await InspectAsync($"{Registry}/{image.Reference}"));
        }
    }

    [Fact]
    public async Task Load_NoKey_Exit3UnlessTheOptOutIsGiven()
    {
        Track(ContainerImages.Select(i => $"{Registry}/{i.Reference}"));

        var refused = await LoadAsync();
        Assert.True(refused.ExitCode == 3, refused.ToString());
        Assert.Contains("--key", refused.Error);
        Assert.Null(await InspectAsync($"{Registry}/{ContainerImages.First().Reference}"));

        var unchecked_ = await LoadAsync("--insecure-skip-signature", "--json");
        Assert.True(unchecked_.ExitCode == 0, unchecked_.ToString());
        Assert.Contains("signature is NOT checked", unchecked_.Error);
        using var report = JsonDocument.Parse(unchecked_.Output);
        Assert.Equal("notChecked", report.RootElement.GetProperty("signature").GetProperty("status").GetString());
        Assert.NotNull(await InspectAsync($"{Registry}/{ContainerImages.First().Reference}"));
    }

    [Fact]
    public async Task Load_EngineUnreachable_Exit1NamingTheHost()
    {
        var run = await MirrorCli.RunAsync("load", _bundle, "--key", _publicKey, "--docker-host", "unix://" + _temp.Sub("no-such.sock"));

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("cannot reach the Docker engine", run.Error);
    }

    [Fact]
    public async Task Load_ZstdLayer_IsDecompressedForTheEngine()
    {
        // Docker 20.10 cannot apply zstd layers from docker load ("unexpected EOF"); the loader sends the tar
        var tar = LayerTar("zstd layer content\n");
        byte[] zstd;
        using (var compressor = new ZstdSharp.Compressor(3))
        {
            zstd = compressor.Wrap(tar).ToArray();
        }

        var (bundle, tag, config) = await SingleImageBundleAsync("zstd-image", zstd, OciMediaTypes.OciLayerZstd, Sha256(tar));

        var run = await MirrorCli.RunAsync("load", bundle, "--key", _publicKey, "--docker-host", _dockerHost);

        Assert.True(run.ExitCode == 0, run.ToString());
        var inspected = await InspectAsync(tag);
        Assert.NotNull(inspected);
        Assert.Equal(config.Digest.ToString(), inspected.ID);
        Assert.Equal([Sha256(tar)], inspected.RootFS.Layers);
    }

    [Fact]
    public async Task Load_EngineRejectsTheImage_Exit1WithTheEnginesMessage()
    {
        // A signed, digest-correct bundle whose config names the wrong diff_id: only the engine can notice
        var tar = LayerTar("some content\n");
        var gzip = new MemoryStream();
        using (var z = new GZipStream(gzip, CompressionLevel.Fastest, leaveOpen: true))
        {
            z.Write(tar);
        }

        var wrongDiffId = Sha256("not the layer"u8.ToArray());
        var (bundle, tag, _) = await SingleImageBundleAsync("bad-diffid", gzip.ToArray(), OciMediaTypes.OciLayerGzip, wrongDiffId);

        var run = await MirrorCli.RunAsync("load", bundle, "--key", _publicKey, "--docker-host", _dockerHost);

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("the Docker engine", run.Error);
        Assert.Contains("diffID", run.Error, StringComparison.OrdinalIgnoreCase);
        Assert.Null(await InspectAsync(tag));
    }
}
