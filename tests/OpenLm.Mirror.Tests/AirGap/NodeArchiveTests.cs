using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.NodeArchive;
using Xunit;
using ZstdSharp;
using static OpenLm.Mirror.Tests.AirGap.ChartBundleFixture;

namespace OpenLm.Mirror.Tests.AirGap;

/// <summary><c>node-archive</c>: the bundle's images as one OCI layout archive for k3s/RKE2 auto-import and <c>ctr images import</c>.</summary>
public sealed class NodeArchiveTests(ChartBundleFixture bundle) : IClassFixture<ChartBundleFixture>
{
    [Fact]
    public async Task NodeArchive_Zstd_HoldsEveryImageByNameAndDigestNoChartsAndASmallWindow()
    {
        // Given a bundle of images and three charts
        var output = Path.Combine(bundle.NewDirectory(), "openlm-images.tar.zst");

        // When the node archive is written
        var (exit, stdout, stderr) = await RunAsync("node-archive", bundle.BundlePath, "--key", bundle.PublicKey, "-o", output);
        var (jsonExit, json, jsonErr) = await RunAsync("node-archive", bundle.BundlePath, "--key", bundle.PublicKey, "-o", output, "--force", "--json");

        // Then it says where it goes on k3s and RKE2 nodes
        Assert.True(exit == 0, stderr);
        Assert.Contains("/var/lib/rancher/k3s/agent/images/openlm-images.tar.zst", stdout, StringComparison.Ordinal);
        Assert.Contains("/var/lib/rancher/rke2/agent/images/openlm-images.tar.zst", stdout, StringComparison.Ordinal);

        // And the zstd window is within what k3s's decoder takes
        Assert.InRange(ZstdWindow(output), 1, NodeArchiveWriter.MaxWindowBytes);

        // And the tar is an OCI layout whose blobs all match their names
        var entries = ReadTar(new DecompressionStream(File.OpenRead(output)));
        Assert.Equal(["oci-layout", "index.json"], entries.Keys.Take(2));
        foreach (var (name, bytes) in entries.Where(e => e.Key.StartsWith("blobs/", StringComparison.Ordinal)))
        {
            Assert.Equal(name["blobs/sha256/".Length..], Convert.ToHexStringLower(SHA256.HashData(bytes)));
        }

        Assert.True(jsonExit == 0, jsonErr);
        AssertIndexNamesEveryImage(entries, bundle.Written.Manifest, json);
    }

    [Fact]
    public async Task NodeArchive_PlainTar_IsTheSameLayoutUncompressed()
    {
        var output = Path.Combine(bundle.NewDirectory(), "openlm-images.tar");

        var (exit, json, stderr) = await RunAsync("node-archive", bundle.BundlePath, "--key", bundle.PublicKey, "-o", output, "--json");

        Assert.True(exit == 0, stderr);
        var entries = ReadTar(File.OpenRead(output));
        AssertIndexNamesEveryImage(entries, bundle.Written.Manifest, json);
    }

