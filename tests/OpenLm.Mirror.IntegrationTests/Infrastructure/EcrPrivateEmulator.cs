using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// Emulates Amazon ECR (private) in front of a real Distribution registry, with the push-side behaviour its docs and
/// users' reports describe: a repository must be created (through the ECR API) before anything is pushed to it, else
/// every /v2 request for it answers <c>404 NAME_UNKNOWN "The repository with name 'R' does not exist in the registry
/// with id 'ID'"</c>; PATCH chunks under 5 MiB are refused; in an IMMUTABLE repository a tag PUT over an existing tag
/// answers <c>400 TAG_INVALID</c> even when the digest is the same. The fake ECR API (a second listener, AWS JSON 1.1)
/// serves CreateRepository, DescribeRepositories and GetAuthorizationToken and refuses requests whose SigV4
/// Authorization header does not have the documented shape.
/// </summary>
public sealed partial class EcrPrivateEmulator : IAsyncDisposable
{
    public const string RegistryId = "123456789012";
    private const long MinChunk = 5L << 20;
    private readonly HttpClient _upstream = HttpForwarding.CreateUpstreamClient();
    private readonly ConcurrentDictionary<string, bool> _repositories = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _apiCalls = new();
    private readonly ConcurrentDictionary<string, bool> _passwords = new(StringComparer.Ordinal);
    private LoopbackHttpServer? _registry;
    private LoopbackHttpServer? _api;
    private int _blobWrites;
    private int _manifestPuts;
    private int _tagInvalid;
    private int _nameUnknown;
    private int _badSignatures;

    public EcrPrivateEmulator(Uri upstream, string region = "us-east-1")
    {
        Upstream = upstream;
        Region = region;
    }

    public Uri Upstream { get; }

    public string Region { get; }

    public string RegistryHost => (_registry ?? throw new InvalidOperationException("not started")).Authority;

    public Uri ApiEndpoint => (_api ?? throw new InvalidOperationException("not started")).BaseAddress;

    /// <summary>PUT and PATCH requests that carried blob data to the upstream.</summary>
    public int BlobWrites => Volatile.Read(ref _blobWrites);

    public int ManifestPuts => Volatile.Read(ref _manifestPuts);

    public int TagInvalidCount => Volatile.Read(ref _tagInvalid);

    public int NameUnknownCount => Volatile.Read(ref _nameUnknown);

    public int BadSignatures => Volatile.Read(ref _badSignatures);

    /// <summary>ECR API actions called, in order.</summary>
    public IReadOnlyCollection<string> ApiCalls => _apiCalls.ToArray();

    /// <summary>Require <c>Basic AWS:&lt;password&gt;</c> from GetAuthorizationToken on /v2 (like ECR; off by default).</summary>
    public bool RequireLogin { get; set; }

    public bool Exists(string repository) => _repositories.ContainsKey(repository);

    public void CreateRepository(string repository, bool immutable = false) => _repositories[repository] = immutable;

    public void SetImmutable(string repository, bool immutable) => _repositories[repository] = immutable;

    public async Task StartAsync()
    {
        _registry = await LoopbackHttpServer.StartAsync(IPAddress.Loopback, HandleRegistryAsync);
        _api = await LoopbackHttpServer.StartAsync(IPAddress.Loopback, HandleApiAsync);
    }

    public async ValueTask DisposeAsync()
    {
        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }

        if (_api is not null)
        {
            await _api.DisposeAsync();
        }

