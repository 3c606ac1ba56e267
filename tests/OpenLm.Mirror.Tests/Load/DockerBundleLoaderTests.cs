using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.EngineLoad;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestKit;
using Xunit;
using OciMediaTypes = OpenLm.Mirror.Oci.MediaTypes;

namespace OpenLm.Mirror.Tests.Load;

public sealed class DockerBundleLoaderTests : IDisposable
{
    private readonly LoadTemp _temp = new();

    public void Dispose() => _temp.Dispose();

    private DockerLoadOptions Options(VerificationKey? key, ListLog? log = null) => new()
    {
        Key = key,
        TempDirectory = _temp.Sub("spool"),
        Log = log ?? new ListLog(),
    };

    private void AssertSpoolEmpty() => Assert.Empty(Directory.EnumerateFileSystemEntries(System.IO.Path.Combine(_temp.Path, "spool")));

    [Fact]
    public async Task LoadAsync_SmallPlatform_ConvertsEveryImageToTheDockerArchiveLayout()
    {
        // Given a signed bundle with every kind of image, a chart and an artifact, and an amd64 engine
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"));
        using var key = bundle.VerificationKey();
        var engine = new FakeEngine("linux/amd64");

        // When it is loaded
        var result = await DockerBundleLoader.LoadAsync(bundle.Path, engine, Options(key));

        // Then the archive holds one manifest.json entry per container image, tagged with its source reference
        var images = bundle.Platform.Images.Where(i => i.Kind is not (SampleImageKind.Artifact or SampleImageKind.HelmChart)).ToList();
        Assert.Equal(1, engine.LoadCalls);
        Assert.Equal(DockerArchive.ManifestEntry, engine.EntryOrder[0]);
        Assert.Equal(images.Count, engine.Manifest.Count);
        foreach (var image in images)
        {
            var chosen = image.IsIndex ? image.Manifests.Single(m => m.Platform!.ToString() == "linux/amd64") : image.Manifests.Single();
            var entry = Assert.Single(engine.Manifest, e => e.RepoTags.Contains(SampleBundle.FullReference(image)));
            Assert.Equal([SampleBundle.FullReference(image)], entry.RepoTags);

            // the config file is the config blob, byte for byte, named <hex>.json
            Assert.Equal(chosen.ConfigDigest["sha256:".Length..] + ".json", entry.Config);
            Assert.Equal(bundle.Platform.ReadBlob(chosen.ConfigDigest), engine.Entries[entry.Config]);

            // each layer file is the (gzip) layer blob, unchanged, named <hex>/layer.tar, in manifest order
            Assert.Equal(chosen.Layers.Select(l => l.Digest["sha256:".Length..] + "/layer.tar"), entry.Layers);
            foreach (var layer in chosen.Layers)
            {
                Assert.Equal(bundle.Platform.ReadBlob(layer.Digest), engine.Entries[layer.Digest["sha256:".Length..] + "/layer.tar"]);
            }

            var loaded = Assert.Single(result.Loaded, l => l.Reference == SampleBundle.FullReference(image));
            Assert.Equal(image.Digest, loaded.Digest.ToString());
            Assert.Equal(chosen.Digest, loaded.Manifest.ToString());
            Assert.Equal(chosen.ConfigDigest, loaded.Config.ToString());
            Assert.Equal(chosen.ConfigDigest, loaded.ImageId); // the fake engine, like Docker 20.10, uses the config digest
            Assert.Equal("linux/amd64", loaded.Platform.ToString());
            Assert.Equal(chosen.Layers.Count, loaded.Layers);
        }

        // Shared base layers are stored once; nothing else is in the archive
        var expectedFiles = images
            .Select(i => i.IsIndex ? i.Manifests.Single(m => m.Platform!.ToString() == "linux/amd64") : i.Manifests.Single())
            .SelectMany(m => m.Layers.Select(l => l.Digest["sha256:".Length..] + "/layer.tar").Append(m.ConfigDigest["sha256:".Length..] + ".json"))
            .Distinct()
            .Append(DockerArchive.ManifestEntry)
            .Order(StringComparer.Ordinal);
        Assert.Equal(expectedFiles, engine.EntryOrder.Order(StringComparer.Ordinal));
        Assert.Equal(result.ArchiveBytes, engine.BytesRead);

        // The chart and the artifact are skipped, and the spool directory is gone
        Assert.Equal(2, result.Skipped.Count);
        Assert.Contains(result.Skipped, s => s.Kind == SkipKind.Chart && s.Reference.EndsWith("/charts/olm-platform:0.1.0", StringComparison.Ordinal));
        Assert.Contains(result.Skipped, s => s.Kind == SkipKind.Artifact && s.Reference.EndsWith("/olm-artifact:1.0.0", StringComparison.Ordinal));
        Assert.Equal(SignatureStatus.Verified, result.Head.Signature);
        AssertSpoolEmpty();
    }

