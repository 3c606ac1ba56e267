using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// Emulates Harbor v2 in front of a real Distribution registry, with the behaviour its API reference and issue tracker
/// describe: <c>GET /api/v2.0/systeminfo</c> (<c>harbor_version</c>); the projects API (<c>GET ?name=</c> matching
/// fuzzily, <c>HEAD ?project_name=</c>, <c>POST</c> with <c>project_name</c> / <c>metadata.public</c> answering 201 and a
/// Location, 409 CONFLICT "The project named X already exists", 403 for a robot, 401 anonymously); /v2 behind
/// Bearer tokens from <c>/service/token</c> (service <c>harbor-registry</c>) granting only what the account may do;
/// a repository in a project that does not exist answers <c>404 NOT_FOUND "project X not found"</c>; a push into a
/// proxy-cache project answers <c>403 DENIED "can not push artifact to a proxy project: X"</c>; a robot account
/// without push gets a pull-only token, so its push answers 401 <c>insufficient_scope</c>. Tag immutability rules are
/// listed by <c>GET /api/v2.0/projects/{project}/immutabletagrules</c> in Harbor's shape and enforced on a manifest PUT
/// by tag (<c>412 PRECONDITION "…configured as immutable"</c> when the tag exists with another digest). With
/// <see cref="RefuseMounts"/> a cross-repository mount answers 202 with an upload session, as Harbor does when the blob
/// is not linked in <c>from</c>.
/// </summary>
public sealed partial class HarborEmulator : IAsyncDisposable
{
    public const string AdminUser = "admin";
    public const string AdminPassword = "Harbor12345";
    public const string RobotUser = "robot$ci";
    public const string RobotPassword = "robot-secret-1";
    private const string Service = "harbor-registry";
    private readonly HttpClient _upstream = HttpForwarding.CreateUpstreamClient();
    private readonly ConcurrentDictionary<string, Project> _projects = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, HashSet<string>> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _apiCalls = new();
    private LoopbackHttpServer? _server;
    private int _nextId = 1;
    private int _blobWrites;
    private int _manifestPuts;
    private int _mountsRefused;
    private readonly ConcurrentDictionary<string, JsonArray> _immutableRules = new(StringComparer.Ordinal);

    public HarborEmulator(Uri upstream) => Upstream = upstream;

    public Uri Upstream { get; }

    public string Host => (_server ?? throw new InvalidOperationException("not started")).Authority;

    /// <summary>Whether the robot account has the push permission (it always has pull).</summary>
    public bool RobotCanPush { get; set; }

    /// <summary>PUT and PATCH requests that carried blob data to the upstream.</summary>
    public int BlobWrites => Volatile.Read(ref _blobWrites);

    public int ManifestPuts => Volatile.Read(ref _manifestPuts);

    /// <summary>Answer every mount with 202 and an upload session instead of mounting.</summary>
    public bool RefuseMounts { get; set; }

    public int MountsRefused => Volatile.Read(ref _mountsRefused);

    /// <summary>Adds an enabled tag immutability rule to <paramref name="project"/> (patterns are doublestar, repository without the project).</summary>
    public void AddImmutableRule(string project, string repositoryPattern = "**", string tagPattern = "**")
    {
        var rules = _immutableRules.GetOrAdd(project, _ => []);
        lock (rules)
        {
            rules.Add(new JsonObject
            {
                ["id"] = Interlocked.Increment(ref _nextId),
                ["project_id"] = _projects.TryGetValue(project, out var p) ? p.ProjectId : 0,
                ["disabled"] = false,
                ["priority"] = 0,
                ["action"] = "immutable",
                ["template"] = "immutable_template",
                ["tag_selectors"] = new JsonArray(new JsonObject { ["kind"] = "doublestar", ["decoration"] = "matches", ["pattern"] = tagPattern }),
                ["scope_selectors"] = new JsonObject { ["repository"] = new JsonArray(new JsonObject { ["kind"] = "doublestar", ["decoration"] = "repoMatches", ["pattern"] = repositoryPattern }) },
            });
        }
    }

    /// <summary>Projects API calls, as "METHOD path".</summary>
    public IReadOnlyCollection<string> ApiCalls => _apiCalls.ToArray();

