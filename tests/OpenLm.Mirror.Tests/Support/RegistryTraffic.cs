using OpenLm.Mirror.Tests.Core;

namespace OpenLm.Mirror.Tests.Support;

/// <summary>Named questions about what a <see cref="FakeRegistry"/> saw, so assertions read as the spec does.</summary>
internal static class RegistryTraffic
{
    /// <summary>Requests that change the registry (or would): PUT, POST, PATCH, DELETE.</summary>
    public static IEnumerable<SeenRequest> Writes(this FakeRegistry registry) =>
        registry.Requests.Where(r => r.Method is "PUT" or "POST" or "PATCH" or "DELETE");

    /// <summary>Commits of an upload session carrying <c>digest=</c> (one per blob upload).</summary>
    public static IEnumerable<SeenRequest> BlobUploads(this FakeRegistry registry) =>
        registry.Requests.Where(r => r.Method == "PUT" && r.Path.StartsWith("/upload/", StringComparison.Ordinal));

    /// <summary>The digest a blob upload commit names.</summary>
    public static string UploadedDigest(this SeenRequest request) =>
        System.Web.HttpUtility.ParseQueryString(request.Query)["digest"] ?? string.Empty;

    /// <summary>The digest the capability probe asks to mount: one no repository has (all zeros).</summary>
    private const string ProbeMountDigest = "sha256%3A0000000000000000000000000000000000000000000000000000000000000000";

    /// <summary>POSTs asking for a cross-repository mount of a bundle blob (the probe's mount question excluded).</summary>
    public static IEnumerable<SeenRequest> MountRequests(this FakeRegistry registry) =>
        registry.Requests.Where(r => r.Method == "POST" && r.Query.Contains("mount=", StringComparison.Ordinal) && !IsProbeMount(r));

    /// <summary>The capability probe's mount of a blob nothing has (answered 202 with a session it cancels).</summary>
    public static IEnumerable<SeenRequest> ProbeMountRequests(this FakeRegistry registry) =>
        registry.Requests.Where(r => r.Method == "POST" && IsProbeMount(r));

    private static bool IsProbeMount(SeenRequest request) =>
        request.Query.Contains("mount=" + ProbeMountDigest, StringComparison.OrdinalIgnoreCase)
        || request.Query.Contains("mount=sha256:0000000000000000000000000000000000000000000000000000000000000000", StringComparison.Ordinal);

    /// <summary>Manifest PUTs by tag (not by digest): what makes an image visible under a name.</summary>
    public static IEnumerable<SeenRequest> TagPuts(this FakeRegistry registry) =>
        registry.Requests.Where(r => r.Method == "PUT" && ManifestReference(r) is { } reference && !reference.StartsWith("sha256:", StringComparison.Ordinal));

    /// <summary>Manifest PUTs by digest.</summary>
    public static IEnumerable<SeenRequest> ManifestPutsByDigest(this FakeRegistry registry) =>
        registry.Requests.Where(r => r.Method == "PUT" && ManifestReference(r) is { } reference && reference.StartsWith("sha256:", StringComparison.Ordinal));

    public static bool IsBlobPath(this SeenRequest request) =>
        request.Path.StartsWith("/v2/", StringComparison.Ordinal) && request.Path.Contains("/blobs/sha256:", StringComparison.Ordinal);

    public static bool IsManifestPath(this SeenRequest request) => ManifestReference(request) is not null;

    /// <summary>The tag or digest of a <c>/v2/&lt;name&gt;/manifests/&lt;reference&gt;</c> request, else null.</summary>
    public static string? ManifestReference(SeenRequest request)
    {
        const string Marker = "/manifests/";
        var at = request.Path.LastIndexOf(Marker, StringComparison.Ordinal);
        return request.Path.StartsWith("/v2/", StringComparison.Ordinal) && at > 0 ? request.Path[(at + Marker.Length)..] : null;
    }
}
