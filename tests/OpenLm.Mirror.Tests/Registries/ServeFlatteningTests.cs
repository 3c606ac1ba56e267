using OpenLm.Mirror.Tests.Serve;
using Xunit;

namespace OpenLm.Mirror.Tests.Registries;

/// <summary>serve --to-names with the import's --max-path-components answers under the flattened names the import stored.</summary>
public sealed class ServeFlatteningTests(ServeFixture fixture) : IClassFixture<ServeFixture>
{
    [Fact]
    public async Task Start_TargetNamesWithMaxPathComponents_ServesTheFlattenedNames()
    {
        // Given docker.io/library/mongo:7 in the bundle, which import --to registry.corp:5000/openlm stores as openlm/library/mongo
        // When served under the import's names flattened to 2 components
        await using var server = await fixture.StartAsync(ServeFixture.Target, [], maxPathComponents: 2);

        // Then it answers as openlm/library-mongo (what the flattened import stored), not under the deep name
        Assert.True(server.Catalog.Repositories.ContainsKey("openlm/library-mongo"), string.Join(", ", server.Catalog.Repositories.Keys));
        Assert.False(server.Catalog.Repositories.ContainsKey("openlm/library/mongo"));
    }
}
