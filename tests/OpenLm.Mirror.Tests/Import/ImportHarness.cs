using OpenLm.Mirror.Import;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Tests.Core;
using OpenLm.Mirror.Tests.Support;

namespace OpenLm.Mirror.Tests.Import;

/// <summary>
/// What one import test owns: a fresh fake registry (which checks a manifest's references like Distribution does), a
/// log that records warnings, a scratch directory, and the connectors it made.
/// </summary>
internal sealed class ImportHarness : IAsyncDisposable
{
    private readonly List<RegistryConnector> _connectors = [];

    public ImportHarness(bool requireToken = false)
    {
        Registry = FakeRegistry.Start(requireToken);
        Registry.CheckManifestReferences = true;
    }

    public FakeRegistry Registry { get; }

    public RecordingLog Log { get; } = new();

    public TempDirectory Directory { get; } = new();

    /// <summary>The <c>--to</c> target: the fake registry with the <see cref="ImportNames.Prefix"/> prefix.</summary>
    public string Target => $"{Registry.Authority}/{ImportNames.Prefix}";

    /// <summary>A request for <paramref name="bundle"/> into <see cref="Target"/>, verified with its key, no pause between passes.</summary>
    public ImportRequest Request(SampleBundle bundle) => new()
    {
        BundlePath = bundle.Path,
        Key = bundle.Key,
        Target = Target,
        PassDelay = TimeSpan.Zero,
    };

    public BundleImporter Importer(int retries = 3)
    {
        var connector = new RegistryConnector(new RegistryOptions
        {
            PlainHttp = true,
            Retries = retries,
            RetryBaseDelay = TimeSpan.FromMilliseconds(1),
            Log = Log,
        });
        _connectors.Add(connector);
        return new BundleImporter(connector, Log);
    }

    public Task<ImportResult> ImportAsync(ImportRequest request, int retries = 3) => Importer(retries).ImportAsync(request);

    /// <summary>The repository <paramref name="name"/> if anything was stored in it.</summary>
    public FakeRepository? Stored(string name) =>
        Registry.Repositories.TryGetValue(name, out var repository) && (!repository.Blobs.IsEmpty || !repository.Manifests.IsEmpty) ? repository : null;

    /// <summary>Every repository that holds something.</summary>
    public IEnumerable<FakeRepository> NonEmptyRepositories =>
        Registry.Repositories.Values.Where(r => !r.Blobs.IsEmpty || !r.Manifests.IsEmpty);

    public async ValueTask DisposeAsync()
    {
        foreach (var connector in _connectors)
        {
            connector.Dispose();
        }

        await Registry.DisposeAsync();
        Directory.Dispose();
    }
}
