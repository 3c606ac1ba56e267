using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry.Kinds;

namespace OpenLm.Mirror.Registry.Probe;

/// <summary>Whether a repository accepts a push, as found by starting an upload session (and cancelling it).</summary>
public enum PushAccess
{
    /// <summary>The registry opened an upload session (202): pushes are accepted.</summary>
    Allowed,

    /// <summary>The repository does not exist and the registry does not create it on push (ECR: <c>NAME_UNKNOWN</c>).</summary>
    RepositoryMissing,

    /// <summary>The first path component (Harbor project, Quay / Docker Hub organisation) does not exist.</summary>
    NamespaceMissing,

    /// <summary>The credentials may not push here (401/403, <c>DENIED</c>, <c>UNAUTHORIZED</c>, <c>insufficient_scope</c>).</summary>
    Denied,
}

/// <summary>How the registry answered a cross-repository mount of a blob nothing has (<c>POST …/blobs/uploads/?mount=&amp;from=</c>).</summary>
public enum MountAnswer
{
    /// <summary>Not asked: fewer than two repositories the push is allowed into.</summary>
    NotAsked,

    /// <summary>202 with an upload session (cancelled at once), as the distribution spec says: mounts are offered, declined ones uploaded.</summary>
    Declined,

    /// <summary>201 for a blob that does not exist: the registry's mount answers cannot be trusted, so no mount is tried.</summary>
    ClaimedUnknownBlob,

    /// <summary>An error status: the registry refuses mount requests, so no mount is tried (each would cost a failed request).</summary>
    Refused,
}

/// <summary>One target repository as the probe found it.</summary>
public sealed record RepositoryProbe(string Repository, PushAccess Access, string? Detail);

/// <summary>Which product the registry is and how <c>GET /v2/</c> answered (the first step of the probe).</summary>
public sealed record RegistryIdentity(RegistryKind Kind, string KindSource, int ApiStatus, string? ApiVersion);

/// <summary>What the target registry is and accepts, found before anything is pushed.</summary>
public sealed record ProbeReport
{
    public required string Host { get; init; }

    public required RegistryKind Kind { get; init; }

    /// <summary>How the kind was decided: the caller's choice, the host name, response headers, Harbor's API, or the default.</summary>
    public required string KindSource { get; init; }

    public required RegistryProfile Profile { get; init; }

    /// <summary>Status of <c>GET /v2/</c> after authentication (200 when the API and credentials are fine).</summary>
    public required int ApiStatus { get; init; }

    /// <summary>The <c>Docker-Distribution-API-Version</c> header, if sent.</summary>
    public string? ApiVersion { get; init; }

    /// <summary>Whether <c>GET /v2/&lt;name&gt;/referrers/&lt;digest&gt;</c> answered with an index; null when no repository could be asked.</summary>
    public bool? ReferrersApi { get; init; }

    public required IReadOnlyList<RepositoryProbe> Repositories { get; init; }

    /// <summary>How a mount of an unknown blob between two target repositories was answered.</summary>
    public MountAnswer Mounts { get; init; }

    /// <summary>The HTTP status of that mount request, when it was asked.</summary>
    public int? MountStatus { get; init; }

    /// <summary>Whether the copy should offer mounts: the registry declined an unknown blob correctly (or was not asked).</summary>
    public bool MountsUsable => Mounts is MountAnswer.Declined or MountAnswer.NotAsked;

