using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Import;
using OpenLm.Mirror.Tests.Delta;
using OpenLm.Mirror.Tests.Import;
using OpenLm.Mirror.Tests.Support;
using Xunit;

namespace OpenLm.Mirror.Tests.ImportLatency;

/// <summary>A delta import's base check is the existence pass for the blobs it leaves to its base: the copy does not ask again.</summary>
public sealed class DeltaRoundTripTests(DeltaReleases releases) : IClassFixture<DeltaReleases>, IAsyncLifetime
{
    private ImportHarness _harness = null!;

    public Task InitializeAsync()
    {
        _harness = new ImportHarness();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    private ImportRequest Request(string bundle) => new() { BundlePath = bundle, Key = releases.Key, Target = _harness.Target, PassDelay = TimeSpan.Zero, Precheck = new PrecheckOptions() };

    [Fact]
    public async Task BundleImporter_ImportAsync_DeltaOntoItsBase_EachBlobAskedAboutOnceInEachRepository()
    {
        // Given release 1.0 imported into the target
        await _harness.ImportAsync(Request(releases.FullV1));
        _harness.Registry.Server.ClearRequests();

        // When the 1.1 delta is imported
        var result = await _harness.ImportAsync(Request(releases.DeltaV2));

        // Then every image is there, and no blob was asked about twice in one repository (base check and copy share answers)
        await using var delta = await BundleSource.OpenAsync(releases.DeltaV2, new BundleOpenOptions { Key = releases.Key });
        Assert.NotEmpty(delta.Omitted);
        Assert.Equal(delta.Head.Images.Count, result.Images.Count);
        var blobHeads = _harness.Registry.Requests.Where(r => r.Method == "HEAD" && r.IsBlobPath()).ToList();
        Assert.Contains(blobHeads, r => delta.Omitted.Keys.Any(d => r.Path.EndsWith(d.ToString(), StringComparison.Ordinal)));
        Assert.Empty(blobHeads.GroupBy(r => r.Path).Where(g => g.Count() > 1).Select(g => g.Key));
    }
}
