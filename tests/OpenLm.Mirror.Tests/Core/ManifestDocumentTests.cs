using System.Text;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

public sealed class ManifestDocumentTests
{
    private static readonly byte[] Config = Encoding.UTF8.GetBytes("{\"architecture\":\"amd64\",\"os\":\"linux\"}");
    private static readonly byte[] Layer1 = TestContent.Random(100, 1);
    private static readonly byte[] Layer2 = TestContent.Random(200, 2);
    private static readonly byte[] Empty = Encoding.UTF8.GetBytes("{}");

    private static string Desc(string mediaType, byte[] content, string? extra = null) => TestContent.DescriptorJson(mediaType, content, extra);

    private static byte[] Bytes(string json) => Encoding.UTF8.GetBytes(json);

    [Fact]
    public void ManifestDocument_Parse_DockerSchema2Manifest_ReadsConfigAndLayers()
    {
        // Given a Docker schema2 image manifest
        var json = $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.DockerManifest}\",\"config\":{Desc(MediaTypes.DockerConfig, Config)},\"layers\":[{Desc(MediaTypes.DockerLayer, Layer1)},{Desc(MediaTypes.DockerLayer, Layer2)}]}}";
        var bytes = Bytes(json);

        // When it is parsed
        var doc = ManifestDocument.Parse(bytes, null, "test");

