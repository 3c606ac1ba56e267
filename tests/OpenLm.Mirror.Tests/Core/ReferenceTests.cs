using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

public sealed class ReferenceTests
{
    private const string Hex = "4c2e6d9b1f0a3c5e7d8b9a0f1e2d3c4b5a69788776655443322110ffeeddccbb";

    [Theory]
    [InlineData("mongo", "docker.io", "library/mongo", "latest", "docker.io/library/mongo:latest")]
    [InlineData("mongo:7.0", "docker.io", "library/mongo", "7.0", "docker.io/library/mongo:7.0")]
    [InlineData("bitnami/redis", "docker.io", "bitnami/redis", "latest", "docker.io/bitnami/redis:latest")]
    [InlineData("index.docker.io/x/y", "docker.io", "x/y", "latest", "docker.io/x/y:latest")]
    [InlineData("registry-1.docker.io/x/y:1", "docker.io", "x/y", "1", "docker.io/x/y:1")]
    [InlineData("docker.io/mongo", "docker.io", "library/mongo", "latest", "docker.io/library/mongo:latest")]
    [InlineData("localhost:5000/a", "localhost:5000", "a", "latest", "localhost:5000/a:latest")]
    [InlineData("localhost/a", "localhost", "a", "latest", "localhost/a:latest")]
    [InlineData("127.0.0.1:5000/a/b:t", "127.0.0.1:5000", "a/b", "t", "127.0.0.1:5000/a/b:t")]
    [InlineData("public.ecr.aws/r3q3q2f4/olm-server:1.260716.1540", "public.ecr.aws", "r3q3q2f4/olm-server", "1.260716.1540", "public.ecr.aws/r3q3q2f4/olm-server:1.260716.1540")]
    [InlineData("[::1]:5000/a:b", "[::1]:5000", "a", "b", "[::1]:5000/a:b")]
    [InlineData("reg.example/a__b/c-d.e_f:V1_x-y.z", "reg.example", "a__b/c-d.e_f", "V1_x-y.z", "reg.example/a__b/c-d.e_f:V1_x-y.z")]
    public void Reference_Parse_NormalisesNamesAndTags(string input, string registry, string repository, string tag, string normalised)
    {
        // Given a reference as a user would type it
        // When it is parsed
        var reference = Reference.Parse(input);

        // Then it is normalised the way Docker does
        Assert.Equal(registry, reference.Registry);
        Assert.Equal(repository, reference.Repository);
        Assert.Equal(tag, reference.Tag);
        Assert.Null(reference.Digest);
        Assert.Equal(normalised, reference.ToString());
        Assert.Equal(tag, reference.TagOrDigest);
    }

    [Fact]
    public void Reference_Parse_NameWithDigest_HasNoImplicitTag()
    {
        // Given a reference pinned by digest only
        var input = $"public.ecr.aws/r3q3q2f4/olm-server@sha256:{Hex}";

        // When it is parsed
        var reference = Reference.Parse(input);

        // Then there is no tag (":latest" is not implied) and the digest is what is asked for
        Assert.Null(reference.Tag);
        Assert.Equal($"sha256:{Hex}", reference.Digest.ToString());
        Assert.Equal($"sha256:{Hex}", reference.TagOrDigest);
        Assert.Equal(input, reference.ToString());
        Assert.Equal("public.ecr.aws/r3q3q2f4/olm-server", reference.Name);
    }

    [Fact]
    public void Reference_Parse_NameTagAndDigest_KeepsBothAndPrefersDigest()
    {
        // Given a reference with both a tag and a digest
        var input = $"mongo:7.0@sha256:{Hex}";

        // When it is parsed
        var reference = Reference.Parse(input);

        // Then both are kept and the digest wins when asking the registry
        Assert.Equal("7.0", reference.Tag);
        Assert.Equal($"sha256:{Hex}", reference.Digest.ToString());
        Assert.Equal($"sha256:{Hex}", reference.TagOrDigest);
        Assert.Equal($"docker.io/library/mongo:7.0@sha256:{Hex}", reference.ToString());
    }

    [Fact]
    public void Reference_Parse_Normalised_RoundTrips()
    {
        // Given a normalised reference string
        var first = Reference.Parse("127.0.0.1:5000/olm/server:1.2");

        // When its string form is parsed again
        var second = Reference.Parse(first.ToString());

        // Then the result is equal
        Assert.Equal(first, second);
    }

