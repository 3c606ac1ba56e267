using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Harbor;

/// <summary>A Harbor project as <c>GET /api/v2.0/projects</c> lists it.</summary>
public sealed record HarborProject(string Name, long ProjectId, bool Public, long? RegistryId)
{
    /// <summary>A proxy-cache project (it has an upstream registry): Harbor refuses pushes into it with 403.</summary>
    public bool IsProxyCache => RegistryId is > 0;
}

/// <summary>
/// The few Harbor v2.0 REST calls the pre-check needs, sent to the registry's own host with the registry's
/// credentials (HTTP Basic, as Harbor's API takes for users and robot accounts): read a project by name
/// (<c>GET /api/v2.0/projects?name=</c> matches fuzzily, so the exact name is picked from the list) and create one
/// (<c>POST /api/v2.0/projects</c>, private).
/// </summary>
public sealed class HarborApi(RegistryClient client)
{
    /// <summary>A scope no registry token is ever cached under, so the registry's Bearer token is not sent to the API.</summary>
    private static readonly IReadOnlyList<string> ApiScope = ["harbor-api"];

    public async Task<HarborProject?> GetProjectAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var uri = client.ApiUri($"api/v2.0/projects?name={Uri.EscapeDataString(name)}&page_size=100");
        using var response = await client.Retry.ExecuteAsync(ct => new ValueTask<HttpResponseMessage>(client.SendAsync(HttpMethod.Get, uri, ApiScope, ct, Authorize)), cancellationToken).ConfigureAwait(false);
        await FailAsync(response, $"read Harbor project '{name}'", cancellationToken).ConfigureAwait(false);
        JsonNode? body;
        try
        {
            body = await JsonNode.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (JsonException ex)
        {
            throw new OperationException($"Harbor at {client.Host} answered the projects API with something that is not JSON: {ex.Message}", ex);
        }

        if (body is not JsonArray projects)
        {
            return null;
        }

        foreach (var project in projects.OfType<JsonObject>())
        {
            if (!string.Equals(project["name"]?.GetValue<string>(), name, StringComparison.Ordinal))
            {
                continue;
            }

            var isPublic = project["metadata"]?["public"]?.ToString() is "true";
            long? registryId = project["registry_id"] is JsonValue id && id.TryGetValue<long>(out var value) ? value : null;
            var projectId = project["project_id"] is JsonValue pid && pid.TryGetValue<long>(out var p) ? p : 0;
            return new HarborProject(name, projectId, isPublic, registryId);
        }

        return null;
    }

    /// <summary>
    /// The project's tag immutability rules (<c>GET /api/v2.0/projects/{project}/immutabletagrules</c>; the name is marked
    /// as a name with <c>X-Is-Resource-Name</c>, so a numeric project name is not read as an id).
    /// </summary>
    public async Task<IReadOnlyList<HarborImmutableRule>> GetImmutableTagRulesAsync(string project, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(project);
        var uri = client.ApiUri($"api/v2.0/projects/{Uri.EscapeDataString(project)}/immutabletagrules?page_size=100");
        using var response = await client.Retry.ExecuteAsync(
            ct => new ValueTask<HttpResponseMessage>(client.SendAsync(HttpMethod.Get, uri, ApiScope, ct, request =>
            {
                Authorize(request);
                request.Headers.Add("X-Is-Resource-Name", "true");
            })),
            cancellationToken).ConfigureAwait(false);
        await FailAsync(response, $"read the tag immutability rules of Harbor project '{project}'", cancellationToken).ConfigureAwait(false);
        try
        {
            return HarborImmutableRule.ParseList(await JsonNode.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), cancellationToken: cancellationToken).ConfigureAwait(false));
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            throw new OperationException($"Harbor at {client.Host} answered the immutable tag rules API with something that is not a rule list: {ex.Message}", ex);
        }
    }

    /// <summary>Creates a private project; one that appeared meanwhile (409) counts as created.</summary>
    public async Task CreateProjectAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var json = new JsonObject { ["project_name"] = name, ["metadata"] = new JsonObject { ["public"] = "false" } }.ToJsonString();
        using var response = await client.SendAsync(
            HttpMethod.Post,
            client.ApiUri("api/v2.0/projects"),
            ApiScope,
            cancellationToken,
            Authorize,
            () => new StringContent(json, Encoding.UTF8, "application/json")).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Conflict)
        {
            return;
        }

        await FailAsync(response, $"create Harbor project '{name}'", cancellationToken).ConfigureAwait(false);
    }

    private void Authorize(HttpRequestMessage request)
    {
        if (client.Options.Credentials.GetCredential(client.Host) is { IdentityToken: null } credential)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", credential.BasicHeaderValue);
        }
    }

    private async Task FailAsync(HttpResponseMessage response, string what, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var error = await RegistryException.FromResponseAsync(response, $"{what} on {client.Host}", cancellationToken).ConfigureAwait(false);
        throw response.StatusCode switch
        {
            HttpStatusCode.Unauthorized => new OperationException($"Harbor at {client.Host} refused the credentials for its API ({what}): {error.Message}", error) { Remedy = Remedy.Credentials, Subject = client.Host },
            HttpStatusCode.Forbidden => new OperationException($"Harbor at {client.Host} does not let these credentials {what} (a robot account or project member cannot create projects; a system administrator, or a user when project creation is open to everyone, can): {error.Message}", error) { Remedy = Remedy.Credentials, Subject = client.Host },
            _ => error,
        };
    }
}
