using OpenLm.Mirror.Content;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Tests.Core;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.Tests.Graph;

public sealed class StagedTargetTests(SampleLayoutsFixture samples) : IClassFixture<SampleLayoutsFixture>, IDisposable
{
    private const string Agent = "r3q3q2f4/olm-agent:1.0.0";
    private const string Server = "r3q3q2f4/olm-server:1.0.0";
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private OciLayoutStore Source => OciLayoutStore.Open(samples.Oci.Directory, create: false);

    [Fact]
    public async Task StagedTarget_CopyThenCommit_NoTagUntilCommitThenCreated()
    {
        // Given a staged layout target
        var layout = OciLayoutStore.Open(_dir.Sub("dst"), create: true);
        var staged = StagedTarget.Wrap(layout);

        // When an image is copied into it
        var result = await new GraphCopier(new CopyOptions()).CopyAsync(Source, Agent, staged, "mirror/agent:1");

        // Then its content is there but no name yet
        Assert.True(await layout.ExistsAsync(result.Root));
        Assert.Empty(await layout.ReadIndexAsync());
        Assert.Equal(result.Root.Digest, staged.Staged["mirror/agent:1"].Digest);

        // When committed, Then the tag appears, created
        var committed = Assert.Single(await staged.CommitAsync());
        Assert.Equal(TagOutcome.Created, committed.Outcome);
        Assert.Equal(result.Root.Digest, (await layout.ResolveAsync("mirror/agent:1")).Digest);
        Assert.Empty(staged.Staged);
    }

    [Fact]
    public async Task StagedTarget_CommitAsync_SameDigestUnchangedOtherDigestMoved()
    {
        // Given a layout where a tag already names the agent image
        var layout = OciLayoutStore.Open(_dir.Sub("dst"), create: true);
        var copier = new GraphCopier(new CopyOptions());
        var agent = await copier.CopyAsync(Source, Agent, layout, "t");

        // When the same image is staged again under it, Then commit leaves it unchanged
        var again = StagedTarget.Wrap(layout);
        await copier.CopyAsync(Source, Agent, again, "t");
        Assert.Equal(TagOutcome.Unchanged, Assert.Single(await again.CommitAsync()).Outcome);

        // When another image is staged under it, Then commit moves it and says from where
        var moved = StagedTarget.Wrap(layout);
        var server = await copier.CopyAsync(Source, Server, moved, "t");
        var outcome = Assert.Single(await moved.CommitAsync());
        Assert.Equal(TagOutcome.Moved, outcome.Outcome);
        Assert.Equal(agent.Root.Digest, outcome.Previous);
        Assert.Equal(server.Root.Digest, (await layout.ResolveAsync("t")).Digest);
    }

    [Fact]
    public async Task StagedTarget_TagAsync_OneTagForTwoManifests_Refused()
    {
        var staged = StagedTarget.Wrap(OciLayoutStore.Open(_dir.Sub("dst"), create: true));
        var copier = new GraphCopier(new CopyOptions());
        await copier.CopyAsync(Source, Agent, staged, "same");

        var ex = await Assert.ThrowsAsync<InputException>(() => copier.CopyAsync(Source, Server, staged, "same"));
        Assert.Contains("same", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StagedTarget_Wrap_KeepsMountCapabilityOfRegistriesOnly()
    {
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true });
        var repository = connector.Repository(OpenLm.Mirror.Oci.Reference.Parse("127.0.0.1:1/a/b:1"));

        Assert.IsAssignableFrom<IMountable>(StagedTarget.Wrap(repository));
        Assert.False(StagedTarget.Wrap(OciLayoutStore.Open(_dir.Sub("dst"), create: true)) is IMountable);
    }
}
