using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Export;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestKit;
using OpenLm.Mirror.Tests.Core;
using OpenLm.Mirror.Tests.Support;

namespace OpenLm.Mirror.Tests.Export;

/// <summary>The TestKit's small platform generated once per test class: the "public" images every export test serves.</summary>
public sealed class SamplePlatformFixture : IDisposable
{
    private readonly TempDirectory _dir = new();

    public SamplePlatformFixture() => Platform = SamplePlatform.Small(seed: 31).WriteLayout(_dir.Sub("gen"));

    public GeneratedPlatform Platform { get; }

    public void Dispose() => _dir.Dispose();
}

/// <summary>
/// What one export test owns: a fake registry serving the sample platform under its repositories
/// (<c>r3q3q2f4/olm-server</c>, …), the release's lock resolved against it, a signing key, a log and a scratch directory.
/// </summary>
internal sealed class ExportHarness : IAsyncDisposable
{
    private readonly List<RegistryConnector> _connectors = [];

    private ExportHarness(GeneratedPlatform platform)
    {
        Platform = platform;
        Registry = FakeRegistry.Start();
        Seed(Registry, platform);
    }

    public GeneratedPlatform Platform { get; }

    public FakeRegistry Registry { get; }

    public RecordingLog Log { get; } = new();

    public TempDirectory Directory { get; } = new();

    public SigningKey Key { get; } = SampleBundle.NewKey();

    /// <summary>The platform source the manifest names images under: the fake registry's platform namespace.</summary>
    public string Source => $"{Registry.Authority}/{SamplePlatform.DefaultNamespace}";

    public LockFile Lock { get; private set; } = null!;

    /// <summary>Starts the registry, resolves the release to a lock, and forgets the resolve's requests.</summary>
    public static async Task<ExportHarness> StartAsync(GeneratedPlatform platform)
    {
        var harness = new ExportHarness(platform);
        harness.Lock = await harness.ResolveAsync();
        harness.Registry.Server.ClearRequests();
        return harness;
    }

    public ExportRequest Request(string output, string? cache = null) => new()
    {
        Lock = Lock,
        OutputPath = output,
        CacheDirectory = cache ?? Directory.Sub("cache"),
    };

    public Task<ExportResult> ExportAsync(ExportRequest request, IProgress<long>? bundleProgress = null, int? concurrency = null, ICopyObserver? observer = null)
    {
        var connector = Connector();
        var options = new CopyOptions { Retry = new RetryPolicy(2, Log, TimeSpan.FromMilliseconds(1)), Observer = observer ?? NullCopyObserver.Instance };
        if (concurrency is { } n)
        {
            options.Concurrency = n;
        }

        return new BundleExporter(connector, options, Log).ExportAsync(request, Key, bundleProgress);
    }

    /// <summary>The full source reference the lock gives <paramref name="image"/>.</summary>
    public string SourceRef(GeneratedImage image) => $"{Registry.Authority}/{image.Reference}";

    public async ValueTask DisposeAsync()
    {
        foreach (var connector in _connectors)
        {
            connector.Dispose();
        }

        Key.Dispose();
        await Registry.DisposeAsync();
        Directory.Dispose();
    }

    /// <summary>Stores every image of <paramref name="platform"/> in its repository: blobs, child manifests, then the tagged root.</summary>
    private static void Seed(FakeRegistry registry, GeneratedPlatform platform)
    {
        foreach (var image in platform.Images)
        {
            var repository = registry.Repo(image.Repository);
            foreach (var blob in image.BlobDigests)
            {
                repository.AddBlob(platform.ReadBlob(blob));
            }

            foreach (var child in image.IsIndex ? image.Manifests : [])
            {
                repository.AddManifest(null, platform.ReadBlob(child.Digest), child.MediaType);
            }

            repository.AddManifest(image.Tag, platform.ReadBlob(image.Digest), image.MediaType);
        }
    }

    private RegistryConnector Connector()
    {
        var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true, Retries = 2, RetryBaseDelay = TimeSpan.FromMilliseconds(1), Log = Log });
        _connectors.Add(connector);
        return connector;
    }

    /// <summary>The release as a platform manifest naming every sample image, resolved the way <c>resolve</c> does it.</summary>
    private async Task<LockFile> ResolveAsync()
    {
        var images = string.Join('\n', Platform.Images.Select(i =>
            $"  - name: {SampleBundle.RelativeName(i)}\n    tag: \"{i.Tag}\"\n    values: [{SampleBundle.RelativeName(i).Replace('/', '.')}.image]"));
        var text = $"""
            apiVersion: mirror.openlm.io/v1
            kind: Platform
            name: openlm-platform
            version: "1.0.31"
            source: {Source}
            images:
            {images}
            """;
        var manifest = PlatformManifest.Parse(text, "platform.yaml", Directory.Path);
        var planned = manifest.Images.Select(i => new PlannedImage { Reference = i.Reference, ValuesPaths = i.ValuesPaths, Origins = ["manifest"] }).ToList();
        return await new PlatformResolver(Connector(), Log).ResolveAsync(manifest, planned, []);
    }
}

/// <summary>Reads a tar's entries and the byte range of each (headers included), for comparing bundles entry by entry.</summary>
internal static class TarLayout
{
    /// <summary>Each ustar entry's name, and where its header starts and its padded data ends.</summary>
    public static IReadOnlyList<(string Name, long Start, long End)> Entries(byte[] tar)
    {
        var entries = new List<(string, long, long)>();
        long offset = 0;
        string? longName = null;
        var start = 0L;
        while (offset + 512 <= tar.Length && tar.AsSpan((int)offset, 512).ContainsAnyExcept((byte)0))
        {
            var header = tar.AsSpan((int)offset, 512);
            var size = Convert.ToInt64(System.Text.Encoding.ASCII.GetString(header.Slice(124, 12)).Trim('\0', ' ') is { Length: > 0 } octal ? octal : "0", 8);
            var type = (char)header[156];
            var next = offset + 512 + ((size + 511) / 512 * 512);
            if (longName is null)
            {
                start = offset;
            }

            if (type is 'x' or 'L')
            {
                longName = type.ToString();
                offset = next;
                continue;
            }

            var name = System.Text.Encoding.ASCII.GetString(header[..100]).TrimEnd('\0');
            var prefix = System.Text.Encoding.ASCII.GetString(header.Slice(345, 155)).TrimEnd('\0');
            entries.Add((prefix.Length > 0 ? prefix + "/" + name : name, start, next));
            longName = null;
            offset = next;
        }

        return entries;
    }
}
