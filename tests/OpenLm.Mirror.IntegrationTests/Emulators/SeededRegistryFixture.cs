using OpenLm.Mirror.IntegrationTests.Infrastructure;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Emulators;

/// <summary>One real Distribution registry per test class, seeded with a small single-layer image.</summary>
public sealed class SeededRegistryFixture : IAsyncLifetime
{
    public const string Repository = "emulator/sample";
    public const string Tag = "1.0";

    private RegistryProcess? _registry;
    private SeededImage? _image;

    public RegistryProcess Registry => _registry ?? throw new InvalidOperationException("Fixture not initialized.");

    public SeededImage Image => _image ?? throw new InvalidOperationException("Fixture not initialized.");

    public Uri Upstream => Registry.BaseAddress;

    public async Task InitializeAsync()
    {
        _registry = await RegistryProcess.StartAsync();
        using var client = RegistrySeeder.CreateClient();
        _image = await RegistrySeeder.PushImageAsync(client, _registry.BaseAddress, Repository, Tag, layerSize: 256 * 1024, seed: 42);
    }

    public async Task DisposeAsync()
    {
        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }
    }
}
