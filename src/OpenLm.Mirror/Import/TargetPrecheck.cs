using System.Collections.Concurrent;
using OpenLm.Mirror.Aws;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Harbor;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Registry.Kinds;
using OpenLm.Mirror.Registry.Probe;
using OpenLm.Mirror.Registry.Upload;

namespace OpenLm.Mirror.Import;

/// <summary>Why the target would refuse part of the bundle.</summary>
public enum TargetProblemKind
{
    /// <summary>The repository does not exist and the registry does not create it on push (ECR).</summary>
    RepositoryMissing,

    /// <summary>The project / organisation (first path component) does not exist (Harbor, Quay, Docker Hub).</summary>
    NamespaceMissing,

    /// <summary>The credentials may not push to the repository.</summary>
    PushDenied,

    /// <summary>The repository path has more components than the registry allows.</summary>
    PathTooDeep,

    /// <summary>An immutable tag already names another manifest; the import would have to move it.</summary>
    ImmutableTag,

    /// <summary>The Harbor project is a proxy cache (it mirrors another registry): Harbor refuses pushes into it.</summary>
    ProxyCacheProject,
}

/// <summary>One thing the target would refuse, with what a fix needs to know (a front end writes the exact command).</summary>
public sealed record TargetProblem(TargetProblemKind Kind, string Repository, string Message)
{
    public string? Tag { get; init; }

    /// <summary>The AWS region of an ECR target (for the <c>aws ecr</c> command that fixes it).</summary>
    public string? Region { get; init; }

    /// <summary>The ECR registry (account) id, when the host names it.</summary>
    public string? RegistryId { get; init; }

    /// <summary>The missing project / organisation.</summary>
    public string? Namespace { get; init; }

    /// <summary>The most path components the registry takes.</summary>
    public int? MaxPathComponents { get; init; }

    /// <summary>The permissions the account lacks on the repository's project (Harbor robot accounts: "push", "pull, push").</summary>
    public string? MissingPermissions { get; init; }

    /// <summary>The import can create what is missing itself (with <see cref="PrecheckOptions.CreateRepositories"/>).</summary>
    public bool Creatable { get; init; }

    /// <summary>The account the credentials name (e.g. a Harbor robot account <c>robot$ci</c>), when known.</summary>
    public string? Account { get; init; }
}

/// <summary>The target cannot take the whole bundle: every reason, found before any byte moved. Exit code 1.</summary>
public sealed class TargetNotReadyException(string host, IReadOnlyList<TargetProblem> problems)
    : MirrorException(FailureKind.Operational, BuildMessage(host, problems))
{
    public string Host { get; } = host;

    public IReadOnlyList<TargetProblem> Problems { get; } = problems;

    private static string BuildMessage(string host, IReadOnlyList<TargetProblem> problems) =>
        $"{host} cannot take this bundle; nothing was pushed. {problems.Count} problem{(problems.Count == 1 ? string.Empty : "s")}:\n"
        + string.Join('\n', problems.Select(p => "  - " + p.Message));
}

/// <summary>What the pre-check is asked to do.</summary>
public sealed record PrecheckOptions
{
    public RegistryKind Kind { get; init; } = RegistryKind.Auto;

    /// <summary>Create missing ECR repositories / Harbor projects (private) before the copy.</summary>
    public bool CreateRepositories { get; init; }

    /// <summary>Most path components a target repository may have; null takes the registry kind's limit (if any).</summary>
    public int? MaxPathComponents { get; init; }

    /// <summary>Registry requests in flight while reading tags and probing repositories (each is small; many hide the round trip).</summary>
    public int Concurrency { get; init; } = 32;

    /// <summary>Upload blobs in chunks of this many bytes from the start (at least 256 KiB; never below the registry's minimum); null: monolithic until a 413.</summary>
    public long? ChunkBytes { get; init; }

    /// <summary>Builds the ECR API client for a region (tests point it at an emulator); default: the standard endpoint and credential chain.</summary>
    public Func<string, EcrApi>? EcrApiFactory { get; init; }
}

