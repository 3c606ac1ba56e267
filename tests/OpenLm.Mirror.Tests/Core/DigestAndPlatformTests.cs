using System.Text;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

public sealed class DigestTests
{
    private const string EmptySha256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    [Fact]
    public void Digest_Parse_Sha256_ExposesParts()
    {
        // Given a well-formed sha256 digest
        // When it is parsed
        var digest = Digest.Parse(EmptySha256);

        // Then algorithm, hex, string and short forms are right
        Assert.Equal("sha256", digest.Algorithm);
        Assert.Equal(EmptySha256["sha256:".Length..], digest.Hex);
        Assert.Equal(EmptySha256, digest.ToString());
        Assert.Equal("sha256:e3b0c44298fc", digest.Short);
        Assert.Equal("sha256-" + digest.Hex, digest.ToTagForm());
        Assert.False(digest.IsEmpty);
    }

    [Fact]
    public void Digest_Parse_Sha512_IsAccepted()
    {
        // Given a sha512 digest of 128 hex characters
        var text = "sha512:" + new string('a', 128);

        // When it is parsed
        var digest = Digest.Parse(text);

        // Then it uses SHA-512
        Assert.Equal(System.Security.Cryptography.HashAlgorithmName.SHA512, digest.HashAlgorithm);
        Assert.Equal(text, digest.ToString());
    }

    [Fact]
    public void Digest_Sha256_MatchesKnownValue()
    {
        // Given empty content
        // When it is hashed
        var digest = Digest.Sha256([]);

        // Then it is the well-known empty sha256 and equals its parsed form
        Assert.Equal(Digest.Parse(EmptySha256), digest);
    }

    [Fact]
    public async Task Digest_Sha256Async_MatchesSpanHash()
    {
        // Given some content
        var data = Encoding.UTF8.GetBytes("hello, registry");
        using var stream = new MemoryStream(data);

        // When it is hashed from a stream
        var digest = await Digest.Sha256Async(stream);

        // Then it equals the in-memory hash
        Assert.Equal(Digest.Sha256(data), digest);
    }

    [Theory]
    [InlineData("", "digest is empty")]
    [InlineData("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "no algorithm prefix")]
    [InlineData(":e3b0", "no algorithm prefix")]
    [InlineData("md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported algorithm 'md5'")]
    [InlineData("SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "unsupported algorithm")]
    [InlineData("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "64 lowercase hex")]
    [InlineData("sha256:e3b0", "64 lowercase hex")]
    [InlineData("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555", "64 lowercase hex")]
    [InlineData("sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "64 lowercase hex")]
    [InlineData("sha512:abcd", "128 lowercase hex")]
    public void Digest_TryParse_Malformed_ExplainsWhy(string text, string why)
    {
        // Given a malformed digest
        // When it is parsed
        var ok = Digest.TryParse(text, out var digest, out var error);

        // Then it is refused with a reason and no digest
        Assert.False(ok);
        Assert.True(digest.IsEmpty);
        Assert.Contains(why, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Digest_Parse_Malformed_ThrowsInputExceptionWithContext()
    {
        // Given a malformed digest and a context
        // When it is parsed
        var ex = Assert.Throws<InputException>(() => Digest.Parse("sha256:nope", "--digest"));

        // Then the message starts with the context and quotes the value
        Assert.StartsWith("--digest: digest 'sha256:nope'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Digest_Default_IsEmpty()
    {
        // Given a default digest
        var digest = default(Digest);

        // When it is inspected
        // Then it is empty and prints as nothing
        Assert.True(digest.IsEmpty);
        Assert.Equal(string.Empty, digest.ToString());
        Assert.Equal(string.Empty, digest.Short);
    }
}

public sealed class PlatformTests
{
    [Theory]
    [InlineData("linux/amd64", "linux", "amd64", null)]
    [InlineData("linux/arm/v7", "linux", "arm", "v7")]
    [InlineData("windows/amd64", "windows", "amd64", null)]
    public void Platform_Parse_Valid_ExposesParts(string text, string os, string arch, string? variant)
    {
        // Given a platform string
        // When it is parsed
        var platform = Platform.Parse(text);

        // Then its parts are set and it prints back the same
        Assert.Equal(os, platform.Os);
        Assert.Equal(arch, platform.Architecture);
        Assert.Equal(variant, platform.Variant);
        Assert.Equal(text, platform.ToString());
    }

    [Theory]
    [InlineData("linux")]
    [InlineData("linux/")]
    [InlineData("/amd64")]
    [InlineData("linux/arm/v7/extra")]
    [InlineData("linux/ amd64")]
    [InlineData("")]
    public void Platform_Parse_Invalid_ThrowsInputExceptionQuotingIt(string text)
    {
        // Given a malformed platform
        // When it is parsed
        var ex = Assert.Throws<InputException>(() => Platform.Parse(text));

        // Then the message quotes it and shows the expected form
        Assert.Contains($"'{text}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("os/arch", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Platform_ParseList_SplitsAndTrims()
    {
        // Given a comma-separated list with spaces and an empty entry
        // When it is parsed
        var list = Platform.ParseList(" linux/amd64, linux/arm64/v8,,");

        // Then each entry is a platform
        Assert.Equal(["linux/amd64", "linux/arm64/v8"], list.Select(p => p.ToString()));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    public void Platform_ParseList_Nothing_IsEmpty(string? text)
    {
        // Given no platform list
        // When it is parsed
        // Then there is no filter
        Assert.Empty(Platform.ParseList(text));
    }

    [Theory]
    [InlineData("linux/amd64", "linux/amd64", true)]
    [InlineData("linux/amd64", "linux/arm64", false)]
    [InlineData("linux/amd64", "windows/amd64", false)]
    [InlineData("linux/arm", "linux/arm/v7", true)]
    [InlineData("linux/arm", "linux/arm/v6", true)]
    [InlineData("linux/arm/v7", "linux/arm/v7", true)]
    [InlineData("linux/arm/v7", "linux/arm/v6", false)]
    [InlineData("linux/arm/v7", "linux/arm", false)]
    [InlineData("linux/arm64", "linux/arm64/v8", true)]
    public void Platform_Matches_AppliesVariantRules(string filter, string candidate, bool matches)
    {
        // Given a filter and a candidate platform
        // When the filter is applied
        // Then a filter without variant takes any variant; with a variant it must be equal
        Assert.Equal(matches, Platform.Parse(filter).Matches(Platform.Parse(candidate)));
    }

    [Fact]
    public void Platform_Matches_NullCandidate_IsFalse()
    {
        // Given a descriptor without platform
        // When a filter is applied
        // Then it does not match
        Assert.False(Platform.Parse("linux/amd64").Matches(null));
    }

    [Fact]
    public void Platform_Matches_IgnoresOsVersion()
    {
        // Given a Windows candidate with an os.version
        var candidate = new Platform { Os = "windows", Architecture = "amd64", OsVersion = "10.0.17763.1" };

        // When a filter without os.version is applied
        // Then it matches
        Assert.True(Platform.Parse("windows/amd64").Matches(candidate));
    }
}
