using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace OpenLm.Mirror.Tests.Core;

/// <summary>One repository of a <see cref="FakeRegistry"/>: manifests by tag and by digest, blobs by digest.</summary>
internal sealed class FakeRepository(string name)
{
    public string Name { get; } = name;

    /// <summary>Manifests by tag and by digest (a stored manifest has both keys).</summary>
    public ConcurrentDictionary<string, (byte[] Bytes, string MediaType)> Manifests { get; } = new(StringComparer.Ordinal);

    public ConcurrentDictionary<string, byte[]> Blobs { get; } = new(StringComparer.Ordinal);

    /// <summary>Every tag and the digest of the manifest it names.</summary>
    public IReadOnlyDictionary<string, string> Tags =>
        Manifests.Where(m => !m.Key.Contains(':', StringComparison.Ordinal)).ToDictionary(m => m.Key, m => FakeRegistry.Sha256(m.Value.Bytes), StringComparer.Ordinal);

    /// <summary>Stores a manifest under its digest and, when <paramref name="tag"/> is not null, that tag.</summary>
    public string AddManifest(string? tag, byte[] bytes, string mediaType)
    {
        var digest = FakeRegistry.Sha256(bytes);
        if (tag is not null)
        {
            Manifests[tag] = (bytes, mediaType);
        }

        Manifests[digest] = (bytes, mediaType);
        return digest;
    }

    public string AddBlob(byte[] bytes)
    {
        var digest = FakeRegistry.Sha256(bytes);
        Blobs[digest] = bytes;
        return digest;
    }

    /// <summary>The digests a manifest references that this repository does not hold (blobs, or child manifests of an index).</summary>
    public IReadOnlyList<string> MissingReferences(byte[] manifest)
    {
        var missing = new List<string>();
        JsonObject? json;
        try
        {
            json = JsonNode.Parse(manifest) as JsonObject;
        }
        catch (System.Text.Json.JsonException)
        {
            return missing;
        }

        if (json is null)
        {
            return missing;
        }

        if (json["manifests"] is JsonArray children)
        {
            missing.AddRange(Digests(children).Where(d => !Manifests.ContainsKey(d)));
        }

        var blobs = new List<string>();
        if (json["config"] is JsonObject config && config["digest"]?.GetValue<string>() is { } configDigest)
        {
            blobs.Add(configDigest);
        }

        if (json["layers"] is JsonArray layers)
        {
            blobs.AddRange(Digests(layers));
        }

        missing.AddRange(blobs.Where(d => !Blobs.ContainsKey(d)));
        return missing;
    }

    private static IEnumerable<string> Digests(JsonArray descriptors) =>
        descriptors.OfType<JsonObject>().Select(d => d["digest"]?.GetValue<string>()).OfType<string>();
}

/// <summary>
/// A minimal OCI distribution server on <see cref="LoopbackServer"/>, with optional bearer-token auth, and an
/// <see cref="Intercept"/> hook so tests can misbehave on purpose. It serves any repository path (see
/// <see cref="Repo"/>); <see cref="Manifests"/> and <see cref="Blobs"/> are those of <see cref="Repository"/>. Uploads
/// are sessions (<c>POST</c> → <c>PATCH</c>* → <c>PUT ?digest=</c>) bound to the repository that opened them, and a
/// <c>POST …/blobs/uploads/?mount=&lt;digest&gt;&amp;from=&lt;repo&gt;</c> mounts as the distribution spec says: 201 when
/// the blob exists in <c>from</c>, else 202 and an upload session.
/// </summary>
internal sealed partial class FakeRegistry : IAsyncDisposable
{
    public const string Repository = "test/repo";
    public const string Service = "fake-registry";
    private readonly ConcurrentDictionary<string, byte> _validTokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, FakeRepository> _repositories = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, UploadSession> _uploads = new(StringComparer.Ordinal);
    private int _tokensIssued;

    private FakeRegistry()
    {
        var main = Repo(Repository);
        Manifests = main.Manifests;
        Blobs = main.Blobs;
        Server = LoopbackServer.Start(HandleAsync);
    }

    public LoopbackServer Server { get; }

    public string Authority => Server.Authority;

    /// <summary>The manifests of <see cref="Repository"/>.</summary>
    public ConcurrentDictionary<string, (byte[] Bytes, string MediaType)> Manifests { get; }

