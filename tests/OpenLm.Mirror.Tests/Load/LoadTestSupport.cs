using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.EngineLoad;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestKit;

namespace OpenLm.Mirror.Tests.Load;

/// <summary>A temporary directory for one test, removed on dispose.</summary>
internal sealed class LoadTemp : IDisposable
{
    public LoadTemp() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "openlm-load-tests", Guid.NewGuid().ToString("N")[..12]);

    public string Sub(string name)
    {
        var path = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(path);
        return path;
    }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A signed bundle made from the TestKit's small sample platform (every kind of image, a chart, an artifact).</summary>
internal sealed class SampleBundle
{
    public const string Registry = "public.ecr.aws";
    public const string Source = Registry + "/r3q3q2f4";

    private SampleBundle(GeneratedPlatform platform, string path, SigningKey key, string publicKeyPath)
    {
        Platform = platform;
        Path = path;
        Key = key;
        PublicKeyPath = publicKeyPath;
    }

    public GeneratedPlatform Platform { get; }

    public string Path { get; }

    public SigningKey Key { get; }

    /// <summary>The public key as a PEM file (for the CLI).</summary>
    public string PublicKeyPath { get; }

    /// <summary>The full reference of a generated image in the bundle.</summary>
    public static string FullReference(GeneratedImage image) => $"{Registry}/{image.Reference}";

    /// <summary>
    /// Generates the platform into <paramref name="directory"/>/layout, names every image by its full source reference
    /// (<c>public.ecr.aws/…</c>), optionally lets <paramref name="edit"/> change the index entries, and writes the bundle.
    /// </summary>
    public static async Task<SampleBundle> CreateAsync(
        string directory,
        int seed = 1,
        string @namespace = SamplePlatform.DefaultNamespace,
        Func<OciLayoutStore, List<Descriptor>, Task>? edit = null,
        BundleCompression compression = BundleCompression.None)
    {
        var layoutDir = System.IO.Path.Combine(directory, "layout");
        var platform = SamplePlatform.Small(seed, @namespace).WriteLayout(layoutDir);
        var store = OciLayoutStore.Open(layoutDir, create: false);
        var entries = (await store.ReadIndexAsync()).Select(e => e.WithRefName($"{Registry}/{e.RefName}")).ToList();
        if (edit is not null)
        {
            await edit(store, entries);
        }

        await store.ReplaceIndexAsync(entries);
        var keyBase = System.IO.Path.Combine(directory, "release");
        KeyPairGenerator.Generate(keyBase, passphrase: null);
        var key = SigningKey.Load(keyBase + ".key");
        var path = System.IO.Path.Combine(directory, compression == BundleCompression.Zstd ? "bundle.tar.zst" : "bundle.tar");
        await BundleWriter.WriteAsync(store, new BundleManifest
        {
            Platform = new BundleProduct { Name = "olm", Version = "1.0.0" },
            Tool = new BundleProduct { Name = "openlm-mirror", Version = "0.1.0" },
            Source = $"{Registry}/{@namespace}",
        }, key, path, new BundleWriteOptions { Compression = compression });
        return new SampleBundle(platform, path, key, keyBase + ".pub");
    }

    public VerificationKey VerificationKey() => Key.GetVerificationKey();
}

/// <summary>
/// Stands in for a Docker engine: reads the archive it is given like <c>docker load</c> would (manifest.json, configs,
/// layers), reports <c>Loaded image</c> for every tag and answers inspects from what it loaded.
/// </summary>
internal sealed class FakeEngine : IImageEngine
{
    public FakeEngine(string platform = "linux/amd64") => Info = new EngineInfo
    {
        Endpoint = "unix:///fake.sock",
        Version = "20.10.24",
        EngineApiVersion = "1.41",
        MinApiVersion = "1.12",
        ApiVersion = new Version(1, 41),
        Platform = Platform.Parse(platform),
    };

    public EngineInfo Info { get; }

    public int LoadCalls { get; private set; }

    /// <summary>Every entry of the last archive, by name.</summary>
    public Dictionary<string, byte[]> Entries { get; } = new(StringComparer.Ordinal);

    /// <summary>Entry names in archive order.</summary>
    public List<string> EntryOrder { get; } = [];

    public List<ArchiveManifestEntry> Manifest { get; } = [];

    /// <summary>Bytes read from the archive stream.</summary>
    public long BytesRead { get; private set; }

    /// <summary>Tags not to report as loaded (to simulate an engine that lost one).</summary>
    public HashSet<string> Unreported { get; } = new(StringComparer.Ordinal);

    private readonly Dictionary<string, EngineImage> _images = new(StringComparer.Ordinal);

    public async Task<IReadOnlyList<string>> LoadAsync(Stream archive, CancellationToken cancellationToken)
    {
        LoadCalls++;
        var buffer = new MemoryStream();
        await archive.CopyToAsync(buffer, 7919, cancellationToken); // odd buffer size: exercises partial reads
        BytesRead = buffer.Length;
        buffer.Position = 0;
        using (var reader = new TarReader(buffer))
        {
            while (await reader.GetNextEntryAsync(cancellationToken: cancellationToken) is { } entry)
            {
                var data = new MemoryStream();
                if (entry.DataStream is not null)
                {
                    await entry.DataStream.CopyToAsync(data, cancellationToken);
                }

                Entries[entry.Name] = data.ToArray();
                EntryOrder.Add(entry.Name);
            }
        }

        Manifest.AddRange(JsonSerializer.Deserialize<List<ArchiveManifestEntry>>(Entries[DockerArchive.ManifestEntry])!);
        var loaded = new List<string>();
        foreach (var image in Manifest)
        {
            var config = Entries[image.Config];
            var id = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(config));
            using var doc = JsonDocument.Parse(config);
            var diffIds = doc.RootElement.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray().Select(e => e.GetString()!).ToList();
            if (diffIds.Count != image.Layers.Count)
            {
                throw new OperationException("invalid manifest, layers length mismatch");
            }

            foreach (var tag in image.RepoTags)
            {
                _images[tag] = new EngineImage(id, image.RepoTags, diffIds);
                if (!Unreported.Contains(tag))
                {
                    loaded.Add(tag);
                }
            }
        }

        return loaded;
    }

    public Task<EngineImage?> InspectAsync(string reference, CancellationToken cancellationToken) =>
        Task.FromResult(_images.GetValueOrDefault(reference));
}

/// <summary>A <c>manifest.json</c> entry of a docker archive.</summary>
internal sealed record ArchiveManifestEntry(string Config, List<string> RepoTags, List<string> Layers);

/// <summary>Collects log lines.</summary>
internal sealed class ListLog : IMirrorLog
{
    public List<(LogLevel Level, string Message)> Lines { get; } = [];

    public IEnumerable<string> Warnings => Lines.Where(l => l.Level == LogLevel.Warning).Select(l => l.Message);

    public void Write(LogLevel level, string message)
    {
        lock (Lines)
        {
            Lines.Add((level, message));
        }
    }
}
