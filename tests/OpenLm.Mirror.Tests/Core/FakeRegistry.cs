using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace OpenLm.Mirror.Tests.Core;

/// <summary>
/// A minimal OCI distribution server on <see cref="LoopbackServer"/> for one repository, with optional bearer-token
/// auth, and an <see cref="Intercept"/> hook so tests can misbehave on purpose.
/// </summary>
internal sealed class FakeRegistry : IAsyncDisposable
{
    public const string Repository = "test/repo";
    public const string Service = "fake-registry";
    private readonly ConcurrentDictionary<string, byte> _validTokens = new(StringComparer.Ordinal);
    private int _tokensIssued;

    private FakeRegistry()
    {
        Server = LoopbackServer.Start(HandleAsync);
    }

    public LoopbackServer Server { get; }

    public string Authority => Server.Authority;

    public ConcurrentDictionary<string, (byte[] Bytes, string MediaType)> Manifests { get; } = new(StringComparer.Ordinal);

    public ConcurrentDictionary<string, byte[]> Blobs { get; } = new(StringComparer.Ordinal);

    /// <summary>Requests without a valid bearer token get a 401 challenge.</summary>
    public bool RequireToken { get; init; }

    /// <summary>How a revoked token is refused: ECR-style 400 DENIED (true) or 401 with a challenge (false).</summary>
    public bool ExpiredTokenAs400 { get; set; }

    /// <summary>Whether manifest responses carry Docker-Content-Digest.</summary>
    public bool SendDigestHeader { get; set; } = true;

    /// <summary>A Docker-Content-Digest to send instead of the real one.</summary>
    public string? DigestHeaderOverride { get; set; }

    /// <summary>Runs before the normal handling; returning true means the request was answered.</summary>
    public Func<HttpListenerContext, Task<bool>>? Intercept { get; set; }

    /// <summary>Basic credentials the token endpoint expects, as user:password (null: anonymous tokens).</summary>
    public string? TokenUser { get; init; }

    public int TokensIssued => Volatile.Read(ref _tokensIssued);

    public IReadOnlyList<SeenRequest> Requests => Server.Requests;

    public IEnumerable<SeenRequest> TokenRequests => Requests.Where(r => r.Path == "/token");

    public IEnumerable<SeenRequest> RegistryRequests => Requests.Where(r => r.Path.StartsWith("/v2/", StringComparison.Ordinal));

    public string Challenge => $"Bearer realm=\"http://{Authority}/token\",service=\"{Service}\",scope=\"repository:{Repository}:pull\"";

    public static FakeRegistry Start(bool requireToken = false, string? tokenUser = null) => new() { RequireToken = requireToken, TokenUser = tokenUser };

    public static string Sha256(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    public string AddManifest(string tag, byte[] bytes, string mediaType)
    {
        var digest = Sha256(bytes);
        Manifests[tag] = (bytes, mediaType);
        Manifests[digest] = (bytes, mediaType);
        return digest;
    }

    public string AddBlob(byte[] bytes)
    {
        var digest = Sha256(bytes);
        Blobs[digest] = bytes;
        return digest;
    }

    public void RevokeTokens() => _validTokens.Clear();

    public ValueTask DisposeAsync() => Server.DisposeAsync();

    private async Task HandleAsync(HttpListenerContext context)
    {
        if (Intercept is { } intercept && await intercept(context))
        {
            return;
        }

        var request = context.Request;
        var path = request.Url!.AbsolutePath;
        if (path == "/token")
        {
            await IssueTokenAsync(context);
            return;
        }

        if (RequireToken && !path.StartsWith("/upload/", StringComparison.Ordinal) && !await AuthorisedAsync(context))
        {
            return;
        }

        var prefix = $"/v2/{Repository}/";
        if (path.StartsWith(prefix + "manifests/", StringComparison.Ordinal))
        {
            var reference = path[(prefix.Length + "manifests/".Length)..];
            if (request.HttpMethod == "PUT")
            {
                using var body = new MemoryStream();
                await request.InputStream.CopyToAsync(body);
                var digest = AddManifest(reference, body.ToArray(), request.ContentType ?? "application/octet-stream");
                await Reply.StatusAsync(context, 201, new Dictionary<string, string> { ["Docker-Content-Digest"] = digest });
                return;
            }

            if (!Manifests.TryGetValue(reference, out var manifest))
            {
                await Reply.ErrorAsync(context, 404, "MANIFEST_UNKNOWN", "manifest unknown");
                return;
            }

            var headers = new Dictionary<string, string>();
            if (SendDigestHeader)
            {
                headers["Docker-Content-Digest"] = DigestHeaderOverride ?? Sha256(manifest.Bytes);
            }

            await Reply.BytesAsync(context, 200, manifest.Bytes, manifest.MediaType, headers);
            return;
        }

        if (path.StartsWith(prefix + "blobs/uploads/", StringComparison.Ordinal) && request.HttpMethod == "POST")
        {
            await Reply.StatusAsync(context, 202, new Dictionary<string, string> { ["Location"] = $"/upload/{Guid.NewGuid():N}?state=abc" });
            return;
        }

        if (path.StartsWith("/upload/", StringComparison.Ordinal) && request.HttpMethod == "PUT")
        {
            using var body = new MemoryStream();
            await request.InputStream.CopyToAsync(body);
            var expected = request.QueryString["digest"];
            var actual = Sha256(body.ToArray());
            if (expected != actual)
            {
                await Reply.ErrorAsync(context, 400, "DIGEST_INVALID", "provided digest did not match uploaded content");
                return;
            }

            Blobs[actual] = body.ToArray();
            await Reply.StatusAsync(context, 201, new Dictionary<string, string> { ["Docker-Content-Digest"] = actual });
            return;
        }

        if (path.StartsWith(prefix + "blobs/", StringComparison.Ordinal))
        {
            var digest = path[(prefix.Length + "blobs/".Length)..];
            if (!Blobs.TryGetValue(digest, out var blob))
            {
                await Reply.ErrorAsync(context, 404, "BLOB_UNKNOWN", "blob unknown to registry");
                return;
            }

            await Reply.BytesAsync(context, 200, blob, "application/octet-stream", new Dictionary<string, string> { ["Docker-Content-Digest"] = digest });
            return;
        }

        await Reply.ErrorAsync(context, 404, "NAME_UNKNOWN", "repository name not known to registry");
    }

    private async Task<bool> AuthorisedAsync(HttpListenerContext context)
    {
        var authorization = context.Request.Headers["Authorization"];
        if (authorization is not null && authorization.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            if (_validTokens.ContainsKey(authorization["Bearer ".Length..]))
            {
                return true;
            }

            if (ExpiredTokenAs400)
            {
                await Reply.ErrorAsync(context, 400, "DENIED", "Your Authorization Token is invalid.");
                return false;
            }
        }

        await Reply.ErrorAsync(context, 401, "UNAUTHORIZED", "authentication required", new Dictionary<string, string> { ["WWW-Authenticate"] = Challenge });
        return false;
    }

    private async Task IssueTokenAsync(HttpListenerContext context)
    {
        if (TokenUser is not null)
        {
            var expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(TokenUser));
            if (context.Request.Headers["Authorization"] != expected)
            {
                await Reply.ErrorAsync(context, 401, "UNAUTHORIZED", "bad credentials");
                return;
            }
        }

        var token = $"tok-{Interlocked.Increment(ref _tokensIssued)}";
        _validTokens[token] = 0;
        await Reply.JsonAsync(context, 200, $"{{\"token\":\"{token}\",\"expires_in\":300}}");
    }
}
