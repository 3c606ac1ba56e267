using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// One plain (HTTP, anonymous, 127.0.0.1) registry shared by every test class in the
/// <see cref="RegistryCollection"/> collection. Tests sharing it must use their own repository
/// names (e.g. <see cref="UniqueRepository"/>) and must not stop or restart it.
/// </summary>
/// <example>
/// <code>
/// [Collection(RegistryCollection.Name)]
/// [Trait("Category", "Integration")]
/// public sealed class MyTests(SharedRegistryFixture registry) { ... registry.Host ... }
/// </code>
/// </example>
public sealed class SharedRegistryFixture : IAsyncLifetime
{
    /// <summary>The shared registry.</summary>
    public RegistryContainer Registry { get; } = new();

    /// <summary>"127.0.0.1:port".</summary>
    public string Host => Registry.Host;

    /// <summary><c>http://127.0.0.1:port/</c>.</summary>
    public Uri BaseUri => Registry.BaseUri;

    /// <summary>A repository name no other test uses, e.g. <c>test/mirror-3f2a...</c>.</summary>
    public static string UniqueRepository(string prefix = "test") =>
        $"{prefix}/r{Guid.NewGuid():N}";

    /// <inheritdoc />
    public Task InitializeAsync() => Registry.StartAsync();

    /// <inheritdoc />
    public async Task DisposeAsync() => await Registry.DisposeAsync();
}

/// <summary>The xunit collection whose test classes share <see cref="SharedRegistryFixture"/>.</summary>
[CollectionDefinition(Name)]
public sealed class RegistryCollection : ICollectionFixture<SharedRegistryFixture>
{
    /// <summary>The collection name: <c>registry</c>.</summary>
    public const string Name = "registry";
}
