using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Import;
using OpenLm.Mirror.Tests.Core;
using OpenLm.Mirror.Tests.Import;
using OpenLm.Mirror.Tests.Support;
using Xunit;

namespace OpenLm.Mirror.Tests.ImportLatency;

/// <summary>
/// The round trips an import costs, which decide its time against a registry that is not on loopback: one batched
/// existence pass before any upload, no question asked twice, a re-import that asks only for its tags, and the
/// single-request upload tried once and dropped on a registry that answers it with a session.
/// </summary>
public sealed class ImportRoundTripTests(SignedSampleBundleFixture fixture) : IClassFixture<SignedSampleBundleFixture>, IAsyncLifetime
{
    private ImportHarness _harness = null!;

    private SampleBundle Bundle => fixture.Bundle;

    public Task InitializeAsync()
    {
        _harness = new ImportHarness();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    /// <summary>
    /// Makes the fake registry take <c>POST …/blobs/uploads/?digest=</c> with the blob as its body (201, verified), as
    /// CNCF Distribution does; returns the digests so stored.
    /// </summary>
    private System.Collections.Concurrent.ConcurrentBag<string> AcceptSinglePost()
    {
        var stored = new System.Collections.Concurrent.ConcurrentBag<string>();
        _harness.Registry.Intercept = async context =>
        {
            var path = context.Request.Url!.AbsolutePath;
            var digest = context.Request.QueryString["digest"];
            if (context.Request.HttpMethod != "POST" || digest is null || !path.EndsWith("/blobs/uploads/", StringComparison.Ordinal))
            {
                return false;
            }

            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            if (FakeRegistry.Sha256(body.ToArray()) != digest)
            {
                await Reply.StatusAsync(context, 400);
                return true;
            }

            var name = path["/v2/".Length..^"/blobs/uploads/".Length];
            _harness.Registry.Repo(name).Blobs[digest] = body.ToArray();
            stored.Add(digest);
            await Reply.StatusAsync(context, 201, new Dictionary<string, string> { ["Docker-Content-Digest"] = digest, ["Location"] = $"/v2/{name}/blobs/{digest}" });
            return true;
        };
        return stored;
    }

    /// <summary>As the CLI asks: with the pre-check (tags read, target probed).</summary>
    private ImportRequest Request() => _harness.Request(Bundle) with { Precheck = new PrecheckOptions() };

    [Fact]
    public async Task BundleImporter_ImportAsync_EmptyTarget_EveryHeadBeforeTheFirstUploadAndOneRequestPerBlob()
    {
        // Given an empty registry that takes a blob in one POST ?digest= (as CNCF Distribution does)
        var singlePosts = AcceptSinglePost();

        // When the bundle is imported the way the CLI does it
        var result = await _harness.ImportAsync(Request());

        // Then every image is stored under its tag
        foreach (var image in Bundle.Images)
        {
            Assert.Equal(image.Digest, _harness.Stored(ImportNames.TargetRepository(image, chartsMapped: false))!.Tags[image.Tag]);
        }

        Assert.Equal(Bundle.UniqueBlobs.Count, result.BlobsUploaded);
        Assert.Empty(_harness.Log.Warnings);

        // And each uploaded blob went exactly once: in one request once the trial (one blob of at most 64 KiB) was
        // answered 201, as POST + PUT if its upload began before that
        var sessions = _harness.Registry.BlobUploads().Select(r => r.UploadedDigest()).ToList();
        Assert.Equal(Bundle.UniqueBlobs.Order(StringComparer.Ordinal), singlePosts.Concat(sessions).Order(StringComparer.Ordinal));
        Assert.True(singlePosts.Count >= 2, $"{singlePosts.Count} single-request uploads of {Bundle.UniqueBlobs.Count} blobs: the trial's success was not used");
        Assert.Equal(result.BlobsMounted, _harness.Registry.MountRequests().Count());

        // And the registry was asked about blobs and manifests in one pass before any blob moved, never twice about one
        var requests = _harness.Registry.Requests.ToList();
        var heads = requests.Select((r, i) => (r, i)).Where(x => x.r.Method == "HEAD" && (x.r.IsBlobPath() || RegistryTraffic.ManifestReference(x.r)?.StartsWith("sha256:", StringComparison.Ordinal) == true)).ToList();
        var firstUpload = requests.FindIndex(r => r.Method == "POST" && r.Query.Contains("digest=", StringComparison.Ordinal));
        Assert.NotEmpty(heads);
        Assert.True(firstUpload > heads.Max(h => h.i), $"a HEAD came after the first upload (request {firstUpload}): the copier asked inside its upload slots");
        Assert.Empty(heads.GroupBy(h => h.r.Path).Where(g => g.Count() > 1).Select(g => g.Key));
    }

    /// <summary>How long a held request waits for the one it expects to arrive meanwhile before it gives up (a guard against a hang, not a measure).</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task BundleImporter_ImportAsync_Reimport_RegistryIdentifiedWhileTheTagsAreRead()
    {
        // Given a registry the bundle was imported into, whose tag HEADs are held until GET /v2/ arrives
        await _harness.ImportAsync(Request());
        _harness.Registry.Server.ClearRequests();
        var v2 = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var heldInVain = 0;
        _harness.Registry.Intercept = async context =>
        {
            var path = context.Request.Url!.AbsolutePath;
            if (path == "/v2/")
            {
                v2.TrySetResult();
            }
            else if (context.Request.HttpMethod == "HEAD" && path.Contains("/manifests/", StringComparison.Ordinal) && !path.Contains("/manifests/sha256:", StringComparison.Ordinal)
                && !await v2.Task.WaitAsync(Patience).ContinueWith(t => t.IsCompletedSuccessfully, TaskScheduler.Default))
            {
                Interlocked.Increment(ref heldInVain);
            }

            return false;
        };

        // When it is imported again
        var result = await _harness.ImportAsync(Request());

        // Then GET /v2/ was asked while the tags were being read (not after them: one round trip less), and the
        // re-import still asked for nothing but its tags
        Assert.Equal(0, heldInVain);
        Assert.All(result.Images, i => Assert.Equal(TagOutcome.Unchanged, i.Tag));
        Assert.Empty(_harness.Registry.Writes());
        Assert.Equal(Bundle.Images.Count, _harness.Registry.Requests.Count(r => r.IsManifestPath()));
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_RegistryIdentifiedWhileTheBundleIsOpened()
    {
        // Given a registry the bundle was imported into, and an observer that, when the check phase starts (the bundle
        // opened and verified, no pre-check request sent yet), waits for the registry to have seen GET /v2/
        await _harness.ImportAsync(Request());
        _harness.Registry.Server.ClearRequests();
        var observer = new WaitForV2AtCheck(_harness.Registry);

        // When it is imported again
        var result = await _harness.ImportAsync(Request() with { Observer = observer });

        // Then GET /v2/ and 16 connection-opening HEAD /v2/ (unauthenticated, one per tag HEAD to come) had gone out
        // while the bundle was being opened (their set-up overlaps the local work), each once, and the re-import is
        // otherwise unchanged
        Assert.True(observer.SeenAtCheck, "GET /v2/ and the 16 HEAD /v2/ were not sent before the pre-check started");
        Assert.Single(_harness.Registry.Requests, r => r.Path == "/v2/" && r.Method == "GET");
        Assert.Equal(16, _harness.Registry.Requests.Count(r => r.Path == "/v2/" && r.Method == "HEAD" && r.Authorization is null));
        Assert.All(result.Images, i => Assert.Equal(TagOutcome.Unchanged, i.Tag));
        Assert.Empty(_harness.Registry.Writes());
    }

    /// <summary>At the start of the check phase, waits (up to <see cref="Patience"/>) for GET /v2/ and 16 HEAD /v2/ to have reached the registry.</summary>
    private sealed class WaitForV2AtCheck(FakeRegistry registry) : WaitAtCheck(() =>
        registry.Requests.Any(r => r.Path == "/v2/" && r.Method == "GET") && registry.Requests.Count(r => r.Path == "/v2/" && r.Method == "HEAD") >= 16);

    /// <summary>At the start of the check phase (bundle verified, no pre-check request yet), waits up to <see cref="Patience"/> for <c>until</c>.</summary>
    private class WaitAtCheck(Func<bool> until) : IRunObserver
    {
        public bool SeenAtCheck { get; private set; }

        public void PhaseStarted(RunPhase phase, int images, long bytes)
        {
            if (phase != RunPhase.Check)
            {
                return;
            }

            var deadline = DateTime.UtcNow + Patience;
            while (!until() && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(5);
            }

            SeenAtCheck = until();
        }

        public void PhaseBytes(long bytesDone)
        {
        }

        public void ImageStarted(string image)
        {
        }

        public void BlobStarted(string image, Oci.Descriptor blob)
        {
        }

        public void BytesTransferred(string image, long bytes)
        {
        }

        public void BlobFinished(string image, Oci.Descriptor blob, BlobOutcome outcome)
        {
        }

        public void ManifestFinished(string image, Oci.Descriptor manifest, BlobOutcome outcome)
        {
        }

        public void ImageFinished(string image, CopyResult result)
        {
        }
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_TokenRegistry_OneTokenForEveryTagReadAndOneForEveryPushProbe()
    {
        // Given an empty registry that wants a bearer token on every request
        await using var harness = new ImportHarness(requireToken: true);
        var repositories = Bundle.Images.Select(i => ImportNames.TargetRepository(i, chartsMapped: false)).Distinct().Order(StringComparer.Ordinal).ToList();

        // When the bundle is imported the way the CLI does it, the pre-check starting once the registry's /v2/ challenge
        // is known (a token was asked for it; on a real link the bundle's verification takes that long)
        await harness.ImportAsync(harness.Request(Bundle) with { Precheck = new PrecheckOptions(), Observer = new WaitAtCheck(() => harness.Registry.TokenRequests.Any()) });

        // Then every image is stored under its tag
        foreach (var image in Bundle.Images)
        {
            Assert.Equal(image.Digest, harness.Stored(ImportNames.TargetRepository(image, chartsMapped: false))!.Tags[image.Tag]);
        }

        // And one token request asked for every repository's pull scope and one for every repository's pull,push scope
        // (the Docker token spec's repeated scope parameters), so no tag HEAD met a 401: each tag was asked twice in all
        // (the pre-check, and the commit before its PUT), not three times
        // (the fake's challenge names a scope of its own, which every token request repeats)
        var scopes = harness.Registry.TokenRequests
            .Select(r => (System.Web.HttpUtility.ParseQueryString(r.Query).GetValues("scope") ?? []).Where(s => s != $"repository:{FakeRegistry.Repository}:pull").ToList())
            .ToList();
        Assert.Contains(scopes, s => s.Order(StringComparer.Ordinal).SequenceEqual(repositories.Select(r => $"repository:{r}:pull")));
        Assert.Contains(scopes, s => s.Order(StringComparer.Ordinal).SequenceEqual(repositories.Select(r => $"repository:{r}:pull,push")));
        Assert.Equal(2 * Bundle.Images.Count, harness.Registry.Requests.Count(r => r.Method == "HEAD" && RegistryTraffic.ManifestReference(r) is { } reference && !reference.StartsWith("sha256:", StringComparison.Ordinal)));
        Assert.Empty(harness.Log.Warnings);
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_TokenServiceRefusesSeveralScopes_EachRepositoryFetchesItsOwnToken()
    {
        // Given a token registry whose token service refuses a request naming more than three scopes (400; a mount's
        // token names two repositories, and the fake's challenge adds one scope to every request)
        await using var harness = new ImportHarness(requireToken: true);
        harness.Registry.Intercept = async context =>
        {
            if (context.Request.Url!.AbsolutePath == "/token" && (System.Web.HttpUtility.ParseQueryString(context.Request.Url.Query).GetValues("scope")?.Length ?? 0) > 3)
            {
                await Reply.ErrorAsync(context, 400, "UNSUPPORTED", "one scope per token");
                return true;
            }

            return false;
        };

        // When the bundle is imported
        var result = await harness.ImportAsync(harness.Request(Bundle) with { Precheck = new PrecheckOptions(), Observer = new WaitAtCheck(() => harness.Registry.TokenRequests.Any()) });

        // Then every image is stored, each repository fetched its own tokens, and the refused fetch was tried once and
        // warned about nothing
        foreach (var image in Bundle.Images)
        {
            Assert.Equal(image.Digest, harness.Stored(ImportNames.TargetRepository(image, chartsMapped: false))!.Tags[image.Tag]);
        }

        Assert.Equal(Bundle.UniqueBlobs.Count, result.BlobsUploaded);
        Assert.Equal(2, harness.Registry.TokenRequests.Count(r => (System.Web.HttpUtility.ParseQueryString(r.Query).GetValues("scope")?.Length ?? 0) > 3));
        Assert.Empty(harness.Log.Warnings);
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_EmptyTarget_ExistencePassAlongsideThePushProbesAndNothingWrittenBeforeThem()
    {
        // Given an empty registry whose push probes (an upload session opened, then cancelled) are held until the
        // existence pass's first HEAD of a manifest by digest arrives
        var rootHead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var heldInVain = 0;
        _harness.Registry.Intercept = async context =>
        {
            var request = context.Request;
            var path = request.Url!.AbsolutePath;
            if (request.HttpMethod == "HEAD" && path.Contains("/manifests/sha256:", StringComparison.Ordinal))
            {
                rootHead.TrySetResult();
            }
            else if (request.HttpMethod == "POST" && path.EndsWith("/blobs/uploads/", StringComparison.Ordinal) && request.Url.Query.Length == 0
                && !await rootHead.Task.WaitAsync(Patience).ContinueWith(t => t.IsCompletedSuccessfully, TaskScheduler.Default))
            {
                Interlocked.Increment(ref heldInVain);
            }

            return false;
        };

        // When the bundle is imported the way the CLI does it
        var result = await _harness.ImportAsync(Request());

        // Then the existence pass did not wait for the probes (it ran alongside them), every image is stored, and no
        // blob, manifest or tag was written before the last probe was answered
        Assert.Equal(0, heldInVain);
        foreach (var image in Bundle.Images)
        {
            Assert.Equal(image.Digest, _harness.Stored(ImportNames.TargetRepository(image, chartsMapped: false))!.Tags[image.Tag]);
        }

        Assert.Equal(Bundle.UniqueBlobs.Count, result.BlobsUploaded);
        var requests = _harness.Registry.Requests.ToList();
        var repositories = Bundle.Images.Select(i => ImportNames.TargetRepository(i, chartsMapped: false)).Distinct().Count();
        var cancelled = requests.Select((r, i) => (r, i)).Where(x => x.r.Method == "DELETE").Select(x => x.i).ToList();
        var firstWrite = requests.FindIndex(r => r.Method is "PUT" || (r.Method == "POST" && r.Query.Contains("digest=", StringComparison.Ordinal)));

        // (every push probe's session and the mount question's are cancelled before the pre-check passes)
        Assert.True(cancelled.Count > repositories);
        Assert.True(firstWrite > cancelled[repositories],
            $"a write (request {firstWrite}) came before the pre-check's probes were done (their sessions cancelled)");
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_RegistryAnswersSinglePostWithSession_TriedOnceThenSessionsAndAllStored()
    {
        // Given a registry detected as Distribution that answers POST …/uploads/?digest= with a session (the spec's fallback)
        // When the bundle is imported
        var result = await _harness.ImportAsync(Request());

        // Then exactly one blob tried the single request; it and every other blob went through sessions, byte-identical
        Assert.Single(_harness.Registry.Requests, r => r.Method == "POST" && r.Query.Contains("digest=", StringComparison.Ordinal));
        Assert.Equal(Bundle.UniqueBlobs.Order(StringComparer.Ordinal), _harness.Registry.BlobUploads().Select(r => r.UploadedDigest()).Distinct().Order(StringComparer.Ordinal));
        Assert.Equal(Bundle.UniqueBlobs.Count, result.BlobsUploaded);

        // And the trial's blob (its body read and ignored by the registry) went into the session its POST opened: no
        // retry, no warning, no extra session
        Assert.Empty(_harness.Log.Warnings);
        // (the probe's push sessions and its mount question are each cancelled with a DELETE)
        var probeSessions = _harness.Registry.Requests.Count(r => r.Method == "DELETE") - _harness.Registry.ProbeMountRequests().Count();
        Assert.Equal(Bundle.UniqueBlobs.Count - 1, _harness.Registry.Requests.Count(r => r.Method == "POST" && r.Query.Length == 0) - probeSessions);
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_Reimport_AsksOnlyForTagsAndWritesNothing()
    {
        // Given a registry the bundle was imported into
        await _harness.ImportAsync(Request());
        _harness.Registry.Server.ClearRequests();

        // When it is imported again
        var result = await _harness.ImportAsync(Request());

        // Then every tag is unchanged, nothing is written, and no manifest by digest or blob was asked about
        Assert.All(result.Images, i => Assert.Equal(TagOutcome.Unchanged, i.Tag));
        Assert.Equal(0, result.BlobsUploaded);
        Assert.Equal(Bundle.UniqueBlobs.Count, result.BlobsPresent);
        Assert.Empty(_harness.Registry.Writes());
        Assert.DoesNotContain(_harness.Registry.Requests, r => r.IsBlobPath());
        Assert.DoesNotContain(_harness.Registry.Requests, r => RegistryTraffic.ManifestReference(r)?.StartsWith("sha256:", StringComparison.Ordinal) == true);
        Assert.Equal(Bundle.Images.Count, _harness.Registry.Requests.Count(r => r.IsManifestPath()));
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_OneTagMovedAway_OnlyThatImageIsAskedAboutAndItsTagMovesBack()
    {
        // Given an imported bundle whose first image's tag was then pointed at another image's manifest
        await _harness.ImportAsync(Request());
        var moved = Bundle.Images[0];
        var other = Bundle.Images.First(i => i.Digest != moved.Digest && i.MediaType == moved.MediaType);
        var repository = _harness.Registry.Repo(ImportNames.TargetRepository(moved, chartsMapped: false));
        var otherBytes = Bundle.Platform.ReadBlob(other.Digest);
        foreach (var digest in other.BlobDigests)
        {
            repository.Blobs[digest] = Bundle.Platform.ReadBlob(digest);
        }

        repository.AddManifest(moved.Tag, otherBytes, other.MediaType);
        _harness.Registry.Server.ClearRequests();

        // When it is imported again
        var result = await _harness.ImportAsync(Request());

        // Then that tag moves back (warned) and every other stays; only that image's root was asked about by digest
        Assert.Equal(moved.Digest, repository.Tags[moved.Tag]);
        Assert.Equal(TagOutcome.Moved, Assert.Single(result.Images, i => i.Tag != TagOutcome.Unchanged).Tag);
        Assert.Contains(_harness.Log.Warnings, w => w.Contains("tag moved", StringComparison.Ordinal));
        var rootChecks = _harness.Registry.Requests.Where(r => r.Method == "HEAD" && RegistryTraffic.ManifestReference(r) is { } reference && reference.StartsWith("sha256:", StringComparison.Ordinal)).ToList();
        Assert.Equal(moved.Digest, Assert.Single(rootChecks).Path.Split('/')[^1]);
    }
}
