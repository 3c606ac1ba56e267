using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

public sealed class ImageLocationTests
{
    [Theory]
    [InlineData("oci:out:olm/server:1.2", "out", "olm/server:1.2")]
    [InlineData("oci:out", "out", null)]
    [InlineData("oci:/tmp/a b/layout:x", "/tmp/a b/layout", "x")]
    [InlineData("oci:out:127.0.0.1:5000/a/b:t", "out", "127.0.0.1:5000/a/b:t")]
    [InlineData("oci:./rel/dir:docker.io/library/mongo:latest", "./rel/dir", "docker.io/library/mongo:latest")]
    public void ImageLocation_Parse_Layout_SplitsDirectoryAndRefName(string text, string directory, string? refName)
    {
        // Given an oci: location
        // When it is parsed
        var location = Assert.IsType<LayoutLocation>(ImageLocation.Parse(text, "SRC"));

        // Then the directory ends at the first ':' and the ref name is the rest
        Assert.Equal(directory, location.Directory);
        Assert.Equal(refName, location.RefName);
        Assert.Equal(text, location.ToString());
    }

    [Theory]
    [InlineData("public.ecr.aws/r3q3q2f4/olm-server:1.260716.1540", "public.ecr.aws/r3q3q2f4/olm-server:1.260716.1540", true)]
    [InlineData("mongo", "docker.io/library/mongo:latest", false)]
    [InlineData("localhost:5000/a", "localhost:5000/a:latest", false)]
    [InlineData("127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t", true)]
    [InlineData("mongo@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "docker.io/library/mongo@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", true)]
    public void ImageLocation_Parse_Registry_NormalisesAndNotesExplicitTag(string text, string normalised, bool explicitTag)
    {
        // Given a registry reference
        // When it is parsed
        var location = Assert.IsType<RegistryLocation>(ImageLocation.Parse(text, "DST"));

        // Then it is normalised and remembers whether a tag or digest was written
        Assert.Equal(normalised, location.Reference.ToString());
        Assert.Equal(explicitTag, location.ExplicitTagOrDigest);
        Assert.Equal(normalised, location.ToString());
    }

    [Theory]
    [InlineData("", "SRC is empty")]
    [InlineData("  ", "SRC is empty")]
    [InlineData("oci:", "the OCI layout directory is empty")]
    [InlineData("oci::x", "the OCI layout directory is empty")]
    [InlineData("oci:out:", "the ref name after ':' is empty")]
    [InlineData("redis:alpine3.17:25.6.17.422", "SRC: invalid reference 'redis:alpine3.17:25.6.17.422'")]
    [InlineData("OCI:out", "SRC: invalid reference 'OCI:out'")]
    public void ImageLocation_Parse_Invalid_ThrowsInputExceptionWithRole(string text, string message)
    {
        // Given a malformed location
        // When it is parsed
        var ex = Assert.Throws<InputException>(() => ImageLocation.Parse(text, "SRC"));

        // Then the message names the role and the problem
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }
}

public sealed class ImageCopierTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private HandLayout SourceWith(params string[] names)
    {
        var layout = new HandLayout(_dir.Sub("src"));
        var i = 0;
        foreach (var name in names)
        {
            var manifest = layout.AddImage(MediaTypes.OciManifest, MediaTypes.OciConfig, MediaTypes.OciLayerGzip, TestContent.Utf8($"{{\"i\":{i}}}"), TestContent.Random(100, i++));
            layout.Name(name, MediaTypes.OciManifest, manifest);
        }

        return layout;
    }

    private static async Task<CopyResult> CopyAsync(string source, string destination)
    {
        using var connector = new RegistryConnector(new RegistryOptions());
        return await new ImageCopier(connector, new CopyOptions()).CopyAsync(ImageLocation.Parse(source, "SRC"), ImageLocation.Parse(destination, "DST"));
    }

    [Fact]
    public async Task ImageCopier_CopyAsync_LayoutWithOneImage_DefaultsRefNames()
    {
        // Given a layout holding a single named image
        var source = SourceWith("olm/server:1.2");

        // When it is copied without ref names on either side
        var result = await CopyAsync($"oci:{source.Root}", $"oci:{_dir.Sub("dst")}");

        // Then the destination uses the same ref name
        var target = OciLayoutStore.Open(_dir.Sub("dst"), create: false);
        Assert.Equal(result.Root.Digest, (await target.ResolveAsync("olm/server:1.2")).Digest);
    }

    [Fact]
    public async Task ImageCopier_CopyAsync_ExplicitDestinationRefName_IsUsed()
    {
        // Given a layout with two images
        var source = SourceWith("a:1", "b:2");

        // When one is copied under a new name
        await CopyAsync($"oci:{source.Root}:b:2", $"oci:{_dir.Sub("dst")}:mirror/b:2");

        // Then the destination has only that name
        var target = OciLayoutStore.Open(_dir.Sub("dst"), create: false);
        Assert.Equal(["mirror/b:2"], (await target.ReadIndexAsync()).Select(e => e.RefName));
    }

    [Fact]
    public async Task ImageCopier_CopyAsync_LayoutWithSeveralImagesAndNoRef_AsksForOne()
    {
        // Given a layout with two images
        var source = SourceWith("a:1", "b:2");

        // When it is copied without naming one
        var ex = await Assert.ThrowsAsync<InputException>(() => CopyAsync($"oci:{source.Root}", $"oci:{_dir.Sub("dst")}"));

        // Then the user is asked to name one
        Assert.Contains("holds 2 images", ex.Message, StringComparison.Ordinal);
        Assert.Contains("oci:DIR:REF", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ImageCopier_CopyAsync_SameLayoutAndName_IsRefused()
    {
        // Given a layout image
        var source = SourceWith("a:1");

        // When it is copied onto itself
        var ex = await Assert.ThrowsAsync<InputException>(() => CopyAsync($"oci:{source.Root}:a:1", $"oci:{source.Root}"));

        // Then it is refused
        Assert.Contains("source and destination are the same image", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ImageCopier_CopyAsync_SameLayoutOtherName_AddsAName()
    {
        // Given a layout image
        var source = SourceWith("a:1");

        // When it is copied into the same layout under another name
        var result = await CopyAsync($"oci:{source.Root}:a:1", $"oci:{source.Root}:a:2");

        // Then both names point at it
        var store = OciLayoutStore.Open(source.Root, create: false);
        Assert.Equal(result.Root.Digest, (await store.ResolveAsync("a:2")).Digest);
        Assert.Equal(result.Root.Digest, (await store.ResolveAsync("a:1")).Digest);
    }

    [Fact]
    public async Task ImageCopier_CopyAsync_MissingSourceLayout_IsInputError()
    {
        // Given no source layout
        // When a copy is asked for
        var ex = await Assert.ThrowsAsync<InputException>(() => CopyAsync($"oci:{_dir.Sub("nothing")}:a", $"oci:{_dir.Sub("dst")}"));

        // Then it says the layout does not exist, and nothing was created
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_dir.Sub("dst")));
    }
}
