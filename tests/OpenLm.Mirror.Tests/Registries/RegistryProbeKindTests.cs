using System.Net;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Registry.Kinds;
using OpenLm.Mirror.Registry.Probe;
using OpenLm.Mirror.Tests.Core;
using Xunit;

namespace OpenLm.Mirror.Tests.Registries;

/// <summary>A self-managed GitLab has no telling host name; its registry's Bearer challenge names GitLab's <c>/jwt/auth</c>.</summary>
public sealed class RegistryProbeKindTests
{
    [Fact]
    public async Task ProbeAsync_ChallengeRealmIsJwtAuth_DetectsGitLabOnAnyHost()
    {
        // Given a registry on a host with no product name whose /v2/ challenge points at <host>/jwt/auth
        LoopbackServer? server = null;
        server = LoopbackServer.Start(context => GitLabLike(context, server!.Authority));
        await using var _ = server;
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true, RetryBaseDelay = TimeSpan.FromMilliseconds(1) });

        // When the probe decides the kind
        var report = await RegistryProbe.ProbeAsync(connector.Client(server.Authority), RegistryKind.Auto, [], 1, CancellationToken.None);

        // Then it is GitLab, found from the token realm, and the token service was asked
        Assert.Equal(RegistryKind.GitLab, report.Kind);
        Assert.Equal("token realm", report.KindSource);
        Assert.Equal(200, report.ApiStatus);
        Assert.Contains(server.Requests, r => r.Path == "/jwt/auth");
    }

    [Theory]
    [InlineData(false, RegistryKind.Harbor, "Harbor system info API")]
    [InlineData(true, RegistryKind.Artifactory, "response headers")]
    public async Task ProbeAsync_NoTellingHost_HarborSystemInfoAskedAlongsideV2(bool artifactoryHeader, RegistryKind expected, string source)
    {
        // Given a registry on a host with no product name that holds GET /v2/ until Harbor's system info was asked,
        // and answers the system info as Harbor does (and, in one case, /v2/ with Artifactory's header)
        var systemInfo = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var heldInVain = 0;
        await using var server = LoopbackServer.Start(async context =>
        {
            var path = context.Request.Url!.AbsolutePath;
            if (path == "/api/v2.0/systeminfo")
            {
                systemInfo.TrySetResult();
                await Reply.JsonAsync(context, 200, "{\"harbor_version\":\"v2.11.0\"}");
                return;
            }

            if (!await systemInfo.Task.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(t => t.IsCompletedSuccessfully, TaskScheduler.Default))
            {
                Interlocked.Increment(ref heldInVain);
            }

            await Reply.JsonAsync(context, 200, "{}", artifactoryHeader ? new Dictionary<string, string> { ["X-JFrog-Version"] = "Artifactory/7.77.5" } : null);
        });
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true, RetryBaseDelay = TimeSpan.FromMilliseconds(1) });

        // When the probe decides the kind
        var report = await RegistryProbe.ProbeAsync(connector.Client(server.Authority), RegistryKind.Auto, [], 1, CancellationToken.None);

        // Then the system info did not wait for /v2/ (one round trip for both), and it decides only when nothing else tells
        Assert.Equal(0, heldInVain);
        Assert.Equal(expected, report.Kind);
        Assert.Equal(source, report.KindSource);
    }

    private static Task GitLabLike(HttpListenerContext context, string authority)
    {
        var path = context.Request.Url!.AbsolutePath;
        if (path == "/jwt/auth")
        {
            return Reply.JsonAsync(context, 200, "{\"token\":\"t0k3n\"}");
        }

        if (path == "/v2/" && context.Request.Headers["Authorization"] is null)
        {
            return Reply.JsonAsync(context, 401, "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}", new Dictionary<string, string>
            {
                ["WWW-Authenticate"] = $"Bearer realm=\"http://{authority}/jwt/auth\",service=\"container_registry\"",
            });
        }

        return path == "/v2/" ? Reply.JsonAsync(context, 200, "{}") : Reply.JsonAsync(context, 404, "{}");
    }
}
