using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>An image pushed by <see cref="RegistrySeeder.PushImageAsync"/>: one config blob, one layer, an OCI manifest.</summary>
public sealed record SeededImage(
    string Repository,
    string Tag,
    string ManifestDigest,
    byte[] Manifest,
    string ManifestMediaType,
    string ConfigDigest,
    byte[] Config,
    string LayerDigest,
    byte[] Layer);

/// <summary>Raw OCI Distribution pushes with a plain <see cref="HttpClient"/> (no product code involved).</summary>
public static class RegistrySeeder
{
    public const string OciManifestMediaType = "application/vnd.oci.image.manifest.v1+json";
    public const string OciConfigMediaType = "application/vnd.oci.image.config.v1+json";
    public const string OciLayerMediaType = "application/vnd.oci.image.layer.v1.tar";

    /// <summary>A client for loopback registries: no redirects, no decompression, no system proxy.</summary>
    public static HttpClient CreateClient(TimeSpan? timeout = null)
        => new(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
            UseCookies = false,
        })
        {
            Timeout = timeout ?? TimeSpan.FromSeconds(60),
        };

    public static string Digest(ReadOnlySpan<byte> content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    /// <summary>Monolithic upload: <c>POST /v2/&lt;repo&gt;/blobs/uploads/</c> then <c>PUT &lt;location&gt;&amp;digest=</c>.</summary>
    public static async Task<string> PushBlobAsync(
        HttpClient client, Uri registry, string repository, byte[] content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(content);
        var digest = Digest(content);
        using var start = new HttpRequestMessage(HttpMethod.Post, new Uri(registry, $"v2/{repository}/blobs/uploads/"))
        {
            Content = new ByteArrayContent([]),
        };
        using var started = await client.SendAsync(start, cancellationToken).ConfigureAwait(false);
        if (started.StatusCode != HttpStatusCode.Accepted || started.Headers.Location is null)
        {
            throw new InvalidOperationException($"Upload start failed: {(int)started.StatusCode} {await started.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
        }

        var location = started.Headers.Location.IsAbsoluteUri ? started.Headers.Location : new Uri(registry, started.Headers.Location);
        var separator = string.IsNullOrEmpty(location.Query) ? "?" : "&";
        var finishUri = new Uri(location.AbsoluteUri + separator + "digest=" + Uri.EscapeDataString(digest));
        using var finish = new HttpRequestMessage(HttpMethod.Put, finishUri) { Content = new ByteArrayContent(content) };
        finish.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var finished = await client.SendAsync(finish, cancellationToken).ConfigureAwait(false);
        if (finished.StatusCode != HttpStatusCode.Created)
        {
            throw new InvalidOperationException($"Upload finish failed: {(int)finished.StatusCode} {await finished.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
        }

        return digest;
    }

    /// <summary><c>PUT /v2/&lt;repo&gt;/manifests/&lt;reference&gt;</c>; returns the manifest digest.</summary>
    public static async Task<string> PushManifestAsync(
        HttpClient client, Uri registry, string repository, string reference, byte[] manifest, string mediaType,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(manifest);
        using var put = new HttpRequestMessage(HttpMethod.Put, new Uri(registry, $"v2/{repository}/manifests/{reference}"))
        {
            Content = new ByteArrayContent(manifest),
        };
        put.Content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        using var response = await client.SendAsync(put, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw new InvalidOperationException($"Manifest push failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
        }

        return Digest(manifest);
    }

    /// <summary>Pushes a deterministic single-layer OCI image (pseudo-random layer bytes from <paramref name="seed"/>).</summary>
    public static async Task<SeededImage> PushImageAsync(
        HttpClient client, Uri registry, string repository, string tag, int layerSize = 256 * 1024, int seed = 1,
        CancellationToken cancellationToken = default)
    {
        var layer = new byte[layerSize];
        new Random(seed).NextBytes(layer);
        var layerDigest = await PushBlobAsync(client, registry, repository, layer, cancellationToken).ConfigureAwait(false);

        var config = Encoding.UTF8.GetBytes(
            "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" + layerDigest + "\"]}}");
        var configDigest = await PushBlobAsync(client, registry, repository, config, cancellationToken).ConfigureAwait(false);

        var manifest = Encoding.UTF8.GetBytes(
            "{\"schemaVersion\":2,\"mediaType\":\"" + OciManifestMediaType + "\","
            + "\"config\":{\"mediaType\":\"" + OciConfigMediaType + "\",\"digest\":\"" + configDigest + "\",\"size\":" + config.Length + "},"
            + "\"layers\":[{\"mediaType\":\"" + OciLayerMediaType + "\",\"digest\":\"" + layerDigest + "\",\"size\":" + layer.Length + "}]}");
        var manifestDigest = await PushManifestAsync(client, registry, repository, tag, manifest, OciManifestMediaType, cancellationToken)
            .ConfigureAwait(false);

        return new SeededImage(repository, tag, manifestDigest, manifest, OciManifestMediaType, configDigest, config, layerDigest, layer);
    }
}
