using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// GitLab-like path depth limit in front of a real Distribution registry: a repository with more path components
/// than <see cref="MaxComponents"/> answers every request with a bare <c>403 DENIED "requested access to the resource
/// is denied"</c> (what GitLab's registry gives past project path + 2 levels), everything else is forwarded.
/// </summary>
public sealed partial class DepthLimitProxy(Uri upstream, int maxComponents) : InterceptingProxy(upstream)
{
    private int _blobWrites;
    private int _denied;

    public int MaxComponents { get; } = maxComponents;

    public int BlobWrites => Volatile.Read(ref _blobWrites);

    public int Denied => Volatile.Read(ref _denied);

    protected override async Task<bool> InterceptAsync(HttpContext context)
    {
        var match = RepositoryPath().Match(context.Request.Path.Value ?? "/");
        if (match.Success && match.Groups["name"].Value.Split('/').Length > MaxComponents)
        {
            Interlocked.Increment(ref _denied);
            await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status403Forbidden, "DENIED", "requested access to the resource is denied");
            return true;
        }

        if (match.Success && match.Groups["kind"].Value == "blobs" && (HttpMethods.IsPatch(context.Request.Method) || (HttpMethods.IsPut(context.Request.Method) && context.Request.ContentLength > 0)))
        {
            Interlocked.Increment(ref _blobWrites);
        }

        return false;
    }

    [GeneratedRegex(@"^/v2/(?<name>.+?)/(?<kind>blobs|manifests|tags|referrers)/(?<rest>.*)$")]
    private static partial Regex RepositoryPath();
}