    /// <summary>The blobs of <see cref="Repository"/>.</summary>
    public ConcurrentDictionary<string, byte[]> Blobs { get; }

    /// <summary>Every repository that holds something or was asked for by a test.</summary>
    public IReadOnlyDictionary<string, FakeRepository> Repositories => _repositories;

    /// <summary>Requests without a valid bearer token get a 401 challenge.</summary>
    public bool RequireToken { get; init; }

    /// <summary>How a revoked token is refused: ECR-style 400 DENIED (true) or 401 with a challenge (false).</summary>
    public bool ExpiredTokenAs400 { get; set; }

    /// <summary>Whether manifest responses carry Docker-Content-Digest.</summary>
    public bool SendDigestHeader { get; set; } = true;

    /// <summary>A Docker-Content-Digest to send instead of the real one.</summary>
    public string? DigestHeaderOverride { get; set; }

    /// <summary>
    /// Refuse a manifest PUT (400 MANIFEST_BLOB_UNKNOWN) whose config, layers or child manifests the repository does not
    /// hold, as Distribution does; off by default so tests can store manifests in any order.
    /// </summary>
    public bool CheckManifestReferences { get; set; }

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

    /// <summary>The repository <paramref name="name"/> (created empty when it did not exist).</summary>
    public FakeRepository Repo(string name) => _repositories.GetOrAdd(name, n => new FakeRepository(n));

    /// <summary>Whether <paramref name="name"/> exists and holds the blob <paramref name="digest"/>.</summary>
    public bool HasBlob(string name, string digest) => _repositories.TryGetValue(name, out var repo) && repo.Blobs.ContainsKey(digest);

    public string AddManifest(string tag, byte[] bytes, string mediaType) => Repo(Repository).AddManifest(tag, bytes, mediaType);

    public string AddBlob(byte[] bytes) => Repo(Repository).AddBlob(bytes);

    public void RevokeTokens() => _validTokens.Clear();

    public ValueTask DisposeAsync() => Server.DisposeAsync();

    // /v2/<name>/(manifests|blobs|tags)/<rest>: the name is everything up to the last such component.
    [GeneratedRegex("^/v2/(?<name>.+)/(?<kind>manifests|blobs|tags)/(?<rest>[^/]*/?)$")]
    private static partial Regex ApiPath();

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

        if (path.StartsWith("/upload/", StringComparison.Ordinal))
        {
            await HandleUploadAsync(context, path["/upload/".Length..]);
            return;
        }

        var match = ApiPath().Match(path);
        if (!match.Success)
        {
            await Reply.ErrorAsync(context, 404, "NAME_UNKNOWN", "repository name not known to registry");
            return;
        }