        // Then it is an image with config first among its children and the bytes kept as they were
        Assert.Equal(MediaTypes.DockerManifest, doc.MediaType);
        Assert.False(doc.IsIndex);
        Assert.Equal(TestContent.Sha256(Config), doc.Config!.Digest.ToString());
        Assert.Equal(Config.Length, doc.Config.Size);
        Assert.Equal([TestContent.Sha256(Layer1), TestContent.Sha256(Layer2)], doc.Layers.Select(l => l.Digest.ToString()));
        Assert.Equal([TestContent.Sha256(Config), TestContent.Sha256(Layer1), TestContent.Sha256(Layer2)], doc.Children.Select(c => c.Digest.ToString()));
        Assert.Equal(bytes, doc.Bytes.ToArray());
    }

    [Fact]
    public void ManifestDocument_Parse_DockerManifestList_ReadsPlatforms()
    {
        // Given a Docker manifest list with two platforms
        var m1 = Bytes("{\"schemaVersion\":2}");
        var m2 = Bytes("{\"schemaVersion\":2 }");
        var json = $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.DockerManifestList}\",\"manifests\":[" +
                   $"{Desc(MediaTypes.DockerManifest, m1, "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}")}," +
                   $"{Desc(MediaTypes.DockerManifest, m2, "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}")}]}}";

        // When it is parsed
        var doc = ManifestDocument.Parse(Bytes(json), MediaTypes.DockerManifestList, "test");

        // Then it is an index whose children carry their platforms
        Assert.True(doc.IsIndex);
        Assert.Null(doc.Config);
        Assert.Equal(["linux/amd64", "linux/arm/v7"], doc.Manifests.Select(m => m.Platform!.ToString()));
        Assert.Equal(doc.Manifests, doc.Children);
    }

    [Fact]
    public void ManifestDocument_Parse_OciManifestAndIndex_ReadAnnotationsAndSubject()
    {
        // Given an OCI manifest with annotations and a subject, and an OCI index with annotations
        var subject = Bytes("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}");
        var manifest = $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciManifest}\",\"config\":{Desc(MediaTypes.OciConfig, Config)},\"layers\":[{Desc(MediaTypes.OciLayerGzip, Layer1)}]," +
                       $"\"subject\":{Desc(MediaTypes.OciManifest, subject)},\"annotations\":{{\"org.opencontainers.image.created\":\"2026-01-01T00:00:00Z\"}}}}";
        var index = $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciIndex}\",\"manifests\":[{Desc(MediaTypes.OciManifest, Bytes(manifest))}],\"annotations\":{{\"a\":\"b\"}}}}";

        // When both are parsed
        var m = ManifestDocument.Parse(Bytes(manifest), MediaTypes.OciManifest, "m");
        var i = ManifestDocument.Parse(Bytes(index), MediaTypes.OciIndex, "i");

        // Then their fields are read
        Assert.Equal(MediaTypes.OciManifest, m.MediaType);
        Assert.Equal(TestContent.Sha256(subject), m.Subject!.Digest.ToString());
        Assert.Equal("2026-01-01T00:00:00Z", m.Annotations!["org.opencontainers.image.created"]);
        Assert.Equal(MediaTypes.OciIndex, i.MediaType);
        Assert.Single(i.Manifests);
        Assert.Equal("b", i.Annotations!["a"]);
    }

    [Fact]
    public void ManifestDocument_Parse_OciArtifactWithEmptyConfig_ReadsArtifactType()
    {
        // Given an OCI artifact: artifactType, the empty config descriptor, a custom layer type
        var json = $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciManifest}\",\"artifactType\":\"application/vnd.openlm.test.artifact.v1\"," +
                   $"\"config\":{Desc(MediaTypes.OciEmpty, Empty, "\"data\":\"e30=\"")},\"layers\":[{Desc("application/vnd.openlm.test.payload.v1", Layer1)}]}}";

        // When it is parsed
        var doc = ManifestDocument.Parse(Bytes(json), null, "artifact");

        // Then it is an image manifest with the artifact type and the empty config as a child
        Assert.Equal("application/vnd.openlm.test.artifact.v1", doc.ArtifactType);
        Assert.Equal(MediaTypes.OciEmpty, doc.Config!.MediaType);
        Assert.Equal("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", doc.Config.Digest.ToString());
        Assert.Equal(2, doc.Children.Count());
    }

    [Fact]
    public void ManifestDocument_Parse_ManifestWithoutLayers_HasOnlyConfig()
    {
        // Given an OCI manifest without a layers field
        var json = $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciManifest}\",\"config\":{Desc(MediaTypes.OciEmpty, Empty)}}}";

        // When it is parsed
        var doc = ManifestDocument.Parse(Bytes(json), null, "x");

        // Then it has no layers
        Assert.Empty(doc.Layers);
        Assert.Single(doc.Children);
    }

    [Theory]
    [InlineData(MediaTypes.DockerManifest, true, MediaTypes.DockerManifest)]
    [InlineData("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8", true, MediaTypes.DockerManifest)]
    [InlineData(null, true, MediaTypes.OciManifest)]
    [InlineData("application/json", true, MediaTypes.OciManifest)]
    [InlineData(MediaTypes.DockerManifestList, false, MediaTypes.DockerManifestList)]
    [InlineData(null, false, MediaTypes.OciIndex)]
    [InlineData("text/plain", false, MediaTypes.OciIndex)]
    public void ManifestDocument_Parse_MissingMediaType_InfersFromDeclaredTypeOrShape(string? declared, bool image, string expected)
    {
        // Given a manifest without an embedded mediaType
        var json = image
            ? $"{{\"schemaVersion\":2,\"config\":{Desc(MediaTypes.OciConfig, Config)},\"layers\":[]}}"
            : $"{{\"schemaVersion\":2,\"manifests\":[]}}";

        // When it is parsed with a declared Content-Type (or none)
        var doc = ManifestDocument.Parse(Bytes(json), declared, "x");

        // Then the declared manifest type wins, else the shape decides
        Assert.Equal(expected, doc.MediaType);
    }

    [Fact]
    public void ManifestDocument_Parse_DockerSchema1_IsRefusedWithAdvice()
    {
        // Given a Docker schema1 signed manifest
        var json = "{\"schemaVersion\":1,\"name\":\"library/mongo\",\"tag\":\"2.6\",\"architecture\":\"amd64\",\"fsLayers\":[],\"history\":[],\"signatures\":[]}";

        // When it is parsed (even with a schema2 Content-Type)
        var ex = Assert.Throws<InputException>(() => ManifestDocument.Parse(Bytes(json), "application/vnd.docker.distribution.manifest.v1+prettyjws", "docker.io/library/mongo:2.6"));

        // Then it is refused, naming the source and saying what to do
        Assert.StartsWith("docker.io/library/mongo:2.6: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains("schema 1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("re-push", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ManifestDocument_Parse_LargerThan4MiB_IsRefused()
    {
        // Given a manifest one byte over 4 MiB
        var bytes = new byte[ManifestDocument.MaxManifestBytes + 1];

        // When it is parsed
        var ex = Assert.Throws<InputException>(() => ManifestDocument.Parse(bytes, MediaTypes.OciManifest, "big"));

        // Then the size and the limit are named
        Assert.Contains($"{ManifestDocument.MaxManifestBytes + 1} bytes", ex.Message, StringComparison.Ordinal);
        Assert.Contains("4194304 byte limit", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ManifestDocument_Parse_Exactly4MiB_IsNotRefusedForSize()
    {
        // Given a valid index padded with whitespace to exactly 4 MiB
        var head = Bytes("{\"schemaVersion\":2,\"manifests\":[]");
        var bytes = new byte[ManifestDocument.MaxManifestBytes];
        Array.Fill(bytes, (byte)' ');
        head.CopyTo(bytes, 0);
        bytes[^1] = (byte)'}';

        // When it is parsed
        var doc = ManifestDocument.Parse(bytes, null, "big");

        // Then it is accepted
        Assert.True(doc.IsIndex);
    }

    [Theory]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"sha256:xyz\",\"size\":1}}", "config", "sha256:xyz")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}}", "config", "size")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"size\":0}}", "config", "mediaType")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"\",\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"size\":0}}", "config", "needs mediaType")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"size\":-1}}", "config", "negative size")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"size\":\"12\"}}", "config", "")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":null,\"size\":1}}", "config", "digest is empty")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"size\":0},\"layers\":[1]}", "layers[0]", "")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"size\":0},\"layers\":{}}", "'layers' is not an array", "")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\"}", "missing 'manifests' array", "")]
    [InlineData("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"size\":0,\"platform\":{\"os\":\"linux\"}}]}", "manifests[0]", "architecture")]
    public void ManifestDocument_Parse_MalformedDescriptor_NamesTheFieldAndProblem(string json, string where, string what)
    {
        // Given a manifest with one malformed descriptor
        // When it is parsed
        var ex = Assert.Throws<InputException>(() => ManifestDocument.Parse(Bytes(json), null, "reg/repo:tag"));

        // Then the message names the source, the descriptor and what is wrong
        Assert.StartsWith("reg/repo:tag: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(where, ex.Message, StringComparison.Ordinal);
        Assert.Contains(what, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "not valid JSON")]
    [InlineData("{", "not valid JSON")]
    [InlineData("[]", "not a JSON object")]
    [InlineData("{\"schemaVersion\":2}", "cannot tell the manifest type")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"config\":{}}", "unsupported manifest media type 'application/vnd.oci.image.layer.v1.tar'")]
    [InlineData("{\"schemaVersion\":3,\"manifests\":[]}", "schemaVersion is 3")]
    [InlineData("{\"manifests\":[]}", "schemaVersion is 0")]
    [InlineData("{\"schemaVersion\":2,\"config\":\"nope\"}", "no config descriptor")]
    [InlineData("{\"schemaVersion\":2.5,\"manifests\":[]}", "schemaVersion")]
    [InlineData("{\"schemaVersion\":1e12,\"manifests\":[]}", "schemaVersion")]
    [InlineData("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"a\":1}}", "annotations")]
    public void ManifestDocument_Parse_MalformedDocument_ThrowsInputException(string json, string what)
    {
        // Given a malformed manifest document
        // When it is parsed
        var ex = Assert.Throws<InputException>(() => ManifestDocument.Parse(Bytes(json), null, "src"));

        // Then it is an input error that says what is wrong
        Assert.StartsWith("src: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(what, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("  ", null)]
    [InlineData("application/json", "application/json")]
    [InlineData(" application/json ; charset=utf-8", "application/json")]
    public void ManifestDocument_NormaliseContentType_StripsParameters(string? input, string? expected)
    {
        // Given a Content-Type header value
        // When it is normalised
        // Then parameters and whitespace are removed
        Assert.Equal(expected, ManifestDocument.NormaliseContentType(input));
    }
}