    [Theory]
    [InlineData("redis:alpine3.17:25.6.17.422", "at most one tag")]
    [InlineData("Mongo", "must be lowercase")]
    [InlineData("docker.io/Library/mongo", "must be lowercase")]
    [InlineData("reg.example/Team/app:1", "must be lowercase")]
    [InlineData("mongo@sha256:abc", "64 lowercase hex")]
    [InlineData("mongo@md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported algorithm")]
    [InlineData("mongo@", "digest is empty")]
    [InlineData("mongo:-bad", "tag '-bad' is not valid")]
    [InlineData("mongo:.bad", "tag '.bad' is not valid")]
    [InlineData("mongo:", "tag '' is not valid")]
    [InlineData("mongo:a/b", "")]
    [InlineData("mongo :1", "whitespace")]
    [InlineData(" mongo", "whitespace")]
    [InlineData("mongo\t", "whitespace")]
    [InlineData(":tag", "repository name is empty")]
    [InlineData("a//b", "not valid")]
    [InlineData("a/b/", "not valid")]
    [InlineData("a--", "not valid")]
    [InlineData("a..b", "not valid")]
    [InlineData("bad_host.example:port/a", "registry host")]
    [InlineData("-bad.example/a", "registry host")]
    public void Reference_Parse_Malformed_ThrowsInputExceptionQuotingInputAndReason(string input, string why)
    {
        // Given a malformed reference
        // When it is parsed
        var ex = Assert.Throws<InputException>(() => Reference.Parse(input));

        // Then the message quotes the input and says why
        Assert.Contains($"'{input}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
        Assert.Equal(FailureKind.Usage, ex.Kind);
    }

    [Fact]
    public void Reference_Parse_RedisWithTwoTags_ExplainsTheSeparatorCount()
    {
        // Given the classic mistake of a tag with a second ':'
        // When it is parsed
        var ok = Reference.TryParse("redis:alpine3.17:25.6.17.422", out var reference, out var error);

        // Then the error names the offending segment and how many ':' it has
        Assert.False(ok);
        Assert.Null(reference);
        Assert.Equal(
            "invalid reference 'redis:alpine3.17:25.6.17.422': 'redis:alpine3.17:25.6.17.422' has 2 ':' separators; a reference has at most one tag (name:tag)",
            error);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(null)]
    public void Reference_TryParse_Empty_SaysItIsEmpty(string? input)
    {
        // Given nothing
        // When it is parsed
        var ok = Reference.TryParse(input, out _, out var error);

        // Then it is refused as empty
        Assert.False(ok);
        Assert.Contains("empty", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Reference_Parse_NameLongerThan255_IsRefused()
    {
        // Given a name of 256 characters including the registry
        var input = "reg.example/" + new string('a', 256 - "reg.example/".Length);

        // When it is parsed
        var ex = Assert.Throws<InputException>(() => Reference.Parse(input));

        // Then the length limit is named
        Assert.Contains("longer than 255", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reference_Parse_NameOf255_IsAccepted()
    {
        // Given a name of exactly 255 characters
        var input = "reg.example/" + new string('a', 255 - "reg.example/".Length);

        // When it is parsed
        var reference = Reference.Parse(input);

        // Then it is accepted
        Assert.Equal(255, reference.Name.Length);
    }

    [Fact]
    public void Reference_Parse_TagOf128_AcceptedAnd129_Refused()
    {
        // Given tags at and beyond the 128 character limit
        var ok = "a:" + new string('t', 128);
        var tooLong = "a:" + new string('t', 129);

        // When they are parsed
        var parsed = Reference.Parse(ok);
        var ex = Assert.Throws<InputException>(() => Reference.Parse(tooLong));

        // Then only the longer one is refused
        Assert.Equal(128, parsed.Tag!.Length);
        Assert.Contains("at most 128", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("mongo:tést")]
    [InlineData("mongo:版本")]
    [InlineData("mongo:١٢٣")]
    public void Reference_Parse_NonAsciiTag_IsRefused(string input)
    {
        // Given a tag with characters outside [A-Za-z0-9_.-] (distribution's \w is ASCII-only)
        // When it is parsed
        var ex = Assert.Throws<InputException>(() => Reference.Parse(input));

        // Then it is refused as an invalid tag
        Assert.Contains("is not valid", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("v1", true)]
    [InlineData("_v1", true)]
    [InlineData("1.0-rc_1", true)]
    [InlineData("-v1", false)]
    [InlineData("v1\n", false)]
    [InlineData("", false)]
    [InlineData("tést", false)]
    public void Reference_IsValidTag_FollowsDistributionGrammar(string tag, bool valid)
    {
        // Given a candidate tag
        // When it is checked
        // Then only [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} is valid
        Assert.Equal(valid, Reference.IsValidTag(tag));
    }

    [Fact]
    public void Reference_Create_ValidatesParts()
    {
        // Given valid and invalid parts
        // When references are created from them
        var ok = Reference.Create("127.0.0.1:5000", "olm/server", "1.2");
        var ex = Assert.Throws<InputException>(() => Reference.Create("127.0.0.1:5000", "OLM/server", "1.2"));

        // Then the valid one round-trips and the invalid one is refused
        Assert.Equal("127.0.0.1:5000/olm/server:1.2", ok.ToString());
        Assert.Contains("lowercase", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reference_WithRepository_MovesToAnotherRegistryKeepingTag()
    {
        // Given a Docker Hub reference
        var reference = Reference.Parse("mongo:7.0");

        // When it is moved to a mirror registry
        var moved = reference.WithRepository("127.0.0.1:5000", "mirror/mongo");

        // Then the tag is kept
        Assert.Equal("127.0.0.1:5000/mirror/mongo:7.0", moved.ToString());
    }
}
