using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Registries;

/// <summary>
/// import into a Harbor-like registry (our emulator in front of a real Distribution): the kind is found through
/// <c>/api/v2.0/systeminfo</c>; a missing project, a robot account without push and a proxy-cache project each stop the
/// import before any byte moves (exit 1, nothing tagged) naming the fix; <c>--create-repositories</c> creates the
/// project (private) through the projects API and the import stores identical digests; a mount answered with 202 falls
/// back to an upload; a tag that a project's immutability rule protects and that would move is a pre-check problem.
/// </summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class HarborImportTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private HarborEmulator _harbor = null!;
    private TestBundle _bundle = null!;

    public async Task InitializeAsync()
    {
        _harbor = new HarborEmulator(registry.BaseUri);
        await _harbor.StartAsync();
        _bundle = await TestBundle.CreateAsync(_temp.Sub("b"), seed: 93);
    }

    public async Task DisposeAsync()
    {
        await _harbor.DisposeAsync();
        _temp.Dispose();
    }

    [Fact]
    public async Task Import_ProjectMissing_ExitsOneNamingTheProjectAndPushesNothing()
    {
        var project = NewProject();

        var run = await ImportAsync(project, HarborEmulator.AdminUser, HarborEmulator.AdminPassword);

        Assert.True(run.ExitCode == 1, run.ToString());
        // (no --registry-kind: the Harbor message proves the kind was found through /api/v2.0/systeminfo)
        Assert.Contains($"the Harbor project '{project}' does not exist", run.Error);
        Assert.Contains("--create-repositories", run.Error);
        Assert.Contains("nothing was pushed", run.Error);
        Assert.Contains(_harbor.ApiCalls, c => c == $"GET /api/v2.0/projects?name={project}&page_size=100");
        Assert.False(_harbor.HasProject(project, out _));
        await AssertNothingPushedAsync(project);
    }

    [Fact]
    public async Task Import_CreateRepositories_CreatesPrivateProjectAndImportsIdenticalDigests()
    {
        var project = NewProject();

        var run = await ImportAsync(project, HarborEmulator.AdminUser, HarborEmulator.AdminPassword, "--create-repositories");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.True(_harbor.HasProject(project, out var isPublic));
        Assert.False(isPublic);
        Assert.Single(_harbor.ApiCalls, c => c.StartsWith("POST /api/v2.0/projects", StringComparison.Ordinal));
        foreach (var image in _bundle.Platform.Images)
        {
            Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{registry.Host}/{project}/{image.Repository.Split('/', 2)[1]}:{image.Tag}"));
        }
    }

    [Fact]
    public async Task Import_RobotWithoutPush_NamesTheMissingPermissionAndPushesNothing()
    {
        var project = NewProject();
        _harbor.AddProject(project);

        var run = await ImportAsync(project, HarborEmulator.RobotUser, HarborEmulator.RobotPassword);

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains($"'{HarborEmulator.RobotUser}' lacks the push permission on Harbor project '{project}'", run.Error);
        Assert.Contains("Robot Accounts", run.Error);
        Assert.DoesNotContain("pull, push", run.Error);
        await AssertNothingPushedAsync(project);
    }

    [Fact]
    public async Task Import_ProxyCacheProject_ExitsOneBeforePushingAnything()
    {
        var project = NewProject();
        _harbor.AddProject(project, proxyCache: true);

        var run = await ImportAsync(project, HarborEmulator.AdminUser, HarborEmulator.AdminPassword, "--create-repositories");

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains($"the Harbor project '{project}' is a proxy-cache project", run.Error);
        Assert.Contains("import into a regular Harbor project", run.Error);
        await AssertNothingPushedAsync(project);
    }

    [Fact]
    public async Task Import_MountAnswers202_FallsBackToUploadAndStoresIdenticalDigests()
    {
        // Given a Harbor that answers every cross-repository mount with 202 and an upload session
        var project = NewProject();
        _harbor.AddProject(project);
        _harbor.RefuseMounts = true;

        // When the plan is asked for first, its probe findings name mounts, uploads and the referrers API
        var plan = await ImportAsync(project, HarborEmulator.AdminUser, HarborEmulator.AdminPassword, "--dry-run");
        Assert.True(plan.ExitCode == 0, plan.ToString());
        Assert.Contains("probe      mounts: supported", plan.Output);
        Assert.Contains("probe      uploads: monolithic PUT, chunked PATCH on 413", plan.Output);
        Assert.Contains("probe      referrers API:", plan.Output);
        Assert.Equal(1, _harbor.MountsRefused);
        Assert.Equal(0, _harbor.BlobWrites);

        var run = await ImportAsync(project, HarborEmulator.AdminUser, HarborEmulator.AdminPassword);

        // Then the shared layers were asked to mount (beyond the two probes' one each), went up as uploads instead, and every image is complete
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.True(_harbor.MountsRefused > 2, $"the bundle's shared layers should have been offered as mounts ({_harbor.MountsRefused} mount requests)");
        foreach (var image in _bundle.Platform.Images)
        {
            Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{registry.Host}/{project}/{image.Repository.Split('/', 2)[1]}:{image.Tag}"));
        }
    }

    [Fact]
    public async Task Import_ImmutableRuleTagWouldMove_ExitsOneBeforePushing_SameDigestReimportSucceeds()
    {
        // Given a project whose rule makes every tag of olm-server immutable, holding another bundle's images
        var project = NewProject();
        _harbor.AddProject(project);
        _harbor.AddImmutableRule(project, repositoryPattern: "olm-server");
        var other = await TestBundle.CreateAsync(_temp.Sub("other"), seed: 96);
        var first = await ImportAsync(project, HarborEmulator.AdminUser, HarborEmulator.AdminPassword, bundle: other);
        Assert.True(first.ExitCode == 0, first.ToString());
        var writes = _harbor.BlobWrites;
        var puts = _harbor.ManifestPuts;

        // When this bundle (same tags, other digests) is imported over it
        var run = await ImportAsync(project, HarborEmulator.AdminUser, HarborEmulator.AdminPassword);

        // Then the protected tag is a problem found before anything is pushed; tags no rule selects are not
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains(_harbor.ApiCalls, c => c == $"GET /api/v2.0/projects/{project}/immutabletagrules");
        Assert.Contains($"{project}/olm-server:", run.Error);
        Assert.Contains($"a tag immutability rule of Harbor project '{project}' protects it", run.Error);
        Assert.Contains($"Projects > {project} > Policy > Tag Immutability", run.Error);
        var unprotected = _bundle.Platform.Images.First(i => !i.Repository.EndsWith("/olm-server", StringComparison.Ordinal));
        Assert.DoesNotContain($"{project}/{unprotected.Repository.Split('/', 2)[1]}:{unprotected.Tag} names", run.Error);
        Assert.Equal(writes, _harbor.BlobWrites);
        Assert.Equal(puts, _harbor.ManifestPuts);

        // And importing the bundle that is already there again leaves the immutable tags alone and exits 0
        var again = await ImportAsync(project, HarborEmulator.AdminUser, HarborEmulator.AdminPassword, bundle: other);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(writes, _harbor.BlobWrites);
    }

    private static string NewProject() => $"hb{Guid.NewGuid().ToString("N")[..8]}";

    private async Task AssertNothingPushedAsync(string project)
    {
        Assert.Equal(0, _harbor.BlobWrites);
        Assert.Equal(0, _harbor.ManifestPuts);
        using var http = new HttpClient();
        Assert.DoesNotContain(project + "/", await http.GetStringAsync(new Uri(registry.BaseUri, "v2/_catalog?n=1000")), StringComparison.Ordinal);
    }

    private Task<CliRun> ImportAsync(string project, string user, string password, string? flag = null, TestBundle? bundle = null)
    {
        var config = _temp.Sub("docker-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(config);
        var auth = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{user}:{password}"));
        File.WriteAllText(Path.Combine(config, "config.json"), "{\"auths\":{\"" + _harbor.Host + "\":{\"auth\":\"" + auth + "\"}}}");
        bundle ??= _bundle;
        string[] args = ["import", bundle.Path, "--key", bundle.PublicKey, "--to", $"{_harbor.Host}/{project}", "--plain-http"];
        return MirrorCli.RunProcessAsync(new Dictionary<string, string> { ["DOCKER_CONFIG"] = config }, flag is null ? args : [.. args, flag]);
    }
}
