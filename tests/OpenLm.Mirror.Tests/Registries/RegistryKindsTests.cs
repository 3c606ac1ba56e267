using OpenLm.Mirror.Registry.Kinds;
using Xunit;

namespace OpenLm.Mirror.Tests.Registries;

public sealed class RegistryKindsTests
{
    [Theory]
    [InlineData("123456789012.dkr.ecr.eu-central-1.amazonaws.com", RegistryKind.Ecr)]
    [InlineData("123456789012.dkr-fips.ecr.us-gov-west-1.amazonaws.com", RegistryKind.Ecr)]
    [InlineData("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", RegistryKind.Ecr)]
    [InlineData("openlm.azurecr.io", RegistryKind.Acr)]
    [InlineData("europe-west4-docker.pkg.dev", RegistryKind.Gar)]
    [InlineData("docker.io", RegistryKind.DockerHub)]
    [InlineData("quay.io", RegistryKind.Quay)]
    [InlineData("registry.gitlab.com", RegistryKind.GitLab)]
    [InlineData("OPENLM.AZURECR.IO:443", RegistryKind.Acr)]
    public void FromHost_KnownCloudPatterns_GiveTheirKind(string host, RegistryKind expected) =>
        Assert.Equal(expected, RegistryKinds.FromHost(host));

    [Theory]
    [InlineData("registry.local:5000")]
    [InlineData("127.0.0.1:40123")]
    [InlineData("public.ecr.aws")]
    [InlineData("12345.dkr.ecr.us-east-1.amazonaws.com")]
    public void FromHost_OtherHosts_GiveNothing(string host) => Assert.Null(RegistryKinds.FromHost(host));

    [Fact]
    public void EcrAddress_ParsesAccountAndRegion()
    {
        Assert.True(EcrRegistryAddress.TryParse("123456789012.dkr.ecr.eu-central-1.amazonaws.com", out var address));
        Assert.Equal(new EcrRegistryAddress("123456789012", "eu-central-1"), address);
    }

    [Theory]
    [InlineData("Server", "Nexus/3.68.1-02 (OSS)", RegistryKind.Nexus)]
    [InlineData("X-JFrog-Version", "Artifactory/7.77.5", RegistryKind.Artifactory)]
    [InlineData("WWW-Authenticate", "Bearer realm=\"https://harbor.corp/service/token\",service=\"harbor-registry\"", RegistryKind.Harbor)]
    [InlineData("WWW-Authenticate", "Bearer realm=\"https://gitlab.corp/jwt/auth\",service=\"container_registry\"", RegistryKind.GitLab)]
    public void FromHeaders_ProductHeaders_GiveTheirKind(string name, string value, RegistryKind expected) =>
        Assert.Equal(expected, RegistryKinds.FromHeaders([new(name, [value])]));

    [Fact]
    public void Parse_EveryDocumentedName_RoundTrips()
    {
        foreach (var name in RegistryKinds.Names)
        {
            Assert.True(RegistryKinds.TryParse(name.ToUpperInvariant(), out var kind));
            Assert.Equal(name, RegistryKinds.Name(kind));
        }

        Assert.False(RegistryKinds.TryParse("dockerregistry", out _));
    }

    [Fact]
    public void Profile_Ecr_RepositoriesMustExistAndChunksAreAtLeastFiveMiB()
    {
        var profile = RegistryProfile.For(RegistryKind.Ecr);
        Assert.True(profile.RepositoriesMustExist);
        Assert.Equal(5L << 20, profile.MinChunkBytes);
        Assert.Equal(2, RegistryProfile.For(RegistryKind.DockerHub).MaxPathComponents);
        Assert.False(RegistryProfile.For(RegistryKind.Gar).ChunkedUploads);
    }
}

public sealed class RegistryKindsChallengeTests
{
    [Theory]
    [InlineData("Bearer realm=\"https://gitlab.corp.example/jwt/auth\",service=\"container_registry\"", RegistryKind.GitLab)]
    [InlineData("Bearer realm=\"https://git.corp:8443/gitlab/jwt/auth/\",service=\"container_registry\"", RegistryKind.GitLab)]
    [InlineData("Bearer realm=\"https://harbor.corp/service/token\",service=\"harbor-registry\"", RegistryKind.Harbor)]
    [InlineData("Bearer realm=\"https://auth.corp/token\",service=\"registry\"", null)]
    [InlineData("Bearer realm=\"/jwt/auth\",service=\"container_registry\"", RegistryKind.GitLab)] // omnibus without external_url (gitlab-foss#26265): still GitLab
    [InlineData("Basic realm=\"https://gitlab.corp/jwt/auth\"", null)]
    public void FromChallenge_TokenRealm_GivesTheKind(string header, RegistryKind? expected)
    {
        Assert.True(OpenLm.Mirror.Registry.Auth.Challenge.TryParse(header, out var challenge));
        Assert.Equal(expected, RegistryKinds.FromChallenge(challenge));
    }
}