    [Fact]
    public async Task LoadAsync_Arm64Requested_PicksArm64ChildrenAndWarnsAboutSinglePlatformImages()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 2);
        using var key = bundle.VerificationKey();
        var engine = new FakeEngine("linux/amd64");
        var log = new ListLog();

        var result = await DockerBundleLoader.LoadAsync(bundle.Path, engine, Options(key, log) with { Platform = Platform.Parse("linux/arm64") });

        Assert.Equal("linux/arm64", result.Platform.ToString());
        foreach (var image in bundle.Platform.Images.Where(i => i.IsIndex))
        {
            var arm = image.Manifests.Single(m => m.Platform!.Architecture == "arm64");
            var loaded = Assert.Single(result.Loaded, l => l.Reference == SampleBundle.FullReference(image));
            Assert.Equal(arm.Digest, loaded.Manifest.ToString());
            Assert.Equal(arm.ConfigDigest, loaded.Config.ToString());
        }

        // Single-platform (amd64) images load as they are, with a warning each
        var single = bundle.Platform.Images.Where(i => i.Kind is SampleImageKind.DockerImage or SampleImageKind.OciImage).ToList();
        Assert.All(single, i => Assert.Contains(result.Loaded, l => l.Reference == SampleBundle.FullReference(i) && l.Platform.ToString() == "linux/amd64"));
        Assert.Equal(single.Count, log.Warnings.Count(w => w.Contains("single-platform linux/amd64 image", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task LoadAsync_ArmV7Requested_SkipsImagesWithoutItButLoadsTheRest()
    {
        // olm-agent has linux/arm/v7; the Docker list olm-gateway has only amd64 and arm64
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 3);
        using var key = bundle.VerificationKey();
        var log = new ListLog();

        var result = await DockerBundleLoader.LoadAsync(bundle.Path, new FakeEngine("linux/arm/v7"), Options(key, log));

        var gateway = Assert.Single(result.Skipped, s => s.Kind == SkipKind.Platform);
        Assert.EndsWith("/olm-gateway:1.0.0", gateway.Reference, StringComparison.Ordinal);
        Assert.Contains("linux/amd64, linux/arm64", gateway.Reason);
        Assert.Contains(result.Loaded, l => l.Reference.EndsWith("/olm-agent:1.0.0", StringComparison.Ordinal) && l.Platform.ToString() == "linux/arm/v7");
        Assert.Contains(log.Warnings, w => w.Contains("olm-gateway", StringComparison.Ordinal));
    }

    [Fact]
    public async Task LoadAsync_PlatformNoImageHas_RefusesAsInputError()
    {
        // Given a bundle of multi-platform images only (single-platform ones load whatever the platform, with a warning)
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 4, edit: (_, entries) =>
        {
            entries.RemoveAll(e => !OciMediaTypes.IsIndex(e.MediaType));
            return Task.CompletedTask;
        });
        using var key = bundle.VerificationKey();
        var engine = new FakeEngine();

        // When a platform none of them has is asked for, the load is refused
        var ex = await Assert.ThrowsAsync<InputException>(() => DockerBundleLoader.LoadAsync(
            bundle.Path,
            engine,
            Options(key) with { Platform = Platform.Parse("linux/s390x") }));

        Assert.Contains("has the platform linux/s390x", ex.Message);
        Assert.Equal(0, engine.LoadCalls);
        AssertSpoolEmpty();
    }

    [Fact]
    public async Task LoadAsync_WithTarget_TagsWithTheAirGapNames()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 5);
        using var key = bundle.VerificationKey();
        var engine = new FakeEngine();
        var options = Options(key) with
        {
            Target = MirrorTarget.Parse("registry.corp:5000/openlm"),
            Maps = [NameMapRule.Parse("public.ecr.aws/r3q3q2f4/olm-tools=tooling")],
        };

        var result = await DockerBundleLoader.LoadAsync(bundle.Path, engine, options);

        var tags = engine.Manifest.SelectMany(e => e.RepoTags).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(
            [
                "registry.corp:5000/openlm/olm-agent:1.0.0",
                "registry.corp:5000/openlm/olm-gateway:1.0.0",
                "registry.corp:5000/openlm/olm-migrate:1.0.0",
                "registry.corp:5000/openlm/olm-server:1.0.0",
                "registry.corp:5000/openlm/olm-worker:1.0.0",
                "registry.corp:5000/openlm/tooling:1.0.0",
            ],
            tags);
        Assert.All(result.Loaded, l => Assert.StartsWith("public.ecr.aws/r3q3q2f4/", l.Reference, StringComparison.Ordinal));
        Assert.Equal(tags, result.Loaded.Select(l => l.Tag).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task LoadAsync_DigestOnlyReference_GetsTheDigestTag()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 6, edit: (_, entries) =>
        {
            var i = entries.FindIndex(e => e.RefName!.EndsWith("/olm-worker:1.0.0", StringComparison.Ordinal));
            entries[i] = entries[i].WithRefName($"{SampleBundle.Source}/olm-worker@{entries[i].Digest}");
            return Task.CompletedTask;
        });
        using var key = bundle.VerificationKey();
        var engine = new FakeEngine();

        var result = await DockerBundleLoader.LoadAsync(bundle.Path, engine, Options(key));

        var worker = bundle.Platform.Images.Single(i => i.Repository.EndsWith("/olm-worker", StringComparison.Ordinal));
        var expected = $"{SampleBundle.Source}/olm-worker:{TargetNameMapper.DigestTag(Digest.Parse(worker.Digest))}";
        Assert.Contains(engine.Manifest, e => e.RepoTags.SequenceEqual([expected]));
        Assert.Equal(expected, Assert.Single(result.Loaded, l => l.Reference.Contains('@', StringComparison.Ordinal)).Tag);
        Assert.StartsWith("openlm-sha256-", expected.Split(':')[^1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task LoadAsync_WrongKey_IntegrityErrorAndNothingLoaded()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 8);
        KeyPairGenerator.Generate(_temp.File("other"), passphrase: null);
        using var other = VerificationKey.Load(_temp.File("other") + ".pub");
        var engine = new FakeEngine();

        var ex = await Assert.ThrowsAsync<IntegrityException>(() => DockerBundleLoader.LoadAsync(bundle.Path, engine, Options(other)));

        Assert.Contains("does not verify", ex.Message);
        Assert.Equal(0, engine.LoadCalls);
        AssertSpoolEmpty();
    }

    [Fact]
    public async Task LoadAsync_NoKeyWithoutOptOut_IntegrityError()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 9);
        var engine = new FakeEngine();

        await Assert.ThrowsAsync<IntegrityException>(() => DockerBundleLoader.LoadAsync(bundle.Path, engine, Options(null)));

        Assert.Equal(0, engine.LoadCalls);
    }

    [Fact]
    public async Task LoadAsync_SignatureOptOut_LoadsWithoutKey()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 10);
        var engine = new FakeEngine();

        var result = await DockerBundleLoader.LoadAsync(bundle.Path, engine, Options(null) with { RequireSignature = false });

        Assert.Equal(SignatureStatus.NotChecked, result.Head.Signature);
        Assert.Equal(6, result.Loaded.Count);
    }

    [Fact]
    public async Task LoadAsync_TamperedLayer_IntegrityErrorBeforeAnythingIsLoaded()
    {
        // Given a bundle whose last (layer) blob has one byte changed
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 11);
        using var key = bundle.VerificationKey();
        var bytes = await File.ReadAllBytesAsync(bundle.Path);
        bytes[bytes.Length - 1024 - 600] ^= 0x55; // inside the data of the last entry (padding is < 512 bytes)
        var tampered = _temp.File("tampered.tar");
        await File.WriteAllBytesAsync(tampered, bytes);
        var engine = new FakeEngine();

        await Assert.ThrowsAsync<IntegrityException>(() => DockerBundleLoader.LoadAsync(tampered, engine, Options(key)));

        Assert.Equal(0, engine.LoadCalls);
        AssertSpoolEmpty();
    }

    [Fact]
    public async Task LoadAsync_ZstdBundle_LoadsTheSameArchive()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 12, compression: BundleCompression.Zstd);
        using var key = bundle.VerificationKey();
        var engine = new FakeEngine();

        var result = await DockerBundleLoader.LoadAsync(bundle.Path, engine, Options(key));

        Assert.True(result.Head.Compressed);
        Assert.Equal(6, result.Loaded.Count);
    }

    [Fact]
    public async Task LoadAsync_ZstdLayer_IsDecompressedToPlainTar()
    {
        // Given a bundle with one OCI image whose layer is tar+zstd
        var layerTar = LayerTar("hello.txt", "hello from a zstd layer\n");
        byte[] layerZstd;
        using (var compressor = new ZstdSharp.Compressor(3))
        {
            layerZstd = compressor.Wrap(layerTar).ToArray();
        }

        var diffId = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(layerTar));
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 13, edit: async (store, entries) =>
        {
            var layer = Descriptor.For(OciMediaTypes.OciLayerZstd, layerZstd);
            await store.PushBytesAsync(layer, layerZstd);
            var config = Encoding.UTF8.GetBytes($$$"""{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["{{{diffId}}}"]}}""");
            var configDescriptor = Descriptor.For(OciMediaTypes.OciConfig, config);
            await store.PushBytesAsync(configDescriptor, config);
            var manifest = JsonSerializer.SerializeToUtf8Bytes(new
            {
                schemaVersion = 2,
                mediaType = OciMediaTypes.OciManifest,
                config = new { mediaType = configDescriptor.MediaType, digest = configDescriptor.Digest.ToString(), size = configDescriptor.Size },
                layers = new[] { new { mediaType = layer.MediaType, digest = layer.Digest.ToString(), size = layer.Size } },
            });
            var manifestDescriptor = Descriptor.For(OciMediaTypes.OciManifest, manifest);
            await store.PushBytesAsync(manifestDescriptor, manifest);
            entries.Add(manifestDescriptor.WithRefName($"{SampleBundle.Source}/olm-zstd:1.0.0"));
        });
        using var key = bundle.VerificationKey();
        var engine = new FakeEngine();

        // When it is loaded
        var result = await DockerBundleLoader.LoadAsync(bundle.Path, engine, Options(key));

        // Then the archive's layer file is the uncompressed tar
        var entry = Assert.Single(engine.Manifest, e => e.RepoTags.Contains($"{SampleBundle.Source}/olm-zstd:1.0.0"));
        Assert.Equal(layerTar, engine.Entries[Assert.Single(entry.Layers)]);
        Assert.Contains(result.Loaded, l => l.Tag == $"{SampleBundle.Source}/olm-zstd:1.0.0");
    }

    [Fact]
    public async Task LoadAsync_EngineDoesNotReportATag_OperationError()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 14);
        using var key = bundle.VerificationKey();
        var engine = new FakeEngine();
        var server = bundle.Platform.Images.Single(i => i.Repository.EndsWith("/olm-server", StringComparison.Ordinal));
        engine.Unreported.Add(SampleBundle.FullReference(server));

        var ex = await Assert.ThrowsAsync<OperationException>(() => DockerBundleLoader.LoadAsync(bundle.Path, engine, Options(key)));

        Assert.Contains("did not report loading " + SampleBundle.FullReference(server), ex.Message);
        AssertSpoolEmpty();
    }

    [Fact]
    public async Task LoadAsync_TargetNameCollision_RefusedBeforeSpooling()
    {
        var bundle = await SampleBundle.CreateAsync(_temp.Sub("b"), seed: 15);
        using var key = bundle.VerificationKey();
        var engine = new FakeEngine();
        var options = Options(key) with
        {
            Target = MirrorTarget.Parse("registry.corp:5000"),
            Maps =
            [
                NameMapRule.Parse("public.ecr.aws/r3q3q2f4/olm-server=same"),
                NameMapRule.Parse("public.ecr.aws/r3q3q2f4/olm-worker=same"),
            ],
        };

        var ex = await Assert.ThrowsAsync<InputException>(() => DockerBundleLoader.LoadAsync(bundle.Path, engine, options));

        Assert.Contains("collision", ex.Message);
        Assert.Equal(0, engine.LoadCalls);
    }

    private static byte[] LayerTar(string name, string content)
    {
        var ms = new MemoryStream();
        using (var writer = new System.Formats.Tar.TarWriter(ms, System.Formats.Tar.TarEntryFormat.Ustar, leaveOpen: true))
        {
            var entry = new System.Formats.Tar.UstarTarEntry(System.Formats.Tar.TarEntryType.RegularFile, name)
            {
                DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
                ModificationTime = DateTimeOffset.UnixEpoch,
            };
            writer.WriteEntry(entry);
        }

        return ms.ToArray();
    }
}
