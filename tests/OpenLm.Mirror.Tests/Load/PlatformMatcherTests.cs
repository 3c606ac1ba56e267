using OpenLm.Mirror.EngineLoad;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.Load;

public sealed class PlatformMatcherTests
{
    private static Descriptor Child(string platform, string mediaType = MediaTypes.OciManifest, int n = 0)
    {
        var p = Platform.Parse(platform);
        return new Descriptor
        {
            MediaType = mediaType,
            Digest = Digest.Sha256(System.Text.Encoding.UTF8.GetBytes(platform + n)),
            Size = 100,
            Platform = p,
        };
    }

    private static readonly Descriptor[] Children =
    [
        Child("linux/amd64"),
        Child("linux/arm64/v8"),
        Child("linux/arm/v6"),
        Child("linux/arm/v7"),
        Child("unknown/unknown"),
    ];

    [Theory]
    [InlineData("x86_64", "amd64")]
    [InlineData("X86_64", "amd64")]
    [InlineData("aarch64", "arm64")]
    [InlineData("armv7l", "arm")]
    [InlineData("i686", "386")]
    [InlineData("amd64", "amd64")]
    [InlineData("s390x", "s390x")]
    public void NormalizeArchitecture_MapsKernelNamesToGoNames(string given, string expected)
    {
        Assert.Equal(expected, PlatformMatcher.NormalizeArchitecture(given));
    }

    [Fact]
    public void FromEngine_UnameStyleNames_AreNormalised()
    {
        Assert.Equal("linux/amd64", PlatformMatcher.FromEngine("linux", "x86_64").ToString());
        Assert.Equal("linux/arm64", PlatformMatcher.FromEngine("linux", "aarch64").ToString());
        Assert.Equal("linux/arm/v7", PlatformMatcher.FromEngine("linux", "armv7l").ToString());
        Assert.Throws<OperationException>(() => PlatformMatcher.FromEngine(null, "amd64"));
    }

    [Theory]
    [InlineData("linux/amd64", "linux/amd64")]
    [InlineData("linux/arm64", "linux/arm64/v8")]   // no variant asked: arm64 means v8
    [InlineData("linux/arm64/v8", "linux/arm64/v8")]
    [InlineData("linux/arm", "linux/arm/v7")]       // arm without variant means v7, even though v6 comes first
    [InlineData("linux/arm/v6", "linux/arm/v6")]
    [InlineData("linux/aarch64", "linux/arm64/v8")]
    public void SelectManifest_PicksTheMatchingChild(string wanted, string expected)
    {
        var chosen = PlatformMatcher.SelectManifest(Children, Platform.Parse(wanted));

        Assert.NotNull(chosen);
        Assert.Equal(expected, chosen.Platform!.ToString());
    }

    [Theory]
    [InlineData("linux/s390x")]
    [InlineData("windows/amd64")]
    [InlineData("linux/arm/v5")]
    [InlineData("unknown/unknown")] // attestation manifests are never images to load... unless asked for; then still only image manifests
    public void SelectManifest_NoMatchingImage_ReturnsNull(string wanted)
    {
        var children = Children.Where(c => c.Platform!.Os != "unknown").Append(Child("unknown/unknown", "application/vnd.in-toto+json")).ToList();

        Assert.Null(PlatformMatcher.SelectManifest(children, Platform.Parse(wanted)));
    }

    [Fact]
    public void SelectManifest_ArmVariantMissingInChild_CountsAsDefault()
    {
        Descriptor[] children = [Child("linux/arm64"), Child("linux/amd64")];

        Assert.Equal("linux/arm64", PlatformMatcher.SelectManifest(children, Platform.Parse("linux/arm64/v8"))!.Platform!.ToString());
    }

    [Fact]
    public void SelectManifest_SeveralAmd64Variants_PrefersThePlainOne()
    {
        Descriptor[] children = [Child("linux/amd64/v3"), Child("linux/amd64")];

        Assert.Equal("linux/amd64", PlatformMatcher.SelectManifest(children, Platform.Parse("linux/amd64"))!.Platform!.ToString());
    }

    [Fact]
    public void SelectManifest_NestedIndexChild_IsNotACandidate()
    {
        Descriptor[] children = [Child("linux/amd64", MediaTypes.OciIndex)];

        Assert.Null(PlatformMatcher.SelectManifest(children, Platform.Parse("linux/amd64")));
    }

    [Fact]
    public void Describe_ListsImagePlatformsOnly()
    {
        Assert.Equal("linux/amd64, linux/arm64/v8, linux/arm/v6, linux/arm/v7", PlatformMatcher.Describe(Children));
    }
}
