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
