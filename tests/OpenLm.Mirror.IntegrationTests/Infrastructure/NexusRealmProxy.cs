using System.Net;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// A Nexus-like Docker connector in front of a real Distribution registry, with the broken challenge Nexus has been
/// reported to send behind a misconfigured base URL: <c>401</c> with <c>WWW-Authenticate: Bearer
/// realm="null://HOST/v2/token",service="nexus"</c> and <c>Server: Nexus/3.x</c>, while the connector itself takes
/// HTTP Basic credentials on every /v2 request. With <see cref="FalseBlobHeads"/> set it also answers <c>200</c> to the
/// first that many blob HEADs (each repository and digest once) without asking the registry behind — the "Layer already
/// exists" that Nexus has been reported to send before refusing the manifest with "blob unknown to registry"
/// (sonatype/nexus-public#264); the real registry then refuses the manifest with <c>MANIFEST_BLOB_UNKNOWN</c>.
/// </summary>
public sealed class NexusRealmProxy(Uri upstream) : InterceptingProxy(upstream)
{
    public const string User = "deployer";
    public const string Password = "nexus-secret-1";
    private int _challenges;
    private int _basicAccepted;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _falseHeads = new(StringComparer.Ordinal);

    public int Challenges => Volatile.Read(ref _challenges);

    public int BasicAccepted => Volatile.Read(ref _basicAccepted);

    /// <summary>How many blob HEADs to answer 200 without the blob being stored (0: none).</summary>
    public int FalseBlobHeads { get; init; }

    /// <summary>The "repository@digest" blob HEADs answered falsely.</summary>
    public IReadOnlyCollection<string> FalseHeadsAnswered => _falseHeads.Keys.ToList();

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
        if (HttpMethods.IsHead(context.Request.Method) && BlobPath(context.Request.Path.Value ?? string.Empty) is { } blob
            && _falseHeads.Count < FalseBlobHeads && _falseHeads.TryAdd(blob.Repository + "@" + blob.Digest, 0))
        {
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.Headers["Docker-Content-Digest"] = blob.Digest;
            return true;
        }

        return false;
    }

    private static (string Repository, string Digest)? BlobPath(string path)
    {
        const string marker = "/blobs/sha256:";
        var at = path.IndexOf(marker, StringComparison.Ordinal);
        return path.StartsWith("/v2/", StringComparison.Ordinal) && at > 4 && !path.Contains("/uploads", StringComparison.Ordinal)
            ? (path[4..at], path[(at + "/blobs/".Length)..])
            : null;
    }

    // The registry behind takes no credentials: the Basic header is Nexus's, not Distribution's.
    protected override bool DropsRequestHeader(string name) => string.Equals(name, "Authorization", StringComparison.OrdinalIgnoreCase);
}
