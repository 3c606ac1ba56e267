using System.Net;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Registry.Kinds;
using OpenLm.Mirror.Registry.Probe;
using OpenLm.Mirror.Registry.Upload;
using OpenLm.Mirror.Tests.Core;
using Xunit;

namespace OpenLm.Mirror.Tests.Registries;

/// <summary>
/// The probe's mount question: a mount of a blob nothing has, between two repositories the push may go into. 202 (an
/// upload session, cancelled) is the spec's answer and mounts are used; 201 or an error means no mount is offered.
/// </summary>
public sealed class RegistryProbeMountTests
{
    [Theory]
    [InlineData(202, MountAnswer.Declined, true, "mounts: supported")]
    [InlineData(201, MountAnswer.ClaimedUnknownBlob, false, "mounts: not trusted (the registry answered 201")]
    [InlineData(405, MountAnswer.Refused, false, "mounts: refused (HTTP 405)")]
    public async Task ProbeAsync_MountOfUnknownBlob_ClassifiesTheAnswer(int mountStatus, MountAnswer expected, bool usable, string finding)
    {
        // Given a registry that answers a mount request with mountStatus
        await using var server = LoopbackServer.Start(context => Registry(context, mountStatus));
        using var connector = Connector();

        // When the probe runs over two repositories
        var report = await RegistryProbe.ProbeAsync(connector.Client(server.Authority), RegistryKind.Distribution, ["team/a", "team/b"], 2, CancellationToken.None);

        // Then the answer is classified, named in the findings, and a declined mount's session was cancelled
        Assert.Equal(expected, report.Mounts);
        Assert.Equal(usable, report.MountsUsable);
        Assert.Contains(report.Findings(), f => f.StartsWith(finding, StringComparison.Ordinal));
        var mount = Assert.Single(server.Requests, r => r.Query.Contains("mount=", StringComparison.Ordinal));
        Assert.Equal("/v2/team/a/blobs/uploads/", mount.Path);
        Assert.Contains("from=team%2Fb", mount.Query, StringComparison.Ordinal);
        Assert.Equal(mountStatus == 202 ? 3 : 2, server.Requests.Count(r => r.Method == "DELETE"));
    }