    [Theory]
    [InlineData("images.tar.gz", 2, "must end in .tar, .tar.zst or .tzst")]
    [InlineData("images.zip", 2, "must end in .tar, .tar.zst or .tzst")]
    public async Task NodeArchive_NameK3sWouldNotImport_IsRefused(string name, int code, string message)
    {
        var output = Path.Combine(bundle.NewDirectory(), name);

        var (exit, _, stderr) = await RunAsync("node-archive", bundle.BundlePath, "--key", bundle.PublicKey, "-o", output);

        Assert.Equal(code, exit);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task NodeArchive_WithoutKey_IsRefusedAsIntegrity()
    {
        var output = Path.Combine(bundle.NewDirectory(), "a.tar");

        var (exit, _, stderr) = await RunAsync("node-archive", bundle.BundlePath, "-o", output);

        Assert.Equal(3, exit);
        Assert.Contains("--key", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task NodeArchive_ExistingFile_IsKeptWithoutForce()
    {
        var output = Path.Combine(bundle.NewDirectory(), "a.tar");
        await File.WriteAllTextAsync(output, "mine");

        var (exit, _, stderr) = await RunAsync("node-archive", bundle.BundlePath, "--key", bundle.PublicKey, "-o", output);

        Assert.Equal(2, exit);
        Assert.Contains("--force", stderr, StringComparison.Ordinal);
        Assert.Equal("mine", await File.ReadAllTextAsync(output));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(output)!));
    }

    [Fact]
    public async Task NodeArchive_CorruptLayer_FailsAsIntegrityAndLeavesNoFile()
    {
        // Given a copy of the bundle with one byte flipped inside a layer of an image (the signed head still verifies)
        var dir = bundle.NewDirectory();
        var corrupt = Path.Combine(dir, "corrupt.tar");
        File.Copy(bundle.BundlePath, corrupt);
        BundleEntry entry;
        using (var key = Signing.VerificationKey.Load(bundle.PublicKey))
        {
            await using var source = await BundleSource.OpenAsync(corrupt, new BundleOpenOptions { Key = key });
            var root = await source.ResolveAsync(TestFixtures.TestChartBuilder.DefaultSource + "/olm-server:1.260716.1540");
            var layers = Oci.ImageGraph.Reachable(root, source.Documents).Values.Where(d => !source.Documents.ContainsKey(d.Digest)).ToList();
            entry = source.Blobs.Where(b => layers.Any(l => l.Digest == b.Descriptor.Digest)).MaxBy(b => b.Descriptor.Size)!;
        }

        await using (var file = new FileStream(corrupt, FileMode.Open, FileAccess.ReadWrite))
        {
            var at = entry.Offset + (entry.Descriptor.Size / 2);
            file.Position = at;
            var b = file.ReadByte();
            file.Position = at;
            file.WriteByte((byte)(b ^ 0x5A));
        }

        // When the node archive is written from it
        var output = Path.Combine(dir, "openlm-images.tar.zst");
        var (exit, _, stderr) = await RunAsync("node-archive", corrupt, "--key", bundle.PublicKey, "-o", output);

        // Then it fails as an integrity error naming the digest, and neither the archive nor a partial file is left
        Assert.Equal(3, exit);
        Assert.Contains(entry.Descriptor.Digest.ToString(), stderr, StringComparison.Ordinal);
        Assert.Equal(["corrupt.tar"], Directory.GetFiles(dir).Select(Path.GetFileName));
    }

    [Fact]
    public async Task NodeArchive_UnknownPlatform_IsRefusedNamingIt()
    {
        var output = Path.Combine(bundle.NewDirectory(), "a.tar");

        var (exit, _, stderr) = await RunAsync("node-archive", bundle.BundlePath, "--key", bundle.PublicKey, "-o", output, "--platform", "linux/s390x");

        Assert.Equal(2, exit);
        Assert.Contains("linux/s390x", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    /// <summary>
    /// index.json names each image root of the bundle by its reference and by its digest reference, and nothing else:
    /// the report leaves out exactly the three charts and the TestKit's one non-image artifact.
    /// </summary>
    private static void AssertIndexNamesEveryImage(Dictionary<string, byte[]> entries, BundleManifest manifest, string json)
    {
        using var report = JsonDocument.Parse(json);
        var skipped = report.RootElement.GetProperty("skipped").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Equal(3, skipped.Count(s => s.Contains("(a Helm chart", StringComparison.Ordinal)));
        var artifact = Assert.Single(skipped, s => s.Contains("(not a container image", StringComparison.Ordinal));
        Assert.Equal(4, skipped.Count);
        var artifactReference = artifact[..artifact.IndexOf(' ', StringComparison.Ordinal)];

        using var index = JsonDocument.Parse(entries["index.json"]);
        var named = index.RootElement.GetProperty("manifests").EnumerateArray()
            .Select(m => (Name: m.GetProperty("annotations").GetProperty(NodeArchiveWriter.ContainerdImageName).GetString()!, Digest: m.GetProperty("digest").GetString()!))
            .ToList();
        var expected = manifest.Images
            .Where(i => i.Reference != artifactReference)
            .SelectMany(i => new[] { (i.Reference, i.Digest), (Oci.Reference.Parse(i.Reference).Name + "@" + i.Digest, i.Digest) })
            .ToList();
        Assert.Equal(expected.Order(), named.Order());
        Assert.DoesNotContain(named, n => manifest.Charts.Any(c => c.Digest == n.Digest));
        foreach (var (_, digest) in named)
        {
            Assert.True(entries.ContainsKey("blobs/sha256/" + digest["sha256:".Length..]), digest);
        }

        // And every blob a chart needs only (its chart archive) is left out
        Assert.DoesNotContain(entries.Keys, k => manifest.Charts.Any(c => k.EndsWith(c.Digest["sha256:".Length..], StringComparison.Ordinal)));
    }

    private static Dictionary<string, byte[]> ReadTar(Stream stream)
    {
        using (stream)
        {
            using var tar = new TarReader(stream);
            var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            while (tar.GetNextEntry() is { } entry)
            {
                using var buffer = new MemoryStream();
                entry.DataStream?.CopyTo(buffer);
                entries.Add(entry.Name, buffer.ToArray());
            }

            return entries;
        }
    }

    /// <summary>The window size a zstd frame header declares (RFC 8878 3.1.1.1).</summary>
    private static long ZstdWindow(string path)
    {
        var header = new byte[14];
        using (var file = File.OpenRead(path))
        {
            file.ReadExactly(header);
        }

        Assert.Equal(0xFD2FB528u, BitConverter.ToUInt32(header, 0));
        var descriptor = header[4];
        var singleSegment = (descriptor & 0x20) != 0;
        Assert.False(singleSegment, "a streamed archive has no single-segment frame");
        var window = header[5];
        var windowBase = 1L << (10 + (window >> 3));
        return windowBase + (windowBase / 8 * (window & 7));
    }
}