/// <summary>What the pre-check found: the probe, tags already in place, and the problems (empty when the import may start).</summary>
public sealed record PrecheckResult(ProbeReport Probe, IReadOnlyList<string> Findings, IReadOnlyList<TargetProblem> Problems)
{
    /// <summary>What each of the bundle's tags named in the target when the pre-check read it (absent: not there or not readable).</summary>
    public IReadOnlyDictionary<(string Repository, string Tag), Digest> Tags { get; init; } = new Dictionary<(string Repository, string Tag), Digest>();
}

/// <summary>
/// Nothing is pushed until the target is known to accept the whole bundle: the probe asks every target repository
/// for an upload session; missing repositories are created on request (ECR <c>CreateRepository</c>); path depth is
/// checked against the registry's limit; every tag is read with HEAD, and one that names another manifest in an
/// immutable-tag repository (ECR's <c>imageTagMutability</c>) is a problem too. All problems are reported together.
/// </summary>
public sealed class TargetPrecheck(RegistryConnector registries, IMirrorLog log)
{
    /// <param name="identifying">The target's identity when the caller already asked for it (<see cref="RegistryProbe.IdentifyAsync"/> of <paramref name="host"/>); else it is asked here.</param>
    /// <param name="whileProbing">
    /// Reads the caller runs meanwhile, given the tags as read (the import's existence pass): it starts once the tags are
    /// read, alongside the push probes, and the pre-check returns only after it ended. It must not write: nothing may be
    /// pushed before the pre-check passes.
    /// </param>
    public async Task<PrecheckResult> RunAsync(
        string host,
        IReadOnlyList<(Reference Target, Digest Digest)> images,
        PrecheckOptions options,
        CancellationToken cancellationToken,
        Task<RegistryIdentity>? identifying = null,
        Func<IReadOnlyDictionary<(string Repository, string Tag), Digest>, CancellationToken, Task>? whileProbing = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(options);
        var client = registries.Client(host);
        // Tags first: a repository whose every tag already names the bundle's manifest needs no push, so a re-import
        // asks it nothing more (and needs no push permission there). GET /v2/ and the kind detection go alongside: both
        // are reads, and a re-import then costs one round trip on top of the connections' set-up.
        identifying ??= RegistryProbe.IdentifyAsync(client, options.Kind, cancellationToken);
        // A registry whose /v2/ challenge is already known (the import asks while the bundle is verified) has told its
        // token realm: one token for every repository's tag reads is fetched first, instead of a 401 and a token per
        // repository. Not known yet: the tags go at once, each repository fetching its own token as needed.
        var reading = ReadTagsAsync(client, images, options.Concurrency, cancellationToken);
        try
        {
            await Task.WhenAll(identifying, reading).ConfigureAwait(false);
        }
        catch
        {
            // The identity's failure (refused credentials) is the one to report; neither is left running.
            await Task.WhenAll(Settled(identifying), Settled(reading)).ConfigureAwait(false);
            await identifying.ConfigureAwait(false);
            await reading.ConfigureAwait(false);
            throw;
        }

        var current = await reading.ConfigureAwait(false);
        var repositories = images.Where(i => i.Target.Tag is null || current.GetValueOrDefault((i.Target.Repository, i.Target.Tag)) != i.Digest)
            .Select(i => i.Target.Repository).Distinct(StringComparer.Ordinal).ToList();
        using var overlapStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var overlap = whileProbing?.Invoke(current, overlapStop.Token) ?? Task.CompletedTask;
        PrecheckResult result;
        try
        {
            result = await CheckAsync(client, host, images, current, repositories, await identifying.ConfigureAwait(false), options, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await overlapStop.CancelAsync().ConfigureAwait(false);
            await Settled(overlap).ConfigureAwait(false);
            throw;
        }

        if (result.Problems.Count > 0)
        {
            // The import stops here: what the reads would have found is not needed.
            await overlapStop.CancelAsync().ConfigureAwait(false);
            await Settled(overlap).ConfigureAwait(false);
        }
        else
        {
            await overlap.ConfigureAwait(false);
        }

        return result;
    }

    /// <summary>Waits for <paramref name="task"/> to end and drops its outcome (a failure is observed, not reported).</summary>
    private static Task Settled(Task task) =>
        task.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private async Task<PrecheckResult> CheckAsync(
        RegistryClient client,
        string host,
        IReadOnlyList<(Reference Target, Digest Digest)> images,
        ConcurrentDictionary<(string Repository, string Tag), Digest> current,
        List<string> repositories,
        RegistryIdentity identity,
        PrecheckOptions options,
        CancellationToken cancellationToken)
    {
        // One token for every push probe (and the pushes after it), as for the tag reads.
        await client.PrefetchTokenAsync(repositories.Select(r => (IReadOnlyList<string>)[$"repository:{r}:pull,push"]).ToList(), cancellationToken).ConfigureAwait(false);
        var probe = await RegistryProbe.ProbeAsync(client, identity, repositories, options.Concurrency, cancellationToken).ConfigureAwait(false);
        var findings = new List<string>();

        // Chunked uploads (after a 413) never go below the kind's part minimum (ECR: 5 MiB).
        var tuning = UploadTuning.For(client);
        tuning.MinChunkBytes = Math.Max(tuning.MinChunkBytes, probe.Profile.MinChunkBytes);
        if (!probe.MountsUsable)
        {
            tuning.DisableMounts();
        }

        if (probe.Kind == RegistryKind.Distribution)
        {
            // CNCF Distribution takes a blob in one POST (…/uploads/?digest=): one round trip per blob instead of two.
            tuning.TrySinglePost();
        }

        if (options.ChunkBytes is { } chunk)
        {
            if (chunk < UploadTuning.FloorChunkBytes)
            {
                throw new InputException($"the chunk size must be at least {UploadTuning.FloorChunkBytes >> 10} KiB (got {chunk} bytes)");
            }

            tuning.UseChunks(chunk);
        }
        EcrRegistryAddress.TryParse(host, out var ecrAddress);
        var region = ecrAddress?.Region ?? (probe.Kind == RegistryKind.Ecr ? EcrApiOptions.DefaultRegion() : null);
        using var ecr = probe.Kind == RegistryKind.Ecr && region is not null ? (options.EcrApiFactory ?? DefaultEcrApi)(region) : null;

        var access = probe.Repositories.ToDictionary(r => r.Repository, StringComparer.Ordinal);
        if (options.CreateRepositories)
        {
            await CreateMissingAsync(client, probe, ecr, ecrAddress?.RegistryId, access, findings, cancellationToken).ConfigureAwait(false);
        }

        var problems = new List<TargetProblem>();
        var handled = new HashSet<string>(StringComparer.Ordinal);
        if (probe.Kind == RegistryKind.Harbor)
        {
            await CheckHarborAsync(client, probe.Kind, repositories, options.CreateRepositories, access, problems, handled, findings, cancellationToken).ConfigureAwait(false);
        }

        var maxComponents = options.MaxPathComponents ?? probe.Profile.MaxPathComponents;
        foreach (var repository in repositories)
        {
            var components = repository.Split('/').Length;
            if (maxComponents is { } max && components > max)
            {
                problems.Add(new TargetProblem(TargetProblemKind.PathTooDeep, repository, $"{host}/{repository}: {components} path components, but {RegistryKinds.Name(probe.Kind)} takes at most {max}; map the images to shorter names") { MaxPathComponents = max });
                continue;
            }

            if (handled.Contains(repository))
            {
                continue;
            }

            var found = access[repository];
            switch (found.Access)
            {
                case PushAccess.RepositoryMissing:
                    problems.Add(new TargetProblem(TargetProblemKind.RepositoryMissing, repository, $"{host}/{repository}: the repository does not exist and {RegistryKinds.Name(probe.Kind)} does not create it on push ({found.Detail}); create it first")
                    {
                        Region = region,
                        RegistryId = ecrAddress?.RegistryId,
                    });
                    break;
                case PushAccess.NamespaceMissing:
                    var ns = repository.Split('/')[0];
                    problems.Add(new TargetProblem(TargetProblemKind.NamespaceMissing, repository, $"{host}/{repository}: the project or organisation '{ns}' does not exist ({found.Detail}); create it first") { Namespace = ns });
                    break;
                case PushAccess.Denied:
                    problems.Add(new TargetProblem(TargetProblemKind.PushDenied, repository, $"{host}/{repository}: these credentials may not push here ({found.Detail}); they need pull and push on this repository"));
                    break;
            }
        }

        var ready = repositories.Where(r => access[r].Access == PushAccess.Allowed && problems.All(p => p.Repository != r)).ToHashSet(StringComparer.Ordinal);
        Func<string, string, bool> immutable;
        if (probe.Kind == RegistryKind.Harbor)
        {
            immutable = await HarborImmutableTagsAsync(client, ready, findings, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var repositoriesImmutable = await ImmutableRepositoriesAsync(probe, ecr, ecrAddress?.RegistryId, ready, findings, cancellationToken).ConfigureAwait(false);
            immutable = (repository, _) => repositoriesImmutable.Contains(repository);
        }

        problems.AddRange(CheckTags(client.Host, images, current, ready, immutable, probe.Kind, region, ecrAddress?.RegistryId, findings));
        return new PrecheckResult(probe, [.. probe.Findings(), .. findings], problems.OrderBy(p => p.Repository, StringComparer.Ordinal).ThenBy(p => p.Tag, StringComparer.Ordinal).ToList()) { Tags = current };
    }

    /// <summary>
    /// Harbor: every project (first path component) is read through <c>/api/v2.0/projects?name=</c>. A missing one is
    /// created (private) on request, else reported once for the project; a proxy-cache project refuses pushes; a denied
    /// push is told apart from a denied pull (<c>GET …/tags/list</c>) so the robot account's missing permission is named.
    /// A project the API does not list while a push into it was allowed is trusted to the probe (the API lists only
    /// what the credentials may see).
    /// </summary>
    private async Task CheckHarborAsync(
        RegistryClient client,
        RegistryKind kind,
        IReadOnlyList<string> repositories,
        bool create,
        Dictionary<string, RepositoryProbe> access,
        List<TargetProblem> problems,
        HashSet<string> handled,
        List<string> findings,
        CancellationToken cancellationToken)
    {
        var api = new HarborApi(client);
        var account = client.Options.Credentials.GetCredential(client.Host) is { IdentityToken: null } credential ? credential.Username : null;
        foreach (var group in repositories.GroupBy(r => r.Split('/')[0], StringComparer.Ordinal))
        {
            var project = group.Key;
            var members = group.ToList();
            HarborProject? found;
            try
            {
                found = await api.GetProjectAsync(project, cancellationToken).ConfigureAwait(false);
            }
            catch (RegistryException ex)
            {
                findings.Add($"Harbor project '{project}' not read through the projects API: {ex.Message}");
                continue;
            }

            if (found is null && members.All(r => access[r].Access != PushAccess.Allowed))
            {
                if (!create)
                {
                    problems.Add(new TargetProblem(TargetProblemKind.NamespaceMissing, project, $"{client.Host}/{project}: the Harbor project '{project}' does not exist{(account is null ? " or is not visible anonymously" : string.Empty)} (the projects API does not list it) and Harbor does not create projects on push; {members.Count} repositor{(members.Count == 1 ? "y needs" : "ies need")} it") { Namespace = project, Creatable = true });
                    handled.UnionWith(members);
                    continue;
                }

                await api.CreateProjectAsync(project, cancellationToken).ConfigureAwait(false);
                log.Info($"created Harbor project {project} (private)");
                findings.Add($"created Harbor project {project} (private)");
                foreach (var repository in members)
                {
                    access[repository] = await RegistryProbe.ProbePushAsync(client, kind, repository, cancellationToken).ConfigureAwait(false);
                }
            }
            else if (found is { IsProxyCache: true })
            {
                problems.Add(new TargetProblem(TargetProblemKind.ProxyCacheProject, project, $"{client.Host}/{project}: the Harbor project '{project}' is a proxy-cache project (it mirrors registry endpoint {found.RegistryId}); Harbor refuses pushes into it") { Namespace = project });
                handled.UnionWith(members);
                continue;
            }

            foreach (var repository in members.Where(r => access[r].Access == PushAccess.Denied))
            {
                var pull = await MayPullAsync(client, repository, cancellationToken).ConfigureAwait(false);
                var missing = pull ? "push" : "pull, push";
                problems.Add(new TargetProblem(TargetProblemKind.PushDenied, repository, $"{client.Host}/{repository}: {(account is null ? "anonymous access" : $"'{account}'")} lacks the {missing} permission{(pull ? string.Empty : "s")} on Harbor project '{project}' ({access[repository].Detail})")
                {
                    Namespace = project,
                    MissingPermissions = missing,
                    Account = account,
                });
                handled.Add(repository);
            }
        }
    }

    /// <summary>Whether the credentials may read the repository: a tag list answers 200 or 404, not 401/403.</summary>
    private static async Task<bool> MayPullAsync(RegistryClient client, string repository, CancellationToken cancellationToken)
    {
        using var response = await client.Retry.ExecuteAsync(
            ct => new ValueTask<HttpResponseMessage>(client.SendAsync(HttpMethod.Get, client.ApiUri($"v2/{repository}/tags/list?n=1"), [$"repository:{repository}:pull"], ct)),
            cancellationToken).ConfigureAwait(false);
        return response.StatusCode is not (System.Net.HttpStatusCode.Unauthorized or System.Net.HttpStatusCode.Forbidden);
    }

    private static EcrApi DefaultEcrApi(string region) => new(new EcrApiOptions { Region = region });

    private async Task CreateMissingAsync(
        RegistryClient client,
        ProbeReport probe,
        EcrApi? ecr,
        string? registryId,
        Dictionary<string, RepositoryProbe> access,
        List<string> findings,
        CancellationToken cancellationToken)
    {
        var missing = access.Values.Where(r => r.Access == PushAccess.RepositoryMissing).Select(r => r.Repository).ToList();
        if (missing.Count == 0)
        {
            return;
        }

        if (ecr is null)
        {
            findings.Add($"cannot create repositories on {client.Host}: creating them is supported for ECR (kind {RegistryKinds.Name(probe.Kind)}{(probe.Kind == RegistryKind.Ecr ? ", no AWS region known" : string.Empty)})");
            return;
        }

        foreach (var repository in missing)
        {
            await ecr.CreateRepositoryAsync(registryId, repository, cancellationToken).ConfigureAwait(false);
            log.Info($"created ECR repository {repository}");
            findings.Add($"created ECR repository {repository}");
            access[repository] = await RegistryProbe.ProbePushAsync(client, probe.Kind, repository, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Harbor: the tag immutability rules of every project the import pushes into
    /// (<c>GET /api/v2.0/projects/{project}/immutabletagrules</c>); a tag is immutable when an enabled rule selects its
    /// repository (the name within the project) and the tag. Rules that cannot be read are a finding, not a stop.
    /// </summary>
    private static async Task<Func<string, string, bool>> HarborImmutableTagsAsync(RegistryClient client, IReadOnlySet<string> repositories, List<string> findings, CancellationToken cancellationToken)
    {
        var api = new HarborApi(client);
        var rules = new Dictionary<string, IReadOnlyList<HarborImmutableRule>>(StringComparer.Ordinal);
        foreach (var project in repositories.Select(r => r.Split('/')[0]).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            try
            {
                rules[project] = await api.GetImmutableTagRulesAsync(project, cancellationToken).ConfigureAwait(false);
                var enabled = rules[project].Count(r => !r.Disabled);
                if (enabled > 0)
                {
                    findings.Add($"Harbor project '{project}': {enabled} tag immutability rule{(enabled == 1 ? string.Empty : "s")} (tags they select may be created, never moved)");
                }
            }
            catch (MirrorException ex)
            {
                findings.Add($"tag immutability of Harbor project '{project}' not read: {ex.Message}; a tag that must move and is immutable there fails at commit, after the content is stored");
            }
        }

        return (repository, tag) =>
        {
            var parts = repository.Split('/', 2);
            return parts.Length == 2 && rules.TryGetValue(parts[0], out var list) && list.Any(r => r.Protects(parts[1], tag));
        };
    }

    /// <summary>Repositories whose tags cannot move. ECR tells through DescribeRepositories; other kinds are not asked.</summary>
    private static async Task<HashSet<string>> ImmutableRepositoriesAsync(ProbeReport probe, EcrApi? ecr, string? registryId, IReadOnlySet<string> repositories, List<string> findings, CancellationToken cancellationToken)
    {
        var immutable = new ConcurrentBag<string>();
        if (probe.Kind != RegistryKind.Ecr)
        {
            if (probe.Profile.MayHaveImmutableTags)
            {
                findings.Add($"tag immutability is not read from {RegistryKinds.Name(probe.Kind)}: a tag that must move and is immutable there fails at commit, after the content is stored");
            }

            return [];
        }

        if (ecr is null)
        {
            findings.Add("tag immutability not checked: no AWS region known for the ECR API");
            return [];
        }

        try
        {
            await Parallel.ForEachAsync(repositories, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (repository, ct) =>
            {
                if (await ecr.DescribeRepositoryAsync(registryId, repository, ct).ConfigureAwait(false) is { ImmutableTags: true })
                {
                    immutable.Add(repository);
                }
            }).ConfigureAwait(false);
        }
        catch (MirrorException ex)
        {
            findings.Add($"tag immutability not checked: {ex.Message}");
            return [];
        }

        return [.. immutable];
    }

    /// <summary>What every tag of the bundle names in the target now (absent: not there).</summary>
    private static async Task<ConcurrentDictionary<(string Repository, string Tag), Digest>> ReadTagsAsync(
        RegistryClient client, IReadOnlyList<(Reference Target, Digest Digest)> images, int concurrency, CancellationToken cancellationToken)
    {
        await client.PrefetchTokenAsync(images.Where(i => i.Target.Tag is not null).Select(i => (IReadOnlyList<string>)[$"repository:{i.Target.Repository}:pull"]).ToList(), cancellationToken).ConfigureAwait(false);

        var found = new ConcurrentDictionary<(string Repository, string Tag), Digest>();
        await Parallel.ForEachAsync(
            images.Where(i => i.Target.Tag is not null),
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, concurrency), CancellationToken = cancellationToken },
            async (image, ct) =>
            {
                var repository = new RemoteRepository(client, image.Target.Repository);
                try
                {
                    found[(image.Target.Repository, image.Target.Tag!)] = (await client.Retry.ExecuteAsync(c => new ValueTask<Descriptor>(repository.ResolveAsync(image.Target.Tag!, c)), ct).ConfigureAwait(false)).Digest;
                }
                catch (NotFoundException)
                {
                }
                catch (RegistryException ex) when (ex.StatusCode is System.Net.HttpStatusCode.Unauthorized or System.Net.HttpStatusCode.Forbidden)
                {
                    // Not readable: the push probe finds out why and reports it with the other problems.
                }
            }).ConfigureAwait(false);
        return found;
    }

    private static List<TargetProblem> CheckTags(
        string host,
        IReadOnlyList<(Reference Target, Digest Digest)> images,
        IReadOnlyDictionary<(string Repository, string Tag), Digest> current,
        IReadOnlySet<string> ready,
        Func<string, string, bool> immutable,
        RegistryKind kind,
        string? region,
        string? registryId,
        List<string> findings)
    {
        var problems = new List<TargetProblem>();
        var same = 0;
        var moving = 0;
        foreach (var (target, digest) in images.Where(i => i.Target.Tag is not null))
        {
            if (!current.TryGetValue((target.Repository, target.Tag!), out var now))
            {
                continue;
            }

            if (now == digest)
            {
                same++;
                continue;
            }

            moving++;
            if (ready.Contains(target.Repository) && immutable(target.Repository, target.Tag!))
            {
                var harbor = kind == RegistryKind.Harbor;
                problems.Add(new TargetProblem(
                    TargetProblemKind.ImmutableTag,
                    target.Repository,
                    $"{host}/{target.Repository}:{target.Tag} names {now}, the bundle has {digest}, and {(harbor ? $"a tag immutability rule of Harbor project '{target.Repository.Split('/')[0]}' protects it" : "the repository's tags are immutable")}")
                {
                    Tag = target.Tag,
                    Region = region,
                    RegistryId = registryId,
                    Namespace = harbor ? target.Repository.Split('/')[0] : null,
                });
            }
        }

        if (same > 0)
        {
            findings.Add($"tags: {same} already name the bundle's manifest (left alone)");
        }

        if (moving > 0)
        {
            findings.Add($"tags: {moving} name another manifest{(problems.Count == 0 ? " and will move" : string.Empty)}");
        }

        return problems;
    }
}
