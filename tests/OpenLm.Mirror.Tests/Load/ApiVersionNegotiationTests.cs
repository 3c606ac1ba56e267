using OpenLm.Mirror.EngineLoad;
using OpenLm.Mirror.Errors;
using Xunit;

namespace OpenLm.Mirror.Tests.Load;

public sealed class ApiVersionNegotiationTests
{
    [Theory]
    [InlineData("1.41", "1.12", "1.41")] // Docker 20.10: older than the client, so the engine's version
    [InlineData("1.47", "1.24", "1.47")] // Docker 27
    [InlineData("1.52", "1.44", "1.51")] // Docker 29: newer than the client, so the client's maximum
    [InlineData("1.51", null, "1.51")]
    [InlineData("1.30", "", "1.30")]
    public void Negotiate_OverlappingRanges_UsesTheLowerMaximum(string engine, string? engineMin, string expected)
    {
        var version = ApiVersionNegotiation.Negotiate(engine, engineMin);

        Assert.Equal(expected, ApiVersionNegotiation.Format(version));
    }

    [Fact]
    public void Negotiate_EngineNeedsNewerThanClientSpeaks_ThrowsNamingBothRanges()
    {
        var ex = Assert.Throws<OperationException>(() => ApiVersionNegotiation.Negotiate("1.60", "1.55"));

        Assert.Contains("requires API version 1.55 or newer", ex.Message);
        Assert.Contains(ApiVersionNegotiation.Format(ApiVersionNegotiation.ClientMaximum), ex.Message);
    }

    [Fact]
    public void Negotiate_EngineOlderThanClientMinimum_ThrowsAskingForUpgrade()
    {
        var ex = Assert.Throws<OperationException>(() => ApiVersionNegotiation.Negotiate("1.22", "1.12"));

        Assert.Contains("1.22", ex.Message);
        Assert.Contains("upgrade the engine", ex.Message);
    }

    [Fact]
    public void Negotiate_EngineAnnouncesNoVersion_AssumesTheDockerCliFallback()
    {
        // The docker CLI assumes 1.24 when /_ping carries no API-Version header.
        Assert.Equal(new Version(1, 24), ApiVersionNegotiation.Negotiate(null, null, new Version(1, 12), new Version(1, 41)));
        Assert.Throws<OperationException>(() => ApiVersionNegotiation.Negotiate("", null));
    }

    [Fact]
    public void Negotiate_ExplicitClientRange_IsHonoured()
    {
        Assert.Equal(new Version(1, 40), ApiVersionNegotiation.Negotiate("1.41", "1.12", new Version(1, 30), new Version(1, 40)));
        Assert.Throws<OperationException>(() => ApiVersionNegotiation.Negotiate("1.44", "1.44", new Version(1, 30), new Version(1, 43)));
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("1")]
    [InlineData("1.41.2")]
    [InlineData("v1.41")]
    public void Negotiate_MalformedEngineVersion_Throws(string engine)
    {
        Assert.Throws<OperationException>(() => ApiVersionNegotiation.Negotiate(engine, null));
    }

    [Fact]
    public void ParseAndFormat_KeepMinorAsANumber()
    {
        // 1.41 is minor 41, not 1.4.1; 1.9 < 1.41.
        var v141 = ApiVersionNegotiation.Parse("1.41");
        var v19 = ApiVersionNegotiation.Parse("1.9");

        Assert.Equal(new Version(1, 41), v141);
        Assert.True(v19 < v141);
        Assert.Equal("1.41", ApiVersionNegotiation.Format(v141!));
        Assert.Null(ApiVersionNegotiation.Parse(" "));
    }
}