        var name = match.Groups["name"].Value;
        var rest = match.Groups["rest"].Value;
        switch (match.Groups["kind"].Value)
        {
            case "manifests":
                await HandleManifestAsync(context, name, rest);
                return;
            case "blobs" when rest == "uploads/" && request.HttpMethod == "POST":
                await StartUploadAsync(context, name);
                return;
            case "blobs":
                await HandleBlobAsync(context, name, rest);
                return;
            default:
                await HandleTagsAsync(context, name, rest);
                return;
        }
    }

    private async Task HandleManifestAsync(HttpListenerContext context, string name, string reference)
    {
        var request = context.Request;
        if (request.HttpMethod == "PUT")
        {
            using var body = new MemoryStream();
            await request.InputStream.CopyToAsync(body);
            var bytes = body.ToArray();
            var digest = Sha256(bytes);
            if (reference.StartsWith("sha256:", StringComparison.Ordinal) && reference != digest)
            {
                await Reply.ErrorAsync(context, 400, "DIGEST_INVALID", "provided digest did not match uploaded content");
                return;
            }

            var repository = Repo(name);
            if (CheckManifestReferences && repository.MissingReferences(bytes) is { Count: > 0 } missing)
            {
                await Reply.ErrorAsync(context, 400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry: " + string.Join(", ", missing));
                return;
            }

            repository.AddManifest(reference == digest ? null : reference, bytes, request.ContentType ?? "application/octet-stream");
            await Reply.StatusAsync(context, 201, new Dictionary<string, string>
            {
                ["Docker-Content-Digest"] = digest,
                ["Location"] = $"/v2/{name}/manifests/{digest}",
            });
            return;
        }

        if (!_repositories.TryGetValue(name, out var repo) || !repo.Manifests.TryGetValue(reference, out var manifest))
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
    }

    private async Task HandleBlobAsync(HttpListenerContext context, string name, string digest)
    {
        if (!_repositories.TryGetValue(name, out var repo) || !repo.Blobs.TryGetValue(digest, out var blob))
        {
            await Reply.ErrorAsync(context, 404, "BLOB_UNKNOWN", "blob unknown to registry");
            return;
        }

        await Reply.BytesAsync(context, 200, blob, "application/octet-stream", new Dictionary<string, string> { ["Docker-Content-Digest"] = digest });
    }

    private async Task HandleTagsAsync(HttpListenerContext context, string name, string rest)
    {
        if (rest != "list" || context.Request.HttpMethod is not ("GET" or "HEAD") || !_repositories.TryGetValue(name, out var repo))
        {
            await Reply.ErrorAsync(context, 404, "NAME_UNKNOWN", "repository name not known to registry");
            return;
        }

        var tags = new JsonArray(repo.Tags.Keys.Order(StringComparer.Ordinal).Select(t => (JsonNode)JsonValue.Create(t)!).ToArray());
        await Reply.JsonAsync(context, 200, new JsonObject { ["name"] = name, ["tags"] = tags }.ToJsonString());
    }

    /// <summary>POST …/blobs/uploads/: a mount when asked for and possible (201), otherwise a new session (202).</summary>
    private async Task StartUploadAsync(HttpListenerContext context, string name)
    {
        var mount = context.Request.QueryString["mount"];
        var from = context.Request.QueryString["from"];
        if (mount is not null && from is not null && _repositories.TryGetValue(from, out var source) && source.Blobs.TryGetValue(mount, out var blob))
        {
            Repo(name).Blobs[mount] = blob;
            await Reply.StatusAsync(context, 201, new Dictionary<string, string>
            {
                ["Docker-Content-Digest"] = mount,
                ["Location"] = $"/v2/{name}/blobs/{mount}",
            });
            return;
        }

        var id = Guid.NewGuid().ToString("N");
        _uploads[id] = new UploadSession(name);
        await Reply.StatusAsync(context, 202, new Dictionary<string, string>
        {
            ["Location"] = $"/upload/{id}?state=abc",
            ["Docker-Upload-UUID"] = id,
            ["Range"] = "0-0",
        });
    }

    /// <summary>PATCH appends a chunk, PUT ?digest= appends the last bytes and commits, DELETE cancels.</summary>
    private async Task HandleUploadAsync(HttpListenerContext context, string id)
    {
        var request = context.Request;
        if (!_uploads.TryGetValue(id, out var session))
        {
            await Reply.ErrorAsync(context, 404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry");
            return;
        }

        if (request.HttpMethod == "DELETE")
        {
            _uploads.TryRemove(id, out _);
            await Reply.StatusAsync(context, 204);
            return;
        }

        if (request.HttpMethod is not ("PATCH" or "PUT"))
        {
            await Reply.ErrorAsync(context, 405, "UNSUPPORTED", "method not allowed on an upload session");
            return;
        }

        using var body = new MemoryStream();
        await request.InputStream.CopyToAsync(body);
        byte[] content;
        lock (session)
        {
            session.Content.Write(body.GetBuffer(), 0, (int)body.Length);
            content = session.Content.ToArray();
        }

        if (request.HttpMethod == "PATCH")
        {
            await Reply.StatusAsync(context, 202, new Dictionary<string, string>
            {
                ["Location"] = $"/upload/{id}?state=abc",
                ["Range"] = $"0-{Math.Max(0, content.Length - 1)}",
                ["Docker-Upload-UUID"] = id,
            });
            return;
        }

        var expected = request.QueryString["digest"];
        var actual = Sha256(content);
        _uploads.TryRemove(id, out _);
        if (expected != actual)
        {
            await Reply.ErrorAsync(context, 400, "DIGEST_INVALID", "provided digest did not match uploaded content");
            return;
        }

        Repo(session.Repository).Blobs[actual] = content;
        await Reply.StatusAsync(context, 201, new Dictionary<string, string>
        {
            ["Docker-Content-Digest"] = actual,
            ["Location"] = $"/v2/{session.Repository}/blobs/{actual}",
        });
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

    private sealed class UploadSession(string repository)
    {
        public string Repository { get; } = repository;

        public MemoryStream Content { get; } = new();
    }
}
