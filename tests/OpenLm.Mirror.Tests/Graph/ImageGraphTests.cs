using System.Text;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.Graph;

public sealed class ImageGraphTests
{
    private static Descriptor Blob(string content, string mediaType) => new()
    {
        MediaType = mediaType,
        Digest = Digest.Sha256(Encoding.UTF8.GetBytes(content)),
        Size = content.Length,
    };

    private static string Json(Descriptor d) => $"{{\"mediaType\":\"{d.MediaType}\",\"digest\":\"{d.Digest}\",\"size\":{d.Size}}}";

    private static (Descriptor Descriptor, ManifestDocument Document) Manifest(Descriptor config, IEnumerable<Descriptor> layers, Descriptor? subject = null)
    {
        var subjectJson = subject is null ? string.Empty : $",\"subject\":{Json(subject)}";
        var text = $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciManifest}\",\"config\":{Json(config)},\"layers\":[{string.Join(',', layers.Select(Json))}]{subjectJson}}}";
        var bytes = Encoding.UTF8.GetBytes(text);
        return (new Descriptor { MediaType = MediaTypes.OciManifest, Digest = Digest.Sha256(bytes), Size = bytes.Length }, ManifestDocument.Parse(bytes, MediaTypes.OciManifest, "test"));
    }

    private static (Descriptor Descriptor, ManifestDocument Document) Index(params Descriptor[] children)
    {
        var text = $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciIndex}\",\"manifests\":[{string.Join(',', children.Select(Json))}]}}";
        var bytes = Encoding.UTF8.GetBytes(text);
        return (new Descriptor { MediaType = MediaTypes.OciIndex, Digest = Digest.Sha256(bytes), Size = bytes.Length }, ManifestDocument.Parse(bytes, MediaTypes.OciIndex, "test"));
    }

    [Fact]
    public void ImageGraph_Edges_ImageManifest_ConfigThenLayersThenSubjectWhichIsNoDependency()
    {
        // Given a manifest with a config, two layers and a subject
        var config = Blob("config", MediaTypes.OciConfig);
        var layers = new[] { Blob("layer-1", "application/vnd.oci.image.layer.v1.tar+gzip"), Blob("layer-2", "application/vnd.oci.image.layer.v1.tar+gzip") };
        var subject = Manifest(Blob("other", MediaTypes.OciConfig), []).Descriptor;
        var (_, document) = Manifest(config, layers, subject);

        // When its edges are listed
        var edges = ImageGraph.Edges(document);

        // Then config and layers are dependencies in order, the subject is a manifest edge but not a dependency
        Assert.Equal([EdgeKind.Config, EdgeKind.Layer, EdgeKind.Layer, EdgeKind.Subject], edges.Select(e => e.Kind));
        Assert.Equal(config.Digest, edges[0].Descriptor.Digest);
        Assert.True(edges[3].IsManifest);
        Assert.False(edges[3].IsDependency);
        Assert.Equal(3, ImageGraph.Dependencies(document).Count());
    }

    [Fact]
    public void ImageGraph_Edges_IndexWithArtifactEntry_ManifestChildrenAndOneIndexBlob()
    {
        // Given an index listing a manifest and a non-manifest entry
        var child = Manifest(Blob("c", MediaTypes.OciConfig), []).Descriptor;
        var artifact = Blob("sbom", "application/spdx+json");
        var (_, index) = Index(child, artifact);

        // When its edges are listed
        var edges = ImageGraph.Edges(index);

        // Then the manifest is a manifest edge and the other entry a blob
        Assert.Equal([EdgeKind.Manifest, EdgeKind.IndexBlob], edges.Select(e => e.Kind));
        Assert.True(edges[0].IsManifest);
        Assert.False(edges[1].IsManifest);
        Assert.True(edges[1].IsDependency);
    }

    [Fact]
    public void ImageGraph_ManifestsChildrenFirst_NestedIndexes_EveryManifestOnceAfterItsChildren()
    {
        // Given index A -> (index B -> m1, m2), m2 ; m2 shared
        var m1 = Manifest(Blob("c1", MediaTypes.OciConfig), [Blob("l1", "application/vnd.oci.image.layer.v1.tar")]);
        var m2 = Manifest(Blob("c2", MediaTypes.OciConfig), []);
        var b = Index(m1.Descriptor, m2.Descriptor);
        var a = Index(b.Descriptor, m2.Descriptor);
        var documents = new Dictionary<Digest, ManifestDocument>
        {
            [m1.Descriptor.Digest] = m1.Document,
            [m2.Descriptor.Digest] = m2.Document,
            [b.Descriptor.Digest] = b.Document,
            [a.Descriptor.Digest] = a.Document,
        };

        // When ordered children first
        var order = ImageGraph.ManifestsChildrenFirst([a.Descriptor], documents).Select(d => d.Digest).ToList();

        // Then each manifest appears once, after all of its children, the root last
        Assert.Equal(4, order.Count);
        Assert.Equal(4, order.Distinct().Count());
        Assert.True(order.IndexOf(m1.Descriptor.Digest) < order.IndexOf(b.Descriptor.Digest));
        Assert.True(order.IndexOf(m2.Descriptor.Digest) < order.IndexOf(b.Descriptor.Digest));
        Assert.Equal(a.Descriptor.Digest, order[^1]);
    }

    [Fact]
    public void ImageGraph_ManifestsChildrenFirst_DeepNesting_DoesNotOverflow()
    {
        // Given 20,000 indexes nested one in the next
        var documents = new Dictionary<Digest, ManifestDocument>();
        var node = Manifest(Blob("leaf", MediaTypes.OciConfig), []);
        documents[node.Descriptor.Digest] = node.Document;
        for (var i = 0; i < 20_000; i++)
        {
            node = Index(node.Descriptor);
            documents[node.Descriptor.Digest] = node.Document;
        }

        // When ordered, Then every level is listed and the outermost comes last
        var order = ImageGraph.ManifestsChildrenFirst([node.Descriptor], documents);
        Assert.Equal(20_001, order.Count);
        Assert.Equal(node.Descriptor.Digest, order[^1].Digest);
    }

    [Fact]
    public void ImageGraph_Reachable_SkipsSubjectAndCountsSharedBlobsOnce()
    {
        // Given two manifests sharing a layer under one index, one of them with a subject outside the graph
        var shared = Blob("shared", "application/vnd.oci.image.layer.v1.tar");
        var outside = Manifest(Blob("outside", MediaTypes.OciConfig), []).Descriptor;
        var m1 = Manifest(Blob("c1", MediaTypes.OciConfig), [shared]);
        var m2 = Manifest(Blob("c2", MediaTypes.OciConfig), [shared], subject: outside);
        var index = Index(m1.Descriptor, m2.Descriptor);
        var documents = new Dictionary<Digest, ManifestDocument>
        {
            [m1.Descriptor.Digest] = m1.Document,
            [m2.Descriptor.Digest] = m2.Document,
            [index.Descriptor.Digest] = index.Document,
        };

        // When everything reachable is collected
        var reachable = ImageGraph.Reachable(index.Descriptor, documents);

        // Then index, 2 manifests, 2 configs and the shared layer; not the subject
        Assert.Equal(6, reachable.Count);
        Assert.DoesNotContain(outside.Digest, reachable.Keys);
    }

    [Fact]
    public void ImageGraph_ManifestLevels_ParentsFirstEachLevelOrderedByTheCaller()
    {
        // Given an index over two manifests
        var m1 = Manifest(Blob("x1", MediaTypes.OciConfig), []);
        var m2 = Manifest(Blob("x2", MediaTypes.OciConfig), []);
        var index = Index(m1.Descriptor, m2.Descriptor);
        var documents = new Dictionary<Digest, ManifestDocument>
        {
            [m1.Descriptor.Digest] = m1.Document,
            [m2.Descriptor.Digest] = m2.Document,
            [index.Descriptor.Digest] = index.Document,
        };

        // When walked level by level, ordered by digest
        var levels = ImageGraph.ManifestLevels([index.Descriptor], d => documents[d.Digest], l => l.OrderBy(d => d.Digest.ToString(), StringComparer.Ordinal)).ToList();

        // Then the root alone, then both children in digest order
        Assert.Equal(2, levels.Count);
        Assert.Equal(index.Descriptor.Digest, Assert.Single(levels[0]).Digest);
        Assert.Equal(new[] { m1.Descriptor.Digest, m2.Descriptor.Digest }.OrderBy(d => d.ToString(), StringComparer.Ordinal), levels[1].Select(d => d.Digest));
    }
}
