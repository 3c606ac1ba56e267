using System.Formats.Tar;
using System.Text;
using System.Text.Json;
using OpenLm.Mirror.EngineLoad;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.Load;

public sealed class DockerArchiveTests : IDisposable
{
    private readonly LoadTemp _temp = new();

    public void Dispose() => _temp.Dispose();

    private DockerArchiveFile File(string name, byte[] content)
    {
        var path = _temp.File(Guid.NewGuid().ToString("N"));
        System.IO.File.WriteAllBytes(path, content);
        return new DockerArchiveFile(name, path, content.Length);
    }

    [Fact]
    public async Task OpenRead_TwoImagesSharingALayer_WritesManifestAndEachFileOnce()
    {
        var digest = Digest.Sha256("x"u8);
        var shared = File(DockerArchive.LayerName(Digest.Sha256("shared"u8)), new byte[1000]);
        var own = File(DockerArchive.LayerName(Digest.Sha256("own"u8)), Encoding.ASCII.GetBytes(new string('a', 512)));
        var empty = File(DockerArchive.LayerName(Digest.Sha256("empty"u8)), []);
        var configA = File(DockerArchive.ConfigName(Digest.Sha256("a"u8)), "{\"a\":1}"u8.ToArray());
        var configB = File(DockerArchive.ConfigName(Digest.Sha256("b"u8)), "{\"b\":2}"u8.ToArray());
        var archive = new DockerArchive(
        [
            new DockerArchiveImage(configA, ["example.com/a:1", "example.com/a:latest"], [shared, own]),
            new DockerArchiveImage(configB, ["example.com/b:1"], [shared, empty]),
        ]);

        var bytes = new MemoryStream();
        await using (var stream = archive.OpenRead())
        {
            await stream.CopyToAsync(bytes, 100);
        }

        Assert.Equal(archive.Length, bytes.Length);
        Assert.Equal(0, bytes.Length % 512);
        bytes.Position = 0;
        var entries = new List<(string Name, byte[] Data)>();
        using (var reader = new TarReader(bytes))
        {
            while (reader.GetNextEntry() is { } entry)
            {
                var data = new MemoryStream();
                entry.DataStream?.CopyTo(data);
                entries.Add((entry.Name, data.ToArray()));
            }
        }

        Assert.Equal([DockerArchive.ManifestEntry, configA.Name, shared.Name, own.Name, configB.Name, empty.Name], entries.Select(e => e.Name));
        Assert.Equal(new byte[1000], entries.Single(e => e.Name == shared.Name).Data);
        Assert.Empty(entries.Single(e => e.Name == empty.Name).Data);
        using var manifest = JsonDocument.Parse(entries[0].Data);
        var first = manifest.RootElement[0];
        Assert.Equal(configA.Name, first.GetProperty("Config").GetString());
        Assert.Equal(["example.com/a:1", "example.com/a:latest"], first.GetProperty("RepoTags").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal([shared.Name, own.Name], first.GetProperty("Layers").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(digest.Hex + "/layer.tar", DockerArchive.LayerName(digest));
    }

    [Fact]
    public async Task OpenRead_SpooledFileChanged_FailsInsteadOfSendingAShortEntry()
    {
        var layer = File(DockerArchive.LayerName(Digest.Sha256("l"u8)), new byte[2000]);
        var config = File(DockerArchive.ConfigName(Digest.Sha256("c"u8)), "{}"u8.ToArray());
        var archive = new DockerArchive([new DockerArchiveImage(config, ["example.com/a:1"], [layer])]);
        System.IO.File.WriteAllBytes(layer.Path, new byte[10]);

        await using var stream = archive.OpenRead();
        await Assert.ThrowsAsync<IOException>(() => stream.CopyToAsync(Stream.Null));
    }
}
