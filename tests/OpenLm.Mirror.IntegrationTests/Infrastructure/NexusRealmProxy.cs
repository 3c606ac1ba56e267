using System.Net;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// A Nexus-like Docker connector in front of a real Distribution registry, with the broken challenge Nexus has been
/// reported to send behind a misconfigured base URL: <c>401</c> with <c>WWW-Authenticate: Bearer
/// realm="null://HOST/v2/token",service="nexus"</c> and <c>Server: Nexus/3.x</c>, while the connector itself takes
/// HTTP Basic credentials on every /v2 request.
/// </summary>
public sealed class NexusRealmProxy(Uri upstream) : InterceptingProxy(upstream)
{
    public const string User = "deployer";
    public const string Password = "nexus-secret-1";
    private int _challenges;
    private int _basicAccepted;

    public int Challenges => Volatile.Read(ref _challenges);

    public int BasicAccepted => Volatile.Read(ref _basicAccepted);

    protected override async Task<bool> InterceptAsync(HttpContext context)
    {
        context.Response.Headers.Server = "Nexus/3.68.1-02 (OSS)";
        var expected = "Basic " + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{User}:{Password}"));
        if (context.Request.Headers.Authorization.ToString() != expected)
        {
            Interlocked.Increment(ref _challenges);
            context.Response.Headers.WWWAuthenticate = $"Bearer realm=\"null://{Host}/v2/token\",service=\"nexus\"";
            await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status401Unauthorized, "UNAUTHORIZED", "Access denied to resource");
            return true;
        }

        Interlocked.Increment(ref _basicAccepted);
        return false;
    }

    // The registry behind takes no credentials: the Basic header is Nexus's, not Distribution's.
    protected override bool DropsRequestHeader(string name) => string.Equals(name, "Authorization", StringComparison.OrdinalIgnoreCase);
}
