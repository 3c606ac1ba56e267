using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Amazon.Runtime.Credentials;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Aws;

/// <summary>Where and as whom the ECR API is called.</summary>
public sealed record EcrApiOptions
{
    /// <summary>The AWS region (from the registry host, else <c>AWS_REGION</c> / <c>AWS_DEFAULT_REGION</c> / the profile).</summary>
    public required string Region { get; init; }

    /// <summary>The API endpoint; default <c>https://api.ecr.REGION.amazonaws.com/</c>, or <c>AWS_ENDPOINT_URL_ECR</c> / <c>AWS_ENDPOINT_URL</c>.</summary>
    public Uri? Endpoint { get; init; }

    /// <summary>Resolves credentials; default: AWSSDK.Core's standard chain (environment, profile, SSO, container, instance role).</summary>
    public Func<CancellationToken, Task<AwsCredentials>>? Credentials { get; init; }

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>The endpoint AWS SDKs use for ECR: the service-specific or global endpoint override, else the regional one.</summary>
    public static Uri DefaultEndpoint(string region)
    {
        var overridden = Environment.GetEnvironmentVariable("AWS_ENDPOINT_URL_ECR") is { Length: > 0 } ecr ? ecr
            : Environment.GetEnvironmentVariable("AWS_ENDPOINT_URL") is { Length: > 0 } all ? all : null;
        return overridden is not null && Uri.TryCreate(overridden, UriKind.Absolute, out var uri)
            ? uri
            : new Uri($"https://api.ecr.{region}.amazonaws.com/");
    }

    /// <summary>The region from the environment or the shared config, or null.</summary>
    public static string? DefaultRegion()
    {
        if (Environment.GetEnvironmentVariable("AWS_REGION") is { Length: > 0 } region)
        {
            return region;
        }

        if (Environment.GetEnvironmentVariable("AWS_DEFAULT_REGION") is { Length: > 0 } fallback)
        {
            return fallback;
        }

        try
        {
            return Amazon.Runtime.FallbackRegionFactory.GetRegionEndpoint()?.SystemName;
        }
        catch (Amazon.Runtime.AmazonClientException)
        {
            return null;
        }
    }

    /// <summary>Credentials from AWSSDK.Core's default chain.</summary>
    public static async Task<AwsCredentials> ResolveDefaultCredentialsAsync(CancellationToken cancellationToken)
    {
        try
        {
            var resolved = await DefaultAWSCredentialsIdentityResolver.GetCredentialsAsync(null).ConfigureAwait(false);
            var immutable = await resolved.GetCredentialsAsync().ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            return new AwsCredentials(immutable.AccessKey, immutable.SecretKey, immutable.UseToken ? immutable.Token : null);
        }
        catch (Amazon.Runtime.AmazonClientException ex)
        {
            throw new OperationException(
                $"no AWS credentials were found for the ECR API ({ex.Message}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where an instance or container role is available", ex);
        }
    }
}

/// <summary>One repository as <c>DescribeRepositories</c> reports it.</summary>
public sealed record EcrRepository(string Name, string Uri, bool ImmutableTags);

/// <summary>A registry login from <c>GetAuthorizationToken</c>: user <c>AWS</c>, a password valid for 12 hours.</summary>
public sealed record EcrLogin(string Username, string Password, DateTimeOffset ExpiresAt, Uri ProxyEndpoint);

/// <summary>The ECR API error a call ended with (<c>__type</c> and <c>message</c> of the JSON 1.1 error body).</summary>
public sealed class EcrApiException(string type, string message, int status)
    : MirrorException(FailureKind.Operational, $"ECR API: {type}: {message} (HTTP {status})")
{
    public string Type { get; } = type;

    public int Status { get; } = status;
}

/// <summary>
/// The three ECR API calls we need, as small AWS JSON 1.1 requests (<c>X-Amz-Target:
/// AmazonEC2ContainerRegistry_V20150921.&lt;Action&gt;</c>) signed with SigV4 — AWSSDK.ECR is not needed for them.
/// </summary>
public sealed class EcrApi : IDisposable
{
    private const string TargetPrefix = "AmazonEC2ContainerRegistry_V20150921.";
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly EcrApiOptions _options;
    private readonly Uri _endpoint;
    private readonly SemaphoreSlim _credentialLock = new(1, 1);
    private AwsCredentials? _credentials;

