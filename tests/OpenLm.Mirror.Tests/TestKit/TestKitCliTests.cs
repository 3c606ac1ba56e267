using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.Tests.TestKit;

public sealed class TestKitCliTests
{
    [Theory]
    [InlineData("")]
    [InlineData("bogus")]
    [InlineData("seed")]
    [InlineData("seed|--registry")]
    [InlineData("seed|--registry|127.0.0.1:5000|--user|u")]
    [InlineData("layout")]
    [InlineData("layout|--out|x|--profile|huge")]
    [InlineData("layout|--out|x|--profile|small|--total-mb|10")]
    [InlineData("layout|--out|x|--images|zero")]
    [InlineData("layout|--out|x|--registry|127.0.0.1:5000")]
    [InlineData("layout|--out|x|--namespace|Bad Name")]
    [InlineData("layout|--out|x|--frobnicate")]
    public async Task TestKitCli_BadUsage_ExitsWith2(string joinedArgs)
    {
        var args = joinedArgs.Length == 0 ? [] : joinedArgs.Split('|');
        Assert.Equal(2, await OpenLm.Mirror.TestKit.Program.Main(args));
    }

    [Fact]
    public async Task TestKitCli_Layout_WritesOciLayout()
    {
        var dir = TempDir.Create();
        try
        {
            Assert.Equal(0, await OpenLm.Mirror.TestKit.Program.Main(["layout", "--out", dir, "--seed", "9", "--json"]));
            Assert.True(File.Exists(Path.Combine(dir, "oci-layout")));
            Assert.True(File.Exists(Path.Combine(dir, "index.json")));
        }
        finally
        {
            TempDir.Delete(dir);
        }
    }

    [Theory]
    [InlineData("127.0.0.1:5000", "http://127.0.0.1:5000/")]
    [InlineData("http://localhost:5000/", "http://localhost:5000/")]
    [InlineData("https://registry.local", "https://registry.local/")]
    public void RegistryPusher_ParseRegistry_DefaultsToHttp(string input, string expected)
    {
        Assert.Equal(new Uri(expected), RegistryPusher.ParseRegistry(input));
    }

    [Theory]
    [InlineData("ftp://x:1")]
    [InlineData("127.0.0.1:5000/v2/foo")]
    public void RegistryPusher_ParseRegistry_RejectsGarbage(string input)
    {
        Assert.Throws<ArgumentException>(() => RegistryPusher.ParseRegistry(input));
    }
}
