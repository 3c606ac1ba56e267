using OpenLm.Mirror.Errors;
using OpenLm.Mirror.PlatformSpec;
using Xunit;

namespace OpenLm.Mirror.Tests.PlatformSpec;

public sealed class ValuesPathTests
{
    [Theory]
    [InlineData("server.deployment.image", "server|deployment|image")]
    [InlineData("server.initContainers[0].image", "server|initContainers|[0]|image")]
    [InlineData("kafka.image.*", "kafka|image")]
    [InlineData("a.b\\.c.d", "a|b.c|d")]
    [InlineData("portal.portal-ui.image.*", "portal|portal-ui|image")]
    [InlineData("list[2][3]", "list|[2]|[3]")]
    public void ValuesPath_Parse_SplitsKeysIndexesAndEscapes(string path, string expected)
    {
        // Given a values path
        // When it is parsed
        var segments = ValuesPath.Parse(path);

        // Then keys, indexes and escaped dots come out, and formatting gives the path back
        Assert.Equal(expected, string.Join('|', segments.Select(s => s.IsIndex ? $"[{s.Index}]" : s.Key)));
        Assert.Equal(ValuesPath.IsSplit(path) ? path[..^2] : path, ValuesPath.Format(segments));
    }

    [Theory]
    [InlineData("")]
    [InlineData(".a")]
    [InlineData("a..b")]
    [InlineData("a.")]
    [InlineData("[0].a")]
    [InlineData("a[x]")]
    [InlineData("a[0]b")]
    public void ValuesPath_Parse_RejectsMalformedPaths(string path)
    {
        // Given a malformed path
        // When it is parsed
        // Then it is refused
        Assert.Throws<InputException>(() => ValuesPath.Parse(path));
    }

    [Fact]
    public void ValuesPath_AppendKey_EscapesDots()
    {
        // Given a key with a dot
        // When it is appended
        var path = ValuesPath.AppendKey("annotations", "example.com/image");

        // Then the dot is escaped
        Assert.Equal("annotations.example\\.com/image", path);
    }
}
