using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Tests.Core;

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "openlm-core-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>Small content helpers independent of the product's hashing code.</summary>
internal static class TestContent
{
    public static string Sha256(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    public static byte[] Random(int size, int seed)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static Descriptor DescriptorOf(string mediaType, byte[] content) => new()
    {
        MediaType = mediaType,
        Digest = Digest.Parse(Sha256(content)),
        Size = content.Length,
    };

    public static string DescriptorJson(string mediaType, byte[] content, string? extra = null) =>
        $"{{\"mediaType\":\"{mediaType}\",\"digest\":\"{Sha256(content)}\",\"size\":{content.Length}{(extra is null ? string.Empty : "," + extra)}}}";
}

/// <summary>
/// Writes an OCI image layout by hand (plain file writes and SHA-256), so layout tests do not depend on the
/// code under test to build their fixtures.
/// </summary>
internal sealed class HandLayout
{
    private readonly List<JsonObject> _entries = [];

    public HandLayout(string root)
    {
        Root = root;
        Directory.CreateDirectory(System.IO.Path.Combine(root, "blobs", "sha256"));
        File.WriteAllText(System.IO.Path.Combine(root, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        WriteIndex();
    }

    public string Root { get; }

    public string BlobPath(string digest) => System.IO.Path.Combine(Root, "blobs", "sha256", digest["sha256:".Length..]);

    public string AddBlob(byte[] content)
    {
        var digest = TestContent.Sha256(content);
        File.WriteAllBytes(BlobPath(digest), content);
        return digest;
    }

    /// <summary>An image manifest with a config and <paramref name="layers"/>; returns its bytes.</summary>
    public byte[] AddImage(string mediaType, string configMediaType, string layerMediaType, byte[] config, params byte[][] layers)
    {
        AddBlob(config);
        foreach (var layer in layers)
        {
            AddBlob(layer);
        }

        var manifest = TestContent.Utf8(
            $"{{\"schemaVersion\":2,\"mediaType\":\"{mediaType}\",\"config\":{TestContent.DescriptorJson(configMediaType, config)}," +
            $"\"layers\":[{string.Join(',', layers.Select(l => TestContent.DescriptorJson(layerMediaType, l)))}]}}");
        AddBlob(manifest);
        return manifest;
    }

    public void Name(string refName, string mediaType, byte[] manifest)
    {
        _entries.Add(new JsonObject
        {
            ["mediaType"] = mediaType,
            ["digest"] = TestContent.Sha256(manifest),
            ["size"] = manifest.Length,
            ["annotations"] = new JsonObject { ["org.opencontainers.image.ref.name"] = refName },
        });
        WriteIndex();
    }

    private void WriteIndex()
    {
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.OciIndex,
            ["manifests"] = new JsonArray(_entries.Select(e => (JsonNode)e.DeepClone()).ToArray()),
        };
        File.WriteAllText(System.IO.Path.Combine(Root, "index.json"), index.ToJsonString());
    }
}
