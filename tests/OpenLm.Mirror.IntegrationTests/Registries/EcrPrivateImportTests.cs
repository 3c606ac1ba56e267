using System.Text.Json;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Registries;

/// <summary>
/// import into an ECR-like registry (our emulator in front of a real Distribution): repositories that do not exist
/// stop the import before any byte moves, with the exact <c>aws ecr create-repository</c> line for each;
/// <c>--create-repositories</c> creates them through the (SigV4-checked) ECR API; immutable tags are left alone when
/// they already name the bundle's digest and are a pre-check problem when they name another.
/// </summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class EcrPrivateImportTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private EcrPrivateEmulator _ecr = null!;
    private TestBundle _bundle = null!;

    public async Task InitializeAsync()
    {
        _ecr = new EcrPrivateEmulator(registry.BaseUri);
        await _ecr.StartAsync();
        _bundle = await TestBundle.CreateAsync(_temp.Sub("b"), seed: 91);
    }

    public async Task DisposeAsync()
    {
        await _ecr.DisposeAsync();
        _temp.Dispose();
    }

    [Fact]
    public async Task Import_RepositoriesMissing_ExitsOneWithEveryCreateCommandAndPushesNothing()
    {
        var (to, prefix) = Target();

        var run = await ImportAsync(to);

        Assert.True(run.ExitCode == 1, run.ToString());
        foreach (var repository in Repositories(prefix))
        {
            Assert.Contains($"aws ecr create-repository --repository-name {repository} --region us-east-1", run.Error);
        }

        Assert.Contains("nothing was pushed", run.Error);
        Assert.Contains("--create-repositories", run.Error);
        Assert.Equal(0, _ecr.BlobWrites);
        Assert.Equal(0, _ecr.ManifestPuts);
        Assert.DoesNotContain(prefix, await CatalogAsync());
    }

    [Fact]
    public async Task Import_DryRun_ShowsProbeFindingsAndProblemsAndExitsOne()
    {
        var (to, prefix) = Target();

        var run = await ImportAsync(to, "--dry-run");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("probe      registry", run.Output);
        Assert.Contains("ecr (chosen)", run.Output);
        Assert.Contains($"aws ecr create-repository --repository-name {prefix}/olm-server --region us-east-1", run.Output);
        Assert.Equal(0, _ecr.BlobWrites);
    }

    [Fact]
    public async Task Import_CreateRepositories_CreatesThemSignedAndImportsIdenticalDigests_ReimportIntoImmutableUploadsNothing()
    {
        var (to, prefix) = Target();

        var run = await ImportAsync(to, "--create-repositories");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(0, _ecr.BadSignatures);
        Assert.Equal(Repositories(prefix).Count, _ecr.ApiCalls.Count(c => c == "CreateRepository"));
        foreach (var image in _bundle.Platform.Images)
        {
            Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{registry.Host}/{prefix}/{image.Repository.Split('/', 2)[1]}:{image.Tag}"));
        }

        // And check reports the probe's findings with its audit
        var check = await MirrorCli.RunAsync("check", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, "--plain-http");
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Contains($"push: allowed in {Repositories(prefix).Count} of {Repositories(prefix).Count} repositories", check.Output);

        // Given every repository's tags made immutable (ECR refuses any PUT over an existing tag, even the same digest)
        foreach (var repository in Repositories(prefix))
        {
            _ecr.SetImmutable(repository, immutable: true);
        }

        var writes = _ecr.BlobWrites;
        var puts = _ecr.ManifestPuts;

        // When importing the same bundle again
        var again = await ImportAsync(to, "--json");

        // Then it succeeds and moves nothing: no blob, no manifest, no tag PUT
        Assert.True(again.ExitCode == 0, again.ToString());
        using var report = JsonDocument.Parse(again.Output);
        Assert.Equal(0, report.RootElement.GetProperty("blobsUploaded").GetInt32());
        Assert.All(report.RootElement.GetProperty("images").EnumerateArray(), i => Assert.Equal("unchanged", i.GetProperty("status").GetString()));
        Assert.Equal(writes, _ecr.BlobWrites);
        Assert.Equal(puts, _ecr.ManifestPuts);
        Assert.Equal(0, _ecr.TagInvalidCount);
    }

    [Fact]
    public async Task Import_ImmutableTagNamesAnotherDigest_ExitsOneBeforePushingAnything()
    {
        // Given immutable repositories already holding another release under the same tags
        var (to, prefix) = Target();
        foreach (var repository in Repositories(prefix))
        {
            _ecr.CreateRepository(repository, immutable: true);
        }

        var other = await TestBundle.CreateAsync(_temp.Sub("other"), seed: 92);
        var first = await ImportAsync(to, bundle: other);
        Assert.True(first.ExitCode == 0, first.ToString());
        var writes = _ecr.BlobWrites;
        var puts = _ecr.ManifestPuts;

        // When importing this bundle over it
        var run = await ImportAsync(to);

        // Then every tag that would have to move is named, with the command that makes it mutable; nothing moved
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("immutable", run.Error);
        Assert.Contains($"aws ecr put-image-tag-mutability --repository-name {prefix}/olm-server --image-tag-mutability MUTABLE --region us-east-1", run.Error);
        Assert.Equal(writes, _ecr.BlobWrites);
        Assert.Equal(puts, _ecr.ManifestPuts);
        Assert.Equal(0, _ecr.TagInvalidCount);
    }

    [Fact]
    public async Task Import_EcrNeedsLoginAndNoDockerCredentials_LogsInWithGetAuthorizationToken()
    {
        // Given an ECR that refuses /v2 without a GetAuthorizationToken password, and no docker config at all
        _ecr.RequireLogin = true;
        var (to, prefix) = Target();

        var run = await ImportAsync(to, "--create-repositories");

        // Then the import logs in by itself (one token for the whole run) and stores every image
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(1, _ecr.ApiCalls.Count(c => c == "GetAuthorizationToken"));
        var first = _bundle.Platform.Images[0];
        Assert.Equal(first.Digest, await Tools.SkopeoRawDigestAsync($"docker://{registry.Host}/{prefix}/{first.Repository.Split('/', 2)[1]}:{first.Tag}"));
    }

    private (string To, string Prefix) Target()
    {
        var prefix = $"ecr{Guid.NewGuid().ToString("N")[..8]}";
        return ($"{_ecr.RegistryHost}/{prefix}", prefix);
    }

    private List<string> Repositories(string prefix) =>
        _bundle.Platform.Images.Select(i => $"{prefix}/{i.Repository.Split('/', 2)[1]}").Distinct().ToList();

    private Task<CliRun> ImportAsync(string to, string? flag = null, TestBundle? bundle = null)
    {
        var b = bundle ?? _bundle;
        string[] args = ["import", b.Path, "--key", b.PublicKey, "--to", to, "--plain-http", "--registry-kind", "ecr"];
        return MirrorCli.RunProcessAsync(AwsEnvironment(), flag is null ? args : [.. args, flag]);
    }

    private Dictionary<string, string> AwsEnvironment() => new()
    {
        ["AWS_ACCESS_KEY_ID"] = "AKIAIOSFODNN7EXAMPLE",
        ["AWS_SECRET_ACCESS_KEY"] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ["AWS_REGION"] = "us-east-1",
        ["AWS_ENDPOINT_URL_ECR"] = _ecr.ApiEndpoint.AbsoluteUri,
        ["AWS_CONFIG_FILE"] = _temp.Sub("no-aws-config"),
        ["AWS_SHARED_CREDENTIALS_FILE"] = _temp.Sub("no-aws-credentials"),
        ["AWS_EC2_METADATA_DISABLED"] = "true",
        ["DOCKER_CONFIG"] = _temp.Sub("docker"),
    };

    private async Task<string> CatalogAsync()
    {
        using var http = new HttpClient();
        return await http.GetStringAsync(new Uri(registry.BaseUri, "v2/_catalog?n=1000"));
    }
}
