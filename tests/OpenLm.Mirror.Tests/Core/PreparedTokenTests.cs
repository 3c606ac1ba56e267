using System.Text;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

public sealed class PreparedTokenTests
{
    private static readonly byte[] Config = Encoding.UTF8.GetBytes("{\"architecture\":\"amd64\",\"os\":\"linux\"}");

    private static byte[] ManifestBytes() => Encoding.UTF8.GetBytes(
        $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciManifest}\",\"config\":{TestContent.DescriptorJson(MediaTypes.OciConfig, Config)},\"layers\":[]}}");

    private static RegistryConnector Connect() => new(new RegistryOptions { PlainHttp = true, RetryBaseDelay = TimeSpan.FromMilliseconds(1) });

    [Fact]
    public async Task PreparePullTokens_FiveRepositories_OneChallengeAndOneTokenRequestForAll()
    {
        // Given a registry with a token service and five repositories
        await using var registry = FakeRegistry.Start(requireToken: true);
        var names = Enumerable.Range(0, 5).Select(i => $"olm/app{i}").ToList();
        foreach (var name in names)
        {
            registry.Repo(name).AddBlob(Config);
            registry.Repo(name).AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        }

        using var connector = Connect();
        var repositories = names.Select(n => connector.Repository(Reference.Parse($"{registry.Authority}/{n}:1"))).ToList();

        // When their tokens are prepared, then every manifest is fetched
        await connector.PreparePullTokensAsync(repositories, CancellationToken.None);
        foreach (var repository in repositories)
        {
            await repository.FetchManifestAsync("1");
        }

        // Then one token request asked for all five scopes, and no manifest request was challenged
        var token = Assert.Single(registry.TokenRequests);
        foreach (var name in names)
        {
            Assert.Contains("scope=" + Uri.EscapeDataString($"repository:{name}:pull"), token.Query, StringComparison.OrdinalIgnoreCase);
        }

        Assert.All(registry.RegistryRequests.Where(r => r.Path.Contains("/manifests/", StringComparison.Ordinal)), r => Assert.StartsWith("Bearer ", r.Authorization));
        Assert.Single(registry.RegistryRequests, r => r.Path == "/v2/" && r.Authorization is null);
    }

    [Fact]
    public async Task PreparePullTokens_RegistryWithoutAuth_OneProbeAndNoToken()
    {
        await using var registry = FakeRegistry.Start();
        using var connector = Connect();
        var repositories = Enumerable.Range(0, 3).Select(i => connector.Repository(Reference.Parse($"{registry.Authority}/olm/app{i}:1"))).ToList();

        await connector.PreparePullTokensAsync(repositories, CancellationToken.None);

        Assert.Empty(registry.TokenRequests);
        Assert.Single(registry.Requests);
    }

    [Fact]
    public async Task PreparePullTokens_TokenServiceRefuses_EachRepositoryStillGetsItsOwn()
    {
        // Given a token service that refuses a token for more than one repository
        await using var registry = FakeRegistry.Start(requireToken: true);
        registry.Repo("olm/a").AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        registry.Repo("olm/b").AddManifest("1", ManifestBytes(), MediaTypes.OciManifest);
        var refused = 0;
        registry.Intercept = async context =>
        {
            var query = context.Request.Url!.Query;
            if (context.Request.Url.AbsolutePath != "/token" || !(query.Contains("olm%2Fa", StringComparison.OrdinalIgnoreCase) && query.Contains("olm%2Fb", StringComparison.OrdinalIgnoreCase)))
            {
                return false;
            }

            Interlocked.Increment(ref refused);

            await Reply.ErrorAsync(context, 400, "INVALID_REQUEST", "too many scopes");
            return true;
        };
        using var connector = Connect();
        var repositories = new[] { "olm/a", "olm/b" }.Select(n => connector.Repository(Reference.Parse($"{registry.Authority}/{n}:1"))).ToList();

        // When tokens are prepared (and fail), then both manifests are fetched
        await connector.PreparePullTokensAsync(repositories, CancellationToken.None);
        foreach (var repository in repositories)
        {
            await repository.FetchManifestAsync("1");
        }

        // Then the refusals (retried as any token request) cost nothing else: each repository got its own token as before
        Assert.True(refused >= 1);
        Assert.Equal(refused + 2, registry.TokenRequests.Count());
    }

    [Fact]
    public async Task PreparePullTokens_NothingListens_GivesUpAtOnceWithoutThrowing()
    {
        using var connector = Connect();
        var repositories = new[] { "olm/a", "olm/b" }.Select(n => connector.Repository(Reference.Parse($"127.0.0.1:1/{n}:1"))).ToList();

        await connector.PreparePullTokensAsync(repositories, CancellationToken.None);
    }
}