    /// <summary>Human-readable findings, one line each, for plans and reports.</summary>
    public IReadOnlyList<string> Findings()
    {
        var lines = new List<string>
        {
            $"registry {Host}: {RegistryKinds.Name(Kind)} ({KindSource}); /v2/ answered {ApiStatus}{(ApiVersion is null ? string.Empty : $" ({ApiVersion})")}{(ApiStatus == 404 ? " — not the OCI Distribution API base (is this the registry's address, or its web UI?)" : string.Empty)}",
            $"uploads: monolithic PUT{(Profile.ChunkedUploads ? $", chunked PATCH on 413{(Profile.MinChunkBytes > 0 ? $" (chunks of at least {Profile.MinChunkBytes >> 20} MiB)" : string.Empty)}" : "; this registry takes no chunked uploads")}",
            ReferrersApi switch
            {
                true => "referrers API: supported",
                false => "referrers API: not supported (referrers would be stored as tag-schema fallbacks)",
                null => "referrers API: not checked (no repository could be asked)",
            },
        };
        lines.Add(Mounts switch
        {
            MountAnswer.Declined => "mounts: supported (a mount of a blob no repository has was declined with an upload session, as the spec says); shared blobs are mounted across repositories, a declined mount is uploaded",
            MountAnswer.ClaimedUnknownBlob => $"mounts: not trusted (the registry answered {MountStatus} to mounting a blob nothing has); shared blobs are uploaded to every repository",
            MountAnswer.Refused => $"mounts: refused (HTTP {MountStatus}); shared blobs are uploaded to every repository",
            _ => "mounts: not checked (fewer than two repositories to push into); a declined mount is uploaded",
        });
        var allowed = Repositories.Count(r => r.Access == PushAccess.Allowed);
        lines.Add($"push: allowed in {allowed} of {Repositories.Count} repositories");
        lines.AddRange(Repositories.Where(r => r.Access != PushAccess.Allowed).Select(r => $"push: {r.Repository}: {Describe(r.Access)}{(r.Detail is null ? string.Empty : $" ({r.Detail})")}"));
        return lines;
    }

    private static string Describe(PushAccess access) => access switch
    {
        PushAccess.RepositoryMissing => "repository does not exist",
        PushAccess.NamespaceMissing => "project / organisation does not exist",
        PushAccess.Denied => "push denied",
        _ => "allowed",
    };
}

/// <summary>
/// The capability probe: <c>GET /v2/</c> (API and credentials), which product the registry is (the caller's choice,
/// else host name patterns, response headers, Harbor's <c>/api/v2.0/systeminfo</c>), whether each target repository
/// accepts a push (an upload session is opened and at once cancelled with DELETE: no byte is stored), and whether the
/// referrers API exists (a real <c>GET …/referrers/&lt;digest&gt;</c>: ECR sends <c>OCI-Subject</c> without one).
/// </summary>
public static class RegistryProbe
{
    /// <summary>A digest nothing has: the referrers question needs one, the answer's shape is what counts.</summary>
    private const string ProbeDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    public static async Task<ProbeReport> ProbeAsync(
        RegistryClient client,
        RegistryKind requested,
        IReadOnlyCollection<string> repositories,
        int concurrency,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(repositories);
        var identity = await IdentifyAsync(client, requested, cancellationToken).ConfigureAwait(false);
        return await ProbeAsync(client, identity, repositories, concurrency, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>GET /v2/</c> (API and credentials) and which product the registry is. When neither the caller nor the host name
    /// tells the kind, Harbor's system info is asked alongside <c>/v2/</c> (one round trip for both instead of two in a row);
    /// its answer is used only when the <c>/v2/</c> headers and the token realm tell nothing.
    /// </summary>
    public static async Task<RegistryIdentity> IdentifyAsync(RegistryClient client, RegistryKind requested, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        var byHost = requested == RegistryKind.Auto ? RegistryKinds.FromHost(client.Host) : null;
        var harbor = requested == RegistryKind.Auto && byHost is null ? IsHarborAsync(client, cancellationToken) : null;
        int status;
        string? apiVersion;
        RegistryKind? fromHeaders;
        try
        {
            using var v2 = await client.Retry.ExecuteAsync(ct => new ValueTask<HttpResponseMessage>(client.SendAsync(HttpMethod.Get, client.ApiUri("v2/"), [], ct)), cancellationToken).ConfigureAwait(false);
            status = (int)v2.StatusCode;
            apiVersion = v2.Headers.TryGetValues("Docker-Distribution-API-Version", out var versions) ? versions.FirstOrDefault() : null;
            fromHeaders = RegistryKinds.FromHeaders(v2.Headers);
            if (v2.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            {
                var error = await RegistryException.FromResponseAsync(v2, $"registry {client.Host}", cancellationToken).ConfigureAwait(false);
                throw new OperationException($"registry {client.Host} refused the credentials: {error.Message}", error) { Remedy = Remedy.Credentials, Subject = client.Host };
            }
        }
        catch when (harbor is not null)
        {
            // The system info question is not left running behind the failure (its own outcome no longer matters).
            await Settled(harbor).ConfigureAwait(false);
            throw;
        }

        var (kind, source) = requested != RegistryKind.Auto ? (requested, "chosen")
            : byHost is { } fromHost ? (fromHost, "host name")
            : fromHeaders is { } byHeader ? (byHeader, "response headers")
            : RegistryKinds.FromChallenge(client.LastBearerChallenge) is { } byRealm ? (byRealm, "token realm")
            : await harbor!.ConfigureAwait(false) ? (RegistryKind.Harbor, "Harbor system info API")
            : (RegistryKind.Distribution, "no other kind detected");
        if (harbor is not null)
        {
            // Asked and not needed (the headers told): its answer, or its failure, is dropped.
            await Settled(harbor).ConfigureAwait(false);
        }

        return new RegistryIdentity(kind, source, status, apiVersion);
    }

    /// <summary>
    /// The rest of the probe for a registry already identified: push access of every repository (in parallel), the mount
    /// question and the referrers question. The last two are asked alongside the push probes, of the repositories they
    /// pick when every push is allowed (the first two, and the first, in name order); only when the push probes pick
    /// others are they asked again, of those. No byte is stored: every upload session opened is cancelled.
    /// </summary>
    public static async Task<ProbeReport> ProbeAsync(
        RegistryClient client,
        RegistryIdentity identity,
        IReadOnlyCollection<string> repositories,
        int concurrency,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(repositories);
        var kind = identity.Kind;
        var names = repositories.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var mountGuess = names.Count >= 2 ? Guess(ProbeMountAsync(client, names[0], names[1], cancellationToken)) : null;
        var referrersGuess = names.Count >= 1 ? Guess(HasReferrersApiAsync(client, names[0], cancellationToken)) : null;
        var results = new ConcurrentBag<RepositoryProbe>();
        try
        {
            await Parallel.ForEachAsync(
                names,
                new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, concurrency), CancellationToken = cancellationToken },
                async (repository, ct) => results.Add(await ProbePushAsync(client, kind, repository, ct).ConfigureAwait(false))).ConfigureAwait(false);
        }
        catch
        {
            // Neither guess throws; both end (their upload sessions cancelled) before the failure is reported.
            await Task.WhenAll(mountGuess ?? Task.CompletedTask, referrersGuess ?? Task.CompletedTask).ConfigureAwait(false);
            throw;
        }

        var ordered = results.OrderBy(r => r.Repository, StringComparer.Ordinal).ToList();
        var asked = ordered.FirstOrDefault(r => r.Access == PushAccess.Allowed);
        var pushable = ordered.Where(r => r.Access == PushAccess.Allowed).Take(2).ToList();
        var guessedMount = mountGuess is null ? null : await mountGuess.ConfigureAwait(false);
        var guessedReferrers = referrersGuess is null ? null : await referrersGuess.ConfigureAwait(false);
        (MountAnswer Answer, int? Status) mount = pushable.Count < 2 ? (MountAnswer.NotAsked, null)
            : pushable[0].Repository == names[0] && pushable[1].Repository == names[1] && guessedMount is { } guessed ? guessed
            : await ProbeMountAsync(client, pushable[0].Repository, pushable[1].Repository, cancellationToken).ConfigureAwait(false);
        bool? referrers = asked is null ? null
            : asked.Repository == names[0] && guessedReferrers is { } known ? known
            : await HasReferrersApiAsync(client, asked.Repository, cancellationToken).ConfigureAwait(false);
        return new ProbeReport
        {
            Host = client.Host,
            Kind = kind,
            KindSource = identity.KindSource,
            Profile = RegistryProfile.For(kind),
            ApiStatus = identity.ApiStatus,
            ApiVersion = identity.ApiVersion,
            ReferrersApi = referrers,
            Repositories = ordered,
            Mounts = mount.Answer,
            MountStatus = mount.Status,
        };
    }

    /// <summary>A question asked ahead of knowing it is the right one: a failure only means it is asked again, in order.</summary>
    private static async Task<T?> Guess<T>(Task<T> question)
        where T : struct
    {
        try
        {
            return await question.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is MirrorException or HttpRequestException or OperationCanceledException or TimeoutException)
        {
            return null;
        }
    }

    /// <summary>Waits for <paramref name="task"/> to end and drops its outcome (a failure included, observed so it is not reported as unobserved).</summary>
    private static Task Settled(Task task) =>
        task.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>
    /// Asks <paramref name="into"/> to mount a blob nothing has from <paramref name="from"/>. A registry that follows the
    /// spec opens an upload session instead (202; cancelled at once, nothing is stored); 201 would claim a blob that does
    /// not exist; an error status refuses mounts altogether.
    /// </summary>
    private static async Task<(MountAnswer Answer, int? Status)> ProbeMountAsync(RegistryClient client, string into, string from, CancellationToken cancellationToken)
    {
        IReadOnlyList<string> scopes = [$"repository:{into}:pull,push", $"repository:{from}:pull"];
        var uri = client.ApiUri($"v2/{into}/blobs/uploads/?mount={Uri.EscapeDataString(ProbeDigest)}&from={Uri.EscapeDataString(from)}");
        using var response = await client.Retry.ExecuteAsync(
            ct => new ValueTask<HttpResponseMessage>(client.SendAsync(HttpMethod.Post, uri, scopes, ct, content: () => new ByteArrayContent([]))),
            cancellationToken).ConfigureAwait(false);
        var status = (int)response.StatusCode;
        switch (response.StatusCode)
        {
            case HttpStatusCode.Accepted:
                if (response.Headers.Location is { } location)
                {
                    await CancelUploadAsync(client, location.IsAbsoluteUri ? location : new Uri(client.BaseUri, location), scopes, cancellationToken).ConfigureAwait(false);
                }

                return (MountAnswer.Declined, status);
            case HttpStatusCode.Created:
                return (MountAnswer.ClaimedUnknownBlob, status);
            default:
                return (MountAnswer.Refused, status);
        }
    }

    /// <summary>Opens an upload session in <paramref name="repository"/> and cancels it at once.</summary>
    public static async Task<RepositoryProbe> ProbePushAsync(RegistryClient client, RegistryKind kind, string repository, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        IReadOnlyList<string> scopes = [$"repository:{repository}:pull,push"];
        using var response = await client.Retry.ExecuteAsync(
            ct => new ValueTask<HttpResponseMessage>(client.SendAsync(HttpMethod.Post, client.ApiUri($"v2/{repository}/blobs/uploads/"), scopes, ct, content: () => new ByteArrayContent([]))),
            cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Accepted)
        {
            if (response.Headers.Location is { } location)
            {
                await CancelUploadAsync(client, location.IsAbsoluteUri ? location : new Uri(client.BaseUri, location), scopes, cancellationToken).ConfigureAwait(false);
            }

            return new RepositoryProbe(repository, PushAccess.Allowed, null);
        }

        if (response.IsSuccessStatusCode)
        {
            return new RepositoryProbe(repository, PushAccess.Allowed, null);
        }

        var errors = await RegistryException.ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false);
        var detail = errors.Count > 0 ? string.Join("; ", errors.Select(e => string.IsNullOrEmpty(e.Message) ? e.Code : $"{e.Code}: {e.Message}")) : $"HTTP {(int)response.StatusCode}";
        var access = response.StatusCode switch
        {
            // Harbor answers 404 NOT_FOUND "project X not found"; ECR 404 NAME_UNKNOWN "The repository with name ... does not exist".
            HttpStatusCode.NotFound when kind is RegistryKind.Harbor or RegistryKind.Quay or RegistryKind.DockerHub
                || detail.Contains("project", StringComparison.OrdinalIgnoreCase) => PushAccess.NamespaceMissing,
            HttpStatusCode.NotFound => PushAccess.RepositoryMissing,
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => PushAccess.Denied,
            _ when errors.Any(e => e.Code is "NAME_UNKNOWN") => PushAccess.RepositoryMissing,
            _ when errors.Any(e => e.Code is "DENIED" or "UNAUTHORIZED") => PushAccess.Denied,
            _ => throw await RegistryException.FromResponseAsync(response, $"probe push to {client.Host}/{repository}", cancellationToken).ConfigureAwait(false),
        };
        return new RepositoryProbe(repository, access, detail);
    }

