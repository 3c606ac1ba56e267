using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Delta;
using Xunit;

namespace OpenLm.Mirror.Tests.Delta;

public sealed class ReleaseDiffTests(DeltaReleases releases) : IClassFixture<DeltaReleases>
{
    [Fact]
    public async Task ReleaseDiff_CompareAsync_TwoBundles_OneAddedOneChangedAndTheDeltaBytes()
    {
        // When the 1.0 and 1.1 bundles are compared
        var diff = await ReleaseDiff.CompareAsync(releases.FullV1, releases.FullV2);

        // Then the added and the changed image are named, the rest unchanged
        var changed = Assert.Single(diff.Images, i => i.Change == ImageChange.Changed);
        Assert.Equal(Mirror.Oci.Reference.Parse(releases.Changed).Name, changed.Repository);
        Assert.NotEqual(changed.OldDigest, changed.NewDigest);
        var added = Assert.Single(diff.Images, i => i.Change == ImageChange.Added);
        Assert.Equal(Mirror.Oci.Reference.Parse(releases.Added).Name, added.Repository);
        Assert.Equal(0, diff.Count(ImageChange.Removed));
        Assert.Equal(diff.Images.Count - 2, diff.Count(ImageChange.Unchanged));
        Assert.True(diff.Count(ImageChange.Unchanged) >= 4);
        Assert.Empty(diff.Charts);
        Assert.Equal(("1.0", "1.1"), (diff.Old.Version, diff.New.Version));

        // And the bytes a delta carries are what the delta bundle carries: its blobs plus the manifests 1.0 lacks
        await using var v1 = await BundleSource.OpenAsync(releases.FullV1, new BundleOpenOptions { Key = releases.Key });
        await using var delta = await BundleSource.OpenAsync(releases.DeltaV2, new BundleOpenOptions { Key = releases.Key });
        var newManifests = delta.ManifestsChildrenFirst.Where(m => !v1.Documents.ContainsKey(m.Digest)).DistinctBy(m => m.Digest).ToList();
        Assert.Equal(delta.Blobs.Count + newManifests.Count, diff.DeltaBlobs);
        Assert.Equal(delta.Blobs.Sum(b => b.Descriptor.Size) + newManifests.Sum(m => m.Size), diff.DeltaBytes);

        // And the reverse direction removes what was added
        var back = await ReleaseDiff.CompareAsync(releases.FullV2, releases.FullV1);
        Assert.Equal(added.Repository, Assert.Single(back.Images, i => i.Change == ImageChange.Removed).Repository);
    }

    [Fact]
    public async Task ReleaseDiff_CompareAsync_SameRelease_NothingChangesAndADeltaCarriesNothing()
    {
        var diff = await ReleaseDiff.CompareAsync(releases.FullV2, releases.DeltaV2);
        Assert.All(diff.Images, i => Assert.Equal(ImageChange.Unchanged, i.Change));
        Assert.Equal(0, diff.DeltaBlobs);
        Assert.Empty(diff.Charts);
    }
}
