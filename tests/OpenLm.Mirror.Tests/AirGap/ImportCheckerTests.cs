using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Tests.Core;
using Xunit;
using static OpenLm.Mirror.Tests.Core.TestContent;

namespace OpenLm.Mirror.Tests.AirGap;

/// <summary><see cref="ImportChecker"/> against the in-process fake registry: the graph is walked in the target.</summary>
public sealed class ImportCheckerTests
{
    /// <summary>An index with two image manifests, each with a config and a layer, one layer shared.</summary>
    private sealed record Graph(byte[] Index, byte[] Amd64, byte[] Arm64, byte[] ConfigA, byte[] ConfigB, byte[] Shared, byte[] Own)
    {
        public static Graph Create()
        {
            var configA = Utf8("{\"architecture\":\"amd64\",\"os\":\"linux\"}");
            var configB = Utf8("{\"architecture\":\"arm64\",\"os\":\"linux\"}");
            var shared = Random(3000, 1);
            var own = Random(2000, 2);
            byte[] Manifest(byte[] config, byte[] layer) => Utf8(
                $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciManifest}\",\"config\":{DescriptorJson(MediaTypes.OciConfig, config)}," +
                $"\"layers\":[{DescriptorJson(MediaTypes.OciLayerGzip, shared)},{DescriptorJson(MediaTypes.OciLayerGzip, layer)}]}}");
            var amd64 = Manifest(configA, own);
            var arm64 = Manifest(configB, shared[..1000]);
            var index = Utf8(
                $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciIndex}\",\"manifests\":[" +
                $"{DescriptorJson(MediaTypes.OciManifest, amd64, "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}")}," +
                $"{DescriptorJson(MediaTypes.OciManifest, arm64, "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}")}]}}");
            return new Graph(index, amd64, arm64, configA, configB, shared, own);
        }

        public void Store(FakeRegistry registry, string tag, params byte[][] skip)
        {
            registry.AddManifest(tag, Index, MediaTypes.OciIndex);
            foreach (var manifest in new[] { Amd64, Arm64 }.Where(m => !skip.Contains(m)))
            {
                registry.Manifests[Sha256(manifest)] = (manifest, MediaTypes.OciManifest);
            }

            foreach (var blob in new[] { ConfigA, ConfigB, Shared, Own, Shared[..1000] }.Where(b => !skip.Any(s => s.AsSpan().SequenceEqual(b))))
            {
                registry.AddBlob(blob);
            }
        }
    }

    private static async Task<ImportCheckResult> CheckAsync(FakeRegistry registry, byte[] expectedRoot, string tag = "1.0")
    {
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true, Retries = 0 });
        var target = Reference.Parse($"{registry.Authority}/{FakeRegistry.Repository}:{tag}");
        var item = new ImportCheckItem(Reference.Parse("public.ecr.aws/r3q3q2f4/olm-server:1.0"), target, DescriptorOf(MediaTypes.OciIndex, expectedRoot));
        var results = await new ImportChecker(connector, new ImportCheckOptions { Concurrency = 3 }).CheckAsync([item]);
        return Assert.Single(results);
    }

    [Fact]
    public async Task ImportChecker_Check_CompleteGraphIsOk()
    {
        await using var registry = FakeRegistry.Start();
        var graph = Graph.Create();
        graph.Store(registry, "1.0");

        var result = await CheckAsync(registry, graph.Index);

        Assert.Equal(ImportCheckStatus.Ok, result.Status);
        Assert.Equal(Digest.Parse(Sha256(graph.Index)), result.FoundDigest);
        Assert.Empty(result.MissingBlobs);
        Assert.Equal(7, result.DescendantsChecked); // 2 manifests, 2 configs, 3 distinct layers
    }

    [Fact]
    public async Task ImportChecker_Check_MissingLayerAndChildManifestMakeItIncomplete()
    {
        // Given the index by tag, but the arm64 manifest and the amd64-only layer absent
        await using var registry = FakeRegistry.Start();
        var graph = Graph.Create();
        graph.Store(registry, "1.0", graph.Arm64, graph.Own);

        // When checked
        var result = await CheckAsync(registry, graph.Index);

        // Then both are listed as missing, with their media types and sizes
        Assert.Equal(ImportCheckStatus.Incomplete, result.Status);
        Assert.Equal(
            new[] { (Sha256(graph.Arm64), MediaTypes.OciManifest, (long)graph.Arm64.Length), (Sha256(graph.Own), MediaTypes.OciLayerGzip, (long)graph.Own.Length) }
                .OrderBy(x => x.Item1, StringComparer.Ordinal),
            result.MissingBlobs.Select(b => (b.Digest.ToString(), b.MediaType, b.Size)));

        // And every blob was asked about in the target with HEAD
        Assert.Contains(registry.RegistryRequests, r => r.Method == "HEAD" && r.Path.EndsWith(Sha256(graph.Own), StringComparison.Ordinal));
    }

    [Fact]
    public async Task ImportChecker_Check_UnknownTagIsMissing()
    {
        await using var registry = FakeRegistry.Start();
        var graph = Graph.Create();

        var result = await CheckAsync(registry, graph.Index);

        Assert.Equal(ImportCheckStatus.Missing, result.Status);
        Assert.Null(result.FoundDigest);
    }

    [Fact]
    public async Task ImportChecker_Check_TagOnOtherDigestIsWrongDigest()
    {
        await using var registry = FakeRegistry.Start();
        var graph = Graph.Create();
        graph.Store(registry, "1.0");
        registry.AddManifest("1.0", graph.Amd64, MediaTypes.OciManifest);

        var result = await CheckAsync(registry, graph.Index);

        Assert.Equal(ImportCheckStatus.WrongDigest, result.Status);
        Assert.Equal(Digest.Parse(Sha256(graph.Amd64)), result.FoundDigest);
    }

    [Fact]
    public async Task ImportChecker_Check_CorruptChildManifestIsAnError()
    {
        // Given a registry that serves other bytes for the amd64 manifest's digest
        await using var registry = FakeRegistry.Start();
        var graph = Graph.Create();
        graph.Store(registry, "1.0");
        registry.Manifests[Sha256(graph.Amd64)] = (graph.Arm64, MediaTypes.OciManifest);
        registry.SendDigestHeader = false;

        var result = await CheckAsync(registry, graph.Index);

        Assert.Equal(ImportCheckStatus.Error, result.Status);
        Assert.Contains(Sha256(graph.Amd64), result.Error, StringComparison.Ordinal);
    }
}