    private static async Task CancelUploadAsync(RegistryClient client, Uri location, IReadOnlyList<string> scopes, CancellationToken cancellationToken)
    {
        try
        {
            using var cancelled = await client.SendAsync(HttpMethod.Delete, location, scopes, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            // An abandoned empty session expires on its own (Distribution purges them); the probe's answer stands.
        }
    }

    private static async Task<bool> IsHarborAsync(RegistryClient client, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await client.SendAsync(HttpMethod.Get, client.ApiUri("api/v2.0/systeminfo"), [], cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode || response.Content.Headers.ContentType?.MediaType?.Contains("json", StringComparison.OrdinalIgnoreCase) != true)
            {
                return false;
            }

            using var doc = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), cancellationToken: cancellationToken).ConfigureAwait(false);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("harbor_version", out _);
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or MirrorException)
        {
            return false;
        }
    }

    private static async Task<bool> HasReferrersApiAsync(RegistryClient client, string repository, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await client.SendAsync(
                HttpMethod.Get,
                client.ApiUri($"v2/{repository}/referrers/{ProbeDigest}"),
                [$"repository:{repository}:pull"],
                cancellationToken,
                r => r.Headers.Accept.ParseAdd(Oci.MediaTypes.OciIndex)).ConfigureAwait(false);
            return response.IsSuccessStatusCode
                && response.Content.Headers.ContentType?.MediaType == Oci.MediaTypes.OciIndex;
        }
        catch (Exception ex) when (ex is HttpRequestException or MirrorException)
        {
            return false;
        }
    }
}
