using System.Text;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.TestFixtures;
using Xunit;

namespace OpenLm.Mirror.Tests.PlatformSpec;

/// <summary>Where and in what shape a chart takes pull secrets, read from its shipped defaults.</summary>
public sealed class ChartDefaultsTests
{
    private static ChartDefaults Read(string umbrellaValues, string subchartValues)
    {
        var bytes = TarGz.Create(
        [
            new TarGzEntry("u/Chart.yaml", Encoding.UTF8.GetBytes("apiVersion: v2\nname: u\nversion: 1.0.0\ndependencies:\n  - name: sub\n    version: 1.0.0\n")),
            new TarGzEntry("u/values.yaml", Encoding.UTF8.GetBytes(umbrellaValues)),
            new TarGzEntry("u/charts/sub/Chart.yaml", Encoding.UTF8.GetBytes("apiVersion: v2\nname: sub\nversion: 1.0.0\n")),
            new TarGzEntry("u/charts/sub/values.yaml", Encoding.UTF8.GetBytes(subchartValues)),
        ]);
        using var stream = new MemoryStream(bytes);
        return ChartDefaults.Read(stream, "u-1.0.0.tgz");
    }

    [Theory]
    [InlineData("sub: {}\n", "imagePullSecrets: {name: \"\"}\nweb:\n  image: x.io/a:1\n", "sub.imagePullSecrets", PullSecretShape.NameMapping)]
    [InlineData("sub: {}\n", "imagePullSecrets: []\nweb:\n  image: x.io/a:1\n", "sub.imagePullSecrets", PullSecretShape.ObjectList)]
    [InlineData("sub: {}\n", "imagePullSecrets: [old]\nweb:\n  image: x.io/a:1\n", "sub.imagePullSecrets", PullSecretShape.StringList)]
    [InlineData("sub: {}\n", "imagePullSecrets: \"\"\nweb:\n  image: x.io/a:1\n", "sub.imagePullSecrets", PullSecretShape.NameString)]
    [InlineData("sub: {}\n", "web:\n  imagePullSecrets: []\n  image: x.io/a:1\nimagePullSecrets: {name: \"\"}\n", "sub.web.imagePullSecrets", PullSecretShape.ObjectList)]
    // The umbrella's value wins over the subchart's default, as Helm coalesces them.
    [InlineData("sub:\n  imagePullSecrets: {name: \"\"}\n", "imagePullSecrets: []\nweb:\n  image: x.io/a:1\n", "sub.imagePullSecrets", PullSecretShape.NameMapping)]
    public void ChartDefaults_PullSecretsFor_TakesTheNearestDeclaredShape(string umbrella, string sub, string expectedPath, PullSecretShape expected)
    {
        var chart = Read(umbrella, sub);

        var slot = chart.PullSecretsFor(["sub", "web", "image"]);

        Assert.NotNull(slot);
        Assert.Equal(expectedPath, string.Join('.', slot.Path));
        Assert.Equal(expected, slot.Shape);
    }

    [Fact]
    public void ChartDefaults_PullSecretsFor_NeverLooksOutsideTheChartThatOwnsTheImage()
    {
        // Given an umbrella that declares imagePullSecrets for its own templates only
        var chart = Read("imagePullSecrets: []\nsub: {}\n", "web:\n  image: x.io/a:1\n");

        // Then the subchart's image finds none (the umbrella's key is not the subchart's)
        Assert.Null(chart.PullSecretsFor(["sub", "web", "image"]));
        Assert.Equal(["imagePullSecrets"], chart.PullSecretsFor(["own", "image"])!.Path);
    }

    [Theory]
    [InlineData("global:\n  imagePullSecrets: []\n", PullSecretShape.StringList)]
    [InlineData("global:\n  imagePullSecrets: [{name: a}]\n", PullSecretShape.ObjectList)]
    [InlineData("x: 1\n", PullSecretShape.StringList)]
    public void ChartDefaults_GlobalPullSecretShape_FollowsTheSubchartsDefault(string sub, PullSecretShape expected)
    {
        Assert.Equal(expected, Read("sub: {}\n", sub).GlobalPullSecretShape());
    }
}