    public bool HasProject(string name, out bool isPublic)
    {
        var found = _projects.TryGetValue(name, out var project);
        isPublic = found && project!.Public;
        return found;
    }

    public void AddProject(string name, bool proxyCache = false) =>
        _projects[name] = new Project(Interlocked.Increment(ref _nextId), name, Public: false, RegistryId: proxyCache ? 1 : null);

    public async Task StartAsync() => _server = await LoopbackHttpServer.StartAsync(IPAddress.Loopback, HandleAsync);

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _upstream.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        try
        {
            if (path == "/api/v2.0/systeminfo")
            {
                await HttpForwarding.WriteBodyAsync(context, 200, "application/json", new JsonObject { ["harbor_version"] = "v2.11.1-6b7ecba1", ["auth_mode"] = "db_auth", ["registry_url"] = Host }.ToJsonString());
            }
            else if (path == "/api/v2.0/projects")
            {
                await ProjectsAsync(context);
            }
            else if (ImmutableRulesPath().Match(path) is { Success: true } rules)
            {
                await ImmutableRulesAsync(context, rules.Groups["project"].Value);
            }
            else if (path == "/service/token")
            {
                await TokenAsync(context);
            }
            else if (path.StartsWith("/v2", StringComparison.Ordinal))
            {
                await RegistryAsync(context, path);
            }
            else
            {
                await WriteErrorAsync(context, 404, "NOT_FOUND", "not found");
            }
        }
        catch (Exception ex) when (HttpForwarding.IsClientGone(ex, context))
        {
        }
    }

    // ------------------------------------------------------------------ projects API

    private async Task ProjectsAsync(HttpContext context)
    {
        var request = context.Request;
        _apiCalls.Enqueue($"{request.Method} {request.Path}{request.QueryString}");
        var user = BasicUser(request);
        if (HttpMethods.IsHead(request.Method))
        {
            context.Response.StatusCode = _projects.ContainsKey(request.Query["project_name"].ToString()) ? 200 : 404;
            return;
        }

        if (HttpMethods.IsGet(request.Method))
        {
            var name = request.Query["name"].ToString();
            var list = new JsonArray();
            foreach (var project in _projects.Values.Where(p => p.Name.Contains(name, StringComparison.Ordinal) && (p.Public || user is not null)).OrderBy(p => p.ProjectId))
            {
                list.Add(new JsonObject
                {
                    ["project_id"] = project.ProjectId,
                    ["name"] = project.Name,
                    ["registry_id"] = project.RegistryId is { } id ? JsonValue.Create(id) : null,
                    ["metadata"] = new JsonObject { ["public"] = project.Public ? "true" : "false" },
                });
            }

            context.Response.Headers["X-Total-Count"] = list.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await HttpForwarding.WriteBodyAsync(context, 200, "application/json", list.ToJsonString());
            return;
        }

        if (!HttpMethods.IsPost(request.Method))
        {
            await WriteErrorAsync(context, 405, "METHOD_NOT_ALLOWED", "method not allowed");
            return;
        }

        if (user is null)
        {
            await WriteErrorAsync(context, 401, "UNAUTHORIZED", "UnAuthorized");
            return;
        }

        if (user != AdminUser)
        {
            await WriteErrorAsync(context, 403, "FORBIDDEN", "forbidden");
            return;
        }

        var body = await JsonNode.ParseAsync(request.Body, cancellationToken: context.RequestAborted) as JsonObject;
        var projectName = body?["project_name"]?.GetValue<string>();
        if (string.IsNullOrEmpty(projectName) || !ProjectName().IsMatch(projectName))
        {
            await WriteErrorAsync(context, 400, "BAD_REQUEST", $"validation failure: project_name '{projectName}' is invalid");
            return;
        }

        var created = new Project(Interlocked.Increment(ref _nextId), projectName, body!["metadata"]?["public"]?.ToString() is "true", null);
        if (!_projects.TryAdd(projectName, created))
        {
            await WriteErrorAsync(context, 409, "CONFLICT", $"The project named {projectName} already exists");
            return;
        }

        context.Response.StatusCode = 201;
        context.Response.Headers.Location = $"/api/v2.0/projects/{created.ProjectId}";
    }

    private async Task ImmutableRulesAsync(HttpContext context, string project)
    {
        _apiCalls.Enqueue($"{context.Request.Method} {context.Request.Path}");
        if (BasicUser(context.Request) is null)
        {
            await WriteErrorAsync(context, 401, "UNAUTHORIZED", "UnAuthorized");
            return;
        }

        if (!_projects.ContainsKey(project))
        {
            await WriteErrorAsync(context, 404, "NOT_FOUND", $"project {project} not found");
            return;
        }

        var rules = _immutableRules.GetOrAdd(project, _ => []);
        string json;
        lock (rules)
        {
            json = rules.ToJsonString();
        }

        await HttpForwarding.WriteBodyAsync(context, 200, "application/json", json);
    }

    /// <summary>Whether a rule of the project protects the tag (doublestar "**" and exact patterns, all the tests use).</summary>
    private bool Protected(string repository, string tag)
    {
        var parts = repository.Split('/', 2);
        if (parts.Length < 2 || !_immutableRules.TryGetValue(parts[0], out var rules))
        {
            return false;
        }

        lock (rules)
        {
            return rules.OfType<JsonObject>().Any(r =>
                Selects(r["scope_selectors"]!["repository"]![0]!["pattern"]!.GetValue<string>(), parts[1])
                && Selects(r["tag_selectors"]![0]!["pattern"]!.GetValue<string>(), tag));
        }

        static bool Selects(string pattern, string value) => pattern == "**" || pattern == value;
    }

    // ------------------------------------------------------------------ token service

    private async Task TokenAsync(HttpContext context)
    {
        var user = BasicUser(context.Request);
        if (context.Request.Headers.Authorization.Count > 0 && user is null)
        {
            await WriteErrorAsync(context, 401, "UNAUTHORIZED", "invalid credentials");
            return;
        }

        var granted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var scope in context.Request.Query["scope"].SelectMany(s => (s ?? string.Empty).Split(' ', StringSplitOptions.RemoveEmptyEntries)))
        {
            var parts = scope.Split(':');
            if (parts.Length != 3 || parts[0] != "repository" || user is null || !_projects.ContainsKey(parts[1].Split('/')[0]))
            {
                continue;
            }

            foreach (var action in parts[2].Split(','))
            {
                if (user == AdminUser || action == "pull" || (action == "push" && RobotCanPush))
                {
                    granted.Add($"{parts[1]}:{action}");
                }
            }
        }

        var token = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24));
        _tokens[token] = granted;
        await HttpForwarding.WriteBodyAsync(context, 200, "application/json", new JsonObject
        {
            ["token"] = token,
            ["access_token"] = token,
            ["expires_in"] = 1800,
            ["issued_at"] = DateTimeOffset.UtcNow.ToString("O"),
        }.ToJsonString());
    }

    // ------------------------------------------------------------------ registry

    private async Task RegistryAsync(HttpContext context, string path)
    {
        var request = context.Request;
        var header = request.Headers.Authorization.ToString();
        var granted = header.StartsWith("Bearer ", StringComparison.Ordinal) && _tokens.TryGetValue(header["Bearer ".Length..], out var g) ? g : null;
        var match = RepositoryPath().Match(path);
        if (!match.Success)
        {
            if (granted is null)
            {
                await ChallengeAsync(context, null, "UNAUTHORIZED", "unauthorized to access repository");
                return;
            }

            await ForwardAsync(context);
            return;
        }

        var name = match.Groups["name"].Value;
        var projectName = name.Split('/')[0];
        if (!_projects.TryGetValue(projectName, out var project))
        {
            await WriteErrorAsync(context, 404, "NOT_FOUND", $"project {projectName} not found");
            return;
        }

        var action = HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) ? "pull" : "push";
        if (action == "push" && project.RegistryId is not null)
        {
            await WriteErrorAsync(context, 403, "DENIED", $"can not push artifact to a proxy project: {projectName}");
            return;
        }

        if (granted is null || !granted.Contains($"{name}:{action}"))
        {
            await ChallengeAsync(context, $"repository:{name}:{action}", "UNAUTHORIZED", $"unauthorized to access repository: {name}, action: {action}: unauthorized to access repository: {name}, action: {action}");
            return;
        }

        var kind = match.Groups["kind"].Value;
        var rest = match.Groups["rest"].Value;
        if (kind == "blobs" && rest.StartsWith("uploads/", StringComparison.Ordinal) && rest.Length > "uploads/".Length
            && (HttpMethods.IsPatch(request.Method) || (HttpMethods.IsPut(request.Method) && request.ContentLength > 0)))
        {
            Interlocked.Increment(ref _blobWrites);
        }

        if (kind == "manifests" && HttpMethods.IsPut(request.Method))
        {
            Interlocked.Increment(ref _manifestPuts);
            if (!rest.StartsWith("sha256:", StringComparison.Ordinal) && Protected(name, rest) && await ExistingTagDigestAsync(name, rest) is { } existing)
            {
                request.EnableBuffering();
                using var hash = System.Security.Cryptography.SHA256.Create();
                var pushed = "sha256:" + Convert.ToHexString(await hash.ComputeHashAsync(request.Body, context.RequestAborted)).ToLowerInvariant();
                request.Body.Position = 0;
                if (pushed != existing)
                {
                    await WriteErrorAsync(context, 412, "PRECONDITION", $"Failed to process request due to '{name}:{rest}' configured as immutable.");
                    return;
                }
            }
        }

        if (RefuseMounts && kind == "blobs" && rest == "uploads/" && HttpMethods.IsPost(request.Method) && request.Query.ContainsKey("mount"))
        {
            // Harbor opens an upload session (202) when the blob is not linked in 'from': forward as a plain upload start.
            Interlocked.Increment(ref _mountsRefused);
            request.QueryString = QueryString.Empty;
        }

        await ForwardAsync(context);
    }

    private async Task<string?> ExistingTagDigestAsync(string repository, string tag)
    {
        using var head = new HttpRequestMessage(HttpMethod.Head, new Uri(Upstream, $"v2/{repository}/manifests/{tag}"));
        foreach (var type in new[] { "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json" })
        {
            head.Headers.Accept.ParseAdd(type);
        }

        using var response = await _upstream.SendAsync(head);
        return response.IsSuccessStatusCode && response.Headers.TryGetValues("Docker-Content-Digest", out var values) ? values.First() : null;
    }

    private Task ChallengeAsync(HttpContext context, string? scope, string code, string message)
    {
        context.Response.Headers.WWWAuthenticate = $"Bearer realm=\"http://{Host}/service/token\",service=\"{Service}\"{(scope is null ? string.Empty : $",scope=\"{scope}\",error=\"insufficient_scope\"")}";
        return WriteErrorAsync(context, 401, code, message);
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

        HttpForwarding.CopyResponseHead(response, context.Response, rewriteLocation: HttpForwarding.AuthorityRewriter(Upstream, _server!.BaseAddress));
        if (!HttpMethods.IsHead(context.Request.Method))
        {
            await using var body = await response.Content.ReadAsStreamAsync(context.RequestAborted);
            await HttpForwarding.CopyBodyAsync(body, context.Response.Body, context.RequestAborted);
        }
    }

    /// <summary>The account a Basic header names when its password is right, else null.</summary>
    private static string? BasicUser(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Basic ", StringComparison.Ordinal))
        {
            return null;
        }

        var decoded = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(header["Basic ".Length..]));
        return decoded switch
        {
            AdminUser + ":" + AdminPassword => AdminUser,
            RobotUser + ":" + RobotPassword => RobotUser,
            _ => null,
        };
    }

    private static Task WriteErrorAsync(HttpContext context, int status, string code, string message) =>
        HttpForwarding.WriteRegistryErrorAsync(context, status, code, message);

    private sealed record Project(long ProjectId, string Name, bool Public, long? RegistryId);

    [GeneratedRegex(@"^/v2/(?<name>.+?)/(?<kind>blobs|manifests|tags|referrers)/(?<rest>.*)$")]
    private static partial Regex RepositoryPath();

    [GeneratedRegex(@"^/api/v2\.0/projects/(?<project>[^/]+)/immutabletagrules$")]
    private static partial Regex ImmutableRulesPath();

    [GeneratedRegex(@"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")]
    private static partial Regex ProjectName();
}