    public EcrApi(EcrApiOptions options, HttpClient? http = null)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _endpoint = options.Endpoint ?? EcrApiOptions.DefaultEndpoint(options.Region);
        _ownsHttp = http is null;
        _http = http ?? new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
    }

    public Uri Endpoint => _endpoint;

    /// <summary>The repository, or null when ECR answers <c>RepositoryNotFoundException</c>.</summary>
    public async Task<EcrRepository?> DescribeRepositoryAsync(string? registryId, string name, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["repositoryNames"] = new JsonArray(name) };
        AddRegistryId(body, registryId);
        try
        {
            var answer = await CallAsync("DescribeRepositories", body, cancellationToken).ConfigureAwait(false);
            var repository = answer["repositories"]?.AsArray().FirstOrDefault();
            return repository is null ? null : ToRepository(repository);
        }
        catch (EcrApiException ex) when (ex.Type == "RepositoryNotFoundException")
        {
            return null;
        }
    }

    /// <summary>Creates a private repository (mutable tags, the account's default encryption).</summary>
    public async Task<EcrRepository> CreateRepositoryAsync(string? registryId, string name, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["repositoryName"] = name, ["imageTagMutability"] = "MUTABLE" };
        AddRegistryId(body, registryId);
        try
        {
            var answer = await CallAsync("CreateRepository", body, cancellationToken).ConfigureAwait(false);
            return ToRepository(answer["repository"] ?? throw new OperationException($"ECR API: CreateRepository for '{name}' answered without a repository"));
        }
        catch (EcrApiException ex) when (ex.Type == "RepositoryAlreadyExistsException")
        {
            // Created meanwhile (another import, a person): what we wanted.
            return await DescribeRepositoryAsync(registryId, name, cancellationToken).ConfigureAwait(false)
                ?? throw new OperationException($"ECR API: repository '{name}' already exists but cannot be described", ex);
        }
    }

    /// <summary>A Docker login for the registry (<c>GetAuthorizationToken</c>), valid until <see cref="EcrLogin.ExpiresAt"/>.</summary>
    public async Task<EcrLogin> GetAuthorizationTokenAsync(string? registryId, CancellationToken cancellationToken)
    {
        var body = new JsonObject();
        if (registryId is not null)
        {
            body["registryIds"] = new JsonArray(registryId);
        }

        var answer = await CallAsync("GetAuthorizationToken", body, cancellationToken).ConfigureAwait(false);
        var data = answer["authorizationData"]?.AsArray().FirstOrDefault()
            ?? throw new OperationException("ECR API: GetAuthorizationToken answered without authorizationData");
        var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(data["authorizationToken"]!.GetValue<string>()));
        var colon = decoded.IndexOf(':');
        if (colon <= 0)
        {
            throw new OperationException("ECR API: GetAuthorizationToken answered with a token that is not USER:PASSWORD");
        }

        var expires = data["expiresAt"] is { } at ? DateTimeOffset.FromUnixTimeMilliseconds((long)(at.GetValue<double>() * 1000)) : _options.Time.GetUtcNow().AddHours(12);
        var proxy = data["proxyEndpoint"]?.GetValue<string>() is { } p && Uri.TryCreate(p, UriKind.Absolute, out var u) ? u : _endpoint;
        return new EcrLogin(decoded[..colon], decoded[(colon + 1)..], expires, proxy);
    }

    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }

        _credentialLock.Dispose();
    }

    private static void AddRegistryId(JsonObject body, string? registryId)
    {
        if (registryId is not null)
        {
            body["registryId"] = registryId;
        }
    }

    private static EcrRepository ToRepository(JsonNode node) => new(
        node["repositoryName"]?.GetValue<string>() ?? string.Empty,
        node["repositoryUri"]?.GetValue<string>() ?? string.Empty,
        string.Equals(node["imageTagMutability"]?.GetValue<string>(), "IMMUTABLE", StringComparison.Ordinal)
            || string.Equals(node["imageTagMutability"]?.GetValue<string>(), "IMMUTABLE_WITH_EXCLUSION", StringComparison.Ordinal));

    private async Task<JsonNode> CallAsync(string action, JsonObject body, CancellationToken cancellationToken)
    {
        var credentials = await CredentialsAsync(cancellationToken).ConfigureAwait(false);
        var bytes = Encoding.UTF8.GetBytes(body.ToJsonString());
        var now = _options.Time.GetUtcNow();
        var host = _endpoint.IsDefaultPort ? _endpoint.Host : _endpoint.Authority;
        var headers = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["content-type"] = "application/x-amz-json-1.1",
            ["host"] = host,
            ["x-amz-date"] = SigV4Signer.AmzDate(now),
            ["x-amz-target"] = TargetPrefix + action,
        };
        if (credentials.SessionToken is { } token)
        {
            headers["x-amz-security-token"] = token;
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint);
        request.Content = new ByteArrayContent(bytes);
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/x-amz-json-1.1");
        foreach (var (name, value) in headers.Where(h => h.Key is not ("content-type" or "host")))
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        request.Headers.TryAddWithoutValidation("Authorization", SigV4Signer.Authorization("POST", _endpoint, headers, bytes, credentials, _options.Region, "ecr", now));
        using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        JsonNode? json = null;
        try
        {
            json = text.Length == 0 ? new JsonObject() : JsonNode.Parse(text);
        }
        catch (JsonException)
        {
        }

        if (!response.IsSuccessStatusCode)
        {
            var type = json?["__type"]?.GetValue<string>() ?? (response.Headers.TryGetValues("x-amzn-ErrorType", out var types) ? types.First() : "UnknownError");
            type = type.Contains('#') ? type[(type.IndexOf('#') + 1)..] : type;
            var message = json?["message"]?.GetValue<string>() ?? json?["Message"]?.GetValue<string>() ?? text;
            throw new EcrApiException(type, message, (int)response.StatusCode);
        }

        return json ?? throw new OperationException($"ECR API: {action} answered with a body that is not JSON");
    }

    private async Task<AwsCredentials> CredentialsAsync(CancellationToken cancellationToken)
    {
        if (_credentials is { } cached)
        {
            return cached;
        }

        await _credentialLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return _credentials ??= await (_options.Credentials ?? EcrApiOptions.ResolveDefaultCredentialsAsync)(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _credentialLock.Release();
        }
    }
}
