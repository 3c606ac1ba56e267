using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Preflight;
using Xunit;

namespace OpenLm.Mirror.Tests.Preflight;

/// <summary>The allow-list and verdict model: one line per distinct host:port, deterministic, and reachable only without a failure.</summary>
public sealed class PreflightReportTests
{
    [Fact]
    public void BuildAllowList_SameHostInSeveralRolesAndCases_OneLineEachSortedOrdinal()
    {
        // Given a registry whose token realm is on the same host, a CDN in upper case, a proxy and an IPv6 address
        PreflightEndpoint[] endpoints =
        [
            new("public.ecr.aws", 443, PreflightRole.Registry, null, "https"),
            new("public.ecr.aws", 443, PreflightRole.TokenRealm, "public.ecr.aws", "https"),
            new("D2GLXQK2UJG8SE.cloudfront.net", 443, PreflightRole.Cdn, "public.ecr.aws", "https"),
            new("proxy.corp", 3128, PreflightRole.Proxy, null, "http"),
            new("::1", 5000, PreflightRole.Registry, null, "http"),
        ];

        // When the allow-list is built
        var lines = PreflightReport.BuildAllowList(endpoints);

        // Then each host:port appears once, lower case, IPv6 in brackets, in ordinal order
        Assert.Equal(["[::1]:5000", "d2glxqk2ujg8se.cloudfront.net:443", "proxy.corp:3128", "public.ecr.aws:443"], lines);
    }

    [Theory]
    [InlineData("https://public.ecr.aws/v2/", "public.ecr.aws", 443)]
    [InlineData("http://127.0.0.2:40777/blob?sig=1", "127.0.0.2", 40777)]
    [InlineData("https://[::1]:8443/token", "::1", 8443)]
    public void Of_Url_TakesHostAndDefaultOrExplicitPort(string url, string host, int port)
    {
        var endpoint = PreflightEndpoint.Of(new Uri(url), PreflightRole.Cdn, "r");

        Assert.Equal(host, endpoint.Host);
        Assert.Equal(port, endpoint.Port);
        Assert.Equal(url.StartsWith("https", StringComparison.Ordinal), endpoint.UsesTls);
    }

    [Fact]
    public void Reachable_OnlyWhenNoCheckFailed_SkippedDoesNotCount()
    {
        var registry = new PreflightEndpoint("registry.corp", 443, PreflightRole.Registry, null, "https");
        PreflightCheck[] passing =
        [
            PreflightCheck.Ok(registry, PreflightCheckKind.Dns, "resolves"),
            PreflightCheck.Skipped(registry, PreflightCheckKind.Proxy, "direct: no proxy configured"),
        ];
        var ok = new PreflightReport("target registry.corp", [registry], passing, "none");
        var failed = new PreflightReport(
            "target registry.corp",
            [registry],
            [.. passing, PreflightCheck.Failed(registry, PreflightCheckKind.Tls, "not trusted", Remedy.TrustCaFile)],
            "none");

        Assert.True(ok.Reachable);
        Assert.Empty(ok.Failures);
        Assert.False(failed.Reachable);
        var failure = Assert.Single(failed.Failures);
        Assert.Equal((PreflightCheckKind.Tls, Remedy.TrustCaFile, "registry.corp:443"), (failure.Kind, failure.Remedy, failure.Endpoint));
    }

    [Fact]
    public void ConnectTimeout_RejectsZero()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new PreflightOptions { ConnectTimeout = TimeSpan.Zero });
    }
}
