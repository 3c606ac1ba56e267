using OpenLm.Mirror.AirGap;
using Xunit;

namespace OpenLm.Mirror.Tests.AirGap;

public sealed class YamlTextTests
{
    [Theory]
    [InlineData("registry.corp:5000/openlm/olm-server@sha256:abc")]
    [InlineData("3.7.0-debian-12-r0")]
    [InlineData("openlm/bitnami/kafka")]
    [InlineData("sha256:0123")]
    [InlineData("latest")]
    public void YamlText_IsSafePlain_AcceptsOrdinaryImageStrings(string value)
    {
        Assert.True(YamlText.IsSafePlain(value));
        Assert.Equal(value, RoundTrip(YamlText.Scalar(value)));
    }

    [Theory]
    [InlineData("7")]
    [InlineData("7.0")]
    [InlineData("1.10")]
    [InlineData("1e5")]
    [InlineData("0x1F")]
    [InlineData("0o17")]
    [InlineData("12:30")]
    [InlineData("2024-01-15")]
    [InlineData("2024-01-15t10:00:00z")]
    [InlineData("yes")]
    [InlineData("No")]
    [InlineData("on")]
    [InlineData("null")]
    [InlineData("~")]
    [InlineData("")]
    [InlineData("-dash")]
    [InlineData("a: b")]
    [InlineData("a #b")]
    [InlineData("*alias")]
    [InlineData("&anchor")]
    [InlineData("!tag")]
    [InlineData("'quoted'")]
    [InlineData("\"dq\"")]
    [InlineData("tab\there")]
    [InlineData("new\nline")]
    [InlineData("back\\slash")]
    [InlineData("{flow}")]
    [InlineData("[list]")]
    [InlineData("% percent")]
    [InlineData("@at")]
    [InlineData("ü-unicode")]
    public void YamlText_Scalar_QuotesAnythingThatCouldChangeMeaning(string value)
    {
        Assert.False(YamlText.IsSafePlain(value));
        Assert.Equal(value, RoundTrip(YamlText.Scalar(value)));
        Assert.Equal(value, RoundTrip(YamlText.DoubleQuoted(value)));
        if (YamlText.SingleQuoted(value) is { } single)
        {
            Assert.Equal(value, RoundTrip(single));
        }
    }

    [Theory]
    [InlineData("server", "server")]
    [InlineData("image-pull_secrets", "image-pull_secrets")]
    [InlineData("on", "\"on\"")]
    [InlineData("y", "\"y\"")]
    [InlineData("a.b", "\"a.b\"")]
    [InlineData("1", "\"1\"")]
    public void YamlText_Key_QuotesReservedAndUnusualKeys(string key, string expected)
    {
        Assert.Equal(expected, YamlText.Key(key));
    }

    private static string? RoundTrip(string scalar) => YamlPaths.Flatten($"k: {scalar}\n")["k"];
}
