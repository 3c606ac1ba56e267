using OpenLm.Mirror.Registry.Auth;
using Xunit;

namespace OpenLm.Mirror.Tests.Registries;

public sealed class ChallengeRealmTests
{
    [Theory]
    [InlineData("Bearer realm=\"https://auth.example/token\",service=\"registry\"", "https://auth.example/token")]
    [InlineData("Bearer realm=\"http://127.0.0.1:5000/v2/token\",service=\"nexus\"", "http://127.0.0.1:5000/v2/token")]
    public void TokenEndpoint_HttpRealm_IsTheRealm(string header, string expected)
    {
        Assert.True(Challenge.TryParse(header, out var challenge));
        Assert.Equal(new Uri(expected), challenge.TokenEndpoint);
    }

    [Theory]
    [InlineData("Bearer realm=\"null://nexus.corp:8082/v2/token\",service=\"nexus\"")]
    [InlineData("Bearer realm=\"ftp://nexus.corp/v2/token\"")]
    [InlineData("Bearer realm=\"/v2/token\"")]
    [InlineData("Bearer realm=\"http://\"")]
    [InlineData("Bearer service=\"nexus\"")]
    public void TokenEndpoint_BrokenRealm_IsNull(string header)
    {
        Assert.True(Challenge.TryParse(header, out var challenge));
        Assert.True(challenge.IsBearer);
        Assert.Null(challenge.TokenEndpoint);
    }
}