        _upstream.Dispose();
    }

    public static string NameUnknownMessage(string repository) => $"The repository with name '{repository}' does not exist in the registry with id '{RegistryId}'";

    // ------------------------------------------------------------------ registry

    private async Task HandleRegistryAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        try
        {
            if (RequireLogin && path.StartsWith("/v2", StringComparison.Ordinal) && !LoggedIn(context.Request))
            {
                context.Response.Headers.WWWAuthenticate = $"Basic realm=\"https://{RegistryId}.dkr.ecr.{Region}.amazonaws.com/\",service=\"ecr.amazonaws.com\"";
                await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status401Unauthorized, "DENIED", "Not Authorized");
                return;
            }

            var match = RepositoryPath().Match(path);
            if (match.Success)
            {
                var name = match.Groups["name"].Value;
                if (!_repositories.TryGetValue(name, out var immutable))
                {
                    Interlocked.Increment(ref _nameUnknown);
                    await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status404NotFound, "NAME_UNKNOWN", NameUnknownMessage(name));
                    return;
                }

                var kind = match.Groups["kind"].Value;
                var rest = match.Groups["rest"].Value;
                if (kind == "blobs" && HttpMethods.IsPatch(context.Request.Method) && context.Request.ContentLength is { } length && length < MinChunk)
                {
                    // ECR keeps layer parts of at least 5 MiB; smaller PATCH bodies are refused.
                    await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status400BadRequest, "BLOB_UPLOAD_INVALID", $"Upload chunk size {length} is smaller than the minimum part size of {MinChunk} bytes");
                    return;
                }

                if (kind == "blobs" && rest.StartsWith("uploads/", StringComparison.Ordinal) && rest.Length > "uploads/".Length
                    && (HttpMethods.IsPatch(context.Request.Method) || (HttpMethods.IsPut(context.Request.Method) && context.Request.ContentLength > 0)))
                {
                    Interlocked.Increment(ref _blobWrites);
                }

                if (kind == "manifests" && HttpMethods.IsPut(context.Request.Method))
                {
                    Interlocked.Increment(ref _manifestPuts);
                    if (immutable && !rest.StartsWith("sha256:", StringComparison.Ordinal) && await UpstreamHasAsync($"v2/{name}/manifests/{rest}", context.RequestAborted))
                    {
                        Interlocked.Increment(ref _tagInvalid);
                        await HttpForwarding.WriteRegistryErrorAsync(context, StatusCodes.Status400BadRequest, "TAG_INVALID", $"The image tag '{rest}' already exists in the '{name}' repository and cannot be overwritten because the repository is immutable.");
                        return;
                    }
                }
            }

            await ForwardAsync(context);
        }
        catch (Exception ex) when (HttpForwarding.IsClientGone(ex, context))
        {
        }
    }

    private bool LoggedIn(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Basic ", StringComparison.Ordinal))
        {
            return false;
        }

        var decoded = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(header["Basic ".Length..]));
        return decoded.StartsWith("AWS:", StringComparison.Ordinal) && _passwords.ContainsKey(decoded["AWS:".Length..]);
    }

    private async Task<bool> UpstreamHasAsync(string pathAndQuery, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, HttpForwarding.BuildUpstreamUri(Upstream, pathAndQuery));
        request.Headers.Accept.ParseAdd("application/vnd.oci.image.index.v1+json");
        request.Headers.Accept.ParseAdd("application/vnd.oci.image.manifest.v1+json");
        request.Headers.Accept.ParseAdd("application/vnd.docker.distribution.manifest.v2+json");
        request.Headers.Accept.ParseAdd("application/vnd.docker.distribution.manifest.list.v2+json");
        using var response = await _upstream.SendAsync(request, cancellationToken);
        return response.IsSuccessStatusCode;
    }

    private async Task ForwardAsync(HttpContext context)
    {
        var target = HttpForwarding.BuildUpstreamUri(Upstream, HttpForwarding.PathAndQuery(context));
        using var request = HttpForwarding.CreateUpstreamRequest(context, target, name => string.Equals(name, "Authorization", StringComparison.OrdinalIgnoreCase));
        using var response = await HttpForwarding.SendUpstreamAsync(_upstream, request, context);
        if (response is null)
        {
            return;
        }

        HttpForwarding.CopyResponseHead(response, context.Response, rewriteLocation: HttpForwarding.AuthorityRewriter(Upstream, _registry!.BaseAddress));
        if (!HttpMethods.IsHead(context.Request.Method))
        {
            await using var body = await response.Content.ReadAsStreamAsync(context.RequestAborted);
            await HttpForwarding.CopyBodyAsync(body, context.Response.Body, context.RequestAborted);
        }
    }

    // ------------------------------------------------------------------ ECR API (AWS JSON 1.1)

    private async Task HandleApiAsync(HttpContext context)
    {
        var request = context.Request;
        var target = request.Headers["X-Amz-Target"].ToString();
        var authorization = request.Headers.Authorization.ToString();
        var amzDate = request.Headers["X-Amz-Date"].ToString();
        var shape = SigV4Shape().Match(authorization);
        if (!HttpMethods.IsPost(request.Method)
            || !string.Equals(request.ContentType, "application/x-amz-json-1.1", StringComparison.Ordinal)
            || !target.StartsWith("AmazonEC2ContainerRegistry_V20150921.", StringComparison.Ordinal))
        {
            await WriteApiErrorAsync(context, 400, "UnknownOperationException", "The requested operation is not supported.");
            return;
        }

        if (!shape.Success
            || amzDate.Length != 16
            || !amzDate.StartsWith(shape.Groups["date"].Value, StringComparison.Ordinal)
            || shape.Groups["region"].Value != Region
            || !shape.Groups["signed"].Value.Split(';').ToHashSet().IsSupersetOf(["host", "x-amz-date", "x-amz-target", "content-type"]))
        {
            Interlocked.Increment(ref _badSignatures);
            await WriteApiErrorAsync(context, 403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided.");
            return;
        }

        var action = target["AmazonEC2ContainerRegistry_V20150921.".Length..];
        _apiCalls.Enqueue(action);
        var body = await JsonNode.ParseAsync(request.Body, cancellationToken: context.RequestAborted) as JsonObject ?? [];
        switch (action)
        {
            case "CreateRepository":
                var name = body["repositoryName"]!.GetValue<string>();
                if (!_repositories.TryAdd(name, string.Equals(body["imageTagMutability"]?.GetValue<string>(), "IMMUTABLE", StringComparison.Ordinal)))
                {
                    await WriteApiErrorAsync(context, 400, "RepositoryAlreadyExistsException", $"The repository with name '{name}' already exists in the registry with id '{RegistryId}'");
                    return;
                }

                await WriteApiAsync(context, new JsonObject { ["repository"] = Describe(name) });
                return;
            case "DescribeRepositories":
                var list = new JsonArray();
                foreach (var wanted in body["repositoryNames"]?.AsArray().Select(n => n!.GetValue<string>()) ?? _repositories.Keys)
                {
                    if (!_repositories.ContainsKey(wanted))
                    {
                        await WriteApiErrorAsync(context, 400, "RepositoryNotFoundException", NameUnknownMessage(wanted));
                        return;
                    }

                    list.Add(Describe(wanted));
                }

                await WriteApiAsync(context, new JsonObject { ["repositories"] = list });
                return;
            case "GetAuthorizationToken":
                var password = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(48));
                _passwords[password] = true;
                await WriteApiAsync(context, new JsonObject
                {
                    ["authorizationData"] = new JsonArray(new JsonObject
                    {
                        ["authorizationToken"] = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("AWS:" + password)),
                        ["expiresAt"] = DateTimeOffset.UtcNow.AddHours(12).ToUnixTimeMilliseconds() / 1000.0,
                        ["proxyEndpoint"] = $"https://{RegistryId}.dkr.ecr.{Region}.amazonaws.com",
                    }),
                });
                return;
            default:
                await WriteApiErrorAsync(context, 400, "UnknownOperationException", $"{action} is not emulated.");
                return;
        }
    }

    private JsonObject Describe(string name) => new()
    {
        ["registryId"] = RegistryId,
        ["repositoryName"] = name,
        ["repositoryArn"] = $"arn:aws:ecr:{Region}:{RegistryId}:repository/{name}",
        ["repositoryUri"] = $"{RegistryHost}/{name}",
        ["imageTagMutability"] = _repositories.TryGetValue(name, out var immutable) && immutable ? "IMMUTABLE" : "MUTABLE",
    };

    private static Task WriteApiAsync(HttpContext context, JsonObject body) =>
        HttpForwarding.WriteBodyAsync(context, 200, "application/x-amz-json-1.1", body.ToJsonString());

    private static Task WriteApiErrorAsync(HttpContext context, int status, string type, string message) =>
        HttpForwarding.WriteBodyAsync(context, status, "application/x-amz-json-1.1", new JsonObject { ["__type"] = type, ["message"] = message }.ToJsonString());

    [GeneratedRegex(@"^/v2/(?<name>.+?)/(?<kind>blobs|manifests|tags|referrers)/(?<rest>.*)$")]
    private static partial Regex RepositoryPath();

    [GeneratedRegex(@"^AWS4-HMAC-SHA256 Credential=(?<key>[A-Z0-9]{16,128})/(?<date>\d{8})/(?<region>[a-z0-9-]+)/ecr/aws4_request, SignedHeaders=(?<signed>[a-z0-9;-]+), Signature=[0-9a-f]{64}$")]
    private static partial Regex SigV4Shape();
}