    [Fact]
    public async Task ProbeAsync_MountAndReferrersQuestions_AskedWhileThePushProbesAreOpen()
    {
        // Given a registry that holds every push probe (upload session without a mount) until both the mount question
        // and the referrers question have arrived
        var mount = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var referrers = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var heldInVain = 0;
        await using var server = LoopbackServer.Start(async context =>
        {
            var request = context.Request;
            var path = request.Url!.AbsolutePath;
            if (path.Contains("/referrers/", StringComparison.Ordinal))
            {
                referrers.TrySetResult();
                await Reply.BytesAsync(context, 200, "{\"schemaVersion\":2,\"manifests\":[]}"u8.ToArray(), MediaTypes.OciIndex);
                return;
            }

            if (request.HttpMethod == "POST" && request.Url.Query.Contains("mount=", StringComparison.Ordinal))
            {
                mount.TrySetResult();
            }
            else if (request.HttpMethod == "POST"
                && !await Task.WhenAll(mount.Task, referrers.Task).WaitAsync(Patience).ContinueWith(t => t.IsCompletedSuccessfully, TaskScheduler.Default))
            {
                Interlocked.Increment(ref heldInVain);
            }

            await Registry(context, 202);
        });
        using var connector = Connector();

        // When the probe runs over two repositories
        var report = await RegistryProbe.ProbeAsync(connector.Client(server.Authority), RegistryKind.Distribution, ["team/b", "team/a"], 2, CancellationToken.None);

        // Then neither question waited for the push probes (one round trip for all instead of three in a row), both are
        // answered, and every session opened was cancelled
        Assert.Equal(0, heldInVain);
        Assert.Equal(MountAnswer.Declined, report.Mounts);
        Assert.True(report.ReferrersApi);
        Assert.All(report.Repositories, r => Assert.Equal(PushAccess.Allowed, r.Access));
        Assert.Equal(3, server.Requests.Count(r => r.Method == "DELETE"));
        Assert.Single(server.Requests, r => r.Query.Contains("mount=", StringComparison.Ordinal));
        Assert.Single(server.Requests, r => r.Path.Contains("/referrers/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ProbeAsync_FirstRepositoryDenied_MountAndReferrersAskedAgainOfTheRepositoriesThatAllowPush()
    {
        // Given three repositories of which the first by name refuses pushes (403 DENIED; its mount and referrers
        // answers are refusals too) and the others take them
        await using var server = LoopbackServer.Start(context =>
        {
            var request = context.Request;
            var path = request.Url!.AbsolutePath;
            if (path.StartsWith("/v2/team/a/", StringComparison.Ordinal))
            {
                return Reply.ErrorAsync(context, 403, "DENIED", "requested access to the resource is denied");
            }

            return path.Contains("/referrers/", StringComparison.Ordinal)
                ? Reply.BytesAsync(context, 200, "{\"schemaVersion\":2,\"manifests\":[]}"u8.ToArray(), MediaTypes.OciIndex)
                : Registry(context, 202);
        });
        using var connector = Connector();

        // When the probe runs over the three
        var report = await RegistryProbe.ProbeAsync(connector.Client(server.Authority), RegistryKind.Distribution, ["team/c", "team/a", "team/b"], 2, CancellationToken.None);

        // Then the guesses about team/a are dropped: the mount is asked into team/b from team/c and the referrers of
        // team/b, and the report is what those answered
        Assert.Equal(PushAccess.Denied, report.Repositories.Single(r => r.Repository == "team/a").Access);
        Assert.Equal(MountAnswer.Declined, report.Mounts);
        Assert.True(report.ReferrersApi);
        var mounts = server.Requests.Where(r => r.Query.Contains("mount=", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, mounts.Count);
        Assert.Contains(mounts, m => m.Path == "/v2/team/b/blobs/uploads/" && m.Query.Contains("from=team%2Fc", StringComparison.Ordinal));
        Assert.Contains(server.Requests, r => r.Path.StartsWith("/v2/team/b/referrers/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ProbeAsync_OneRepository_DoesNotAskAboutMounts()
    {
        await using var server = LoopbackServer.Start(context => Registry(context, 202));
        using var connector = Connector();

        var report = await RegistryProbe.ProbeAsync(connector.Client(server.Authority), RegistryKind.Distribution, ["team/a"], 2, CancellationToken.None);

        Assert.Equal(MountAnswer.NotAsked, report.Mounts);
        Assert.True(report.MountsUsable);
        Assert.DoesNotContain(server.Requests, r => r.Query.Contains("mount=", StringComparison.Ordinal));
    }

    [Fact]
    public async Task MountAsync_MountsDisabledForTheRegistry_DeclinesWithoutARequest()
    {
        await using var server = LoopbackServer.Start(context => Registry(context, 201));
        using var connector = Connector();
        UploadTuning.For(connector.Client(server.Authority)).DisableMounts();
        var repository = connector.Repository(Reference.Parse($"{server.Authority}/team/a:1"));
        var blob = new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Sha256("x"u8.ToArray()), Size = 1 };

        var mounted = await repository.MountAsync(blob, "team/b");

        Assert.False(mounted);
        Assert.Empty(server.Requests);
    }

    /// <summary>How long a held request waits for the ones it expects meanwhile before it gives up (a guard against a hang, not a measure).</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private static RegistryConnector Connector() => new(new RegistryOptions
    {
        PlainHttp = true,
        RetryBaseDelay = TimeSpan.FromMilliseconds(1),
        ResponseTimeout = TimeSpan.FromSeconds(20),
        IdleTimeout = TimeSpan.FromSeconds(20),
    });

    private static Task Registry(HttpListenerContext context, int mountStatus)
    {
        var request = context.Request;
        var path = request.Url!.AbsolutePath;
        if (path == "/v2/")
        {
            return Reply.JsonAsync(context, 200, "{}");
        }

        if (request.HttpMethod == "POST" && path.EndsWith("/blobs/uploads/", StringComparison.Ordinal))
        {
            var status = request.Url.Query.Contains("mount=", StringComparison.Ordinal) ? mountStatus : 202;
            return Reply.StatusAsync(context, status, status == 202 ? new Dictionary<string, string> { ["Location"] = path + Guid.NewGuid().ToString("N") } : null);
        }

        return request.HttpMethod == "DELETE" ? Reply.StatusAsync(context, 204) : Reply.ErrorAsync(context, 404, "NAME_UNKNOWN", "repository name not known to registry");
    }
}
