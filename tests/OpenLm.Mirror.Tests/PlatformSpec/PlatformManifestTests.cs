using OpenLm.Mirror.Errors;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.TestFixtures;
using Xunit;

namespace OpenLm.Mirror.Tests.PlatformSpec;

public sealed class PlatformManifestTests : IDisposable
{
    private const string FileName = "openlm-platform.yaml";
    private const string Digest64 = "sha256:4c2e3f8b5a1d7e9c0b6a2f4d8e1c3b5a7d9f0e2c4b6a8d0f1e3c5b7a9d2f4e6c";
    private readonly ScratchDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Valid(string images = "", string charts = "") =>
        $"""
        apiVersion: mirror.openlm.io/v1
        kind: Platform
        name: openlm-platform
        version: "1.260810.1250"
        source: public.ecr.aws/r3q3q2f4
        platforms: [linux/amd64]
        images:
          - name: olm-server
            tag: "1.260716.1540"
            values: [server.deployment.image]
          - ref: docker.io/provectuslabs/kafka-ui:v0.7.1
        {images}
        {charts}
        """;

    private InputException ParseFails(string text) =>
        Assert.Throws<InputException>(() => PlatformManifest.Parse(text, FileName, _dir.Path));

    [Fact]
    public void PlatformManifest_Parse_ReadsEveryField()
    {
        // Given a manifest with relative, pinned and absolute images and a chart directory
        var chart = TestChartBuilder.WriteDirectory(_dir.Path);
        var text = Valid(
            images: $"""
              - name: olm-identity
                tag: "1.260716.1540"
                digest: {Digest64}
              - name: olm-reporting
                digest: {Digest64}
            """,
            charts: """
            charts:
              - path: openlm
            """);

        // When it is parsed
        var manifest = PlatformManifest.Parse(text, FileName, _dir.Path);

        // Then every field is there, relative names resolved under source
        Assert.Equal("openlm-platform", manifest.Name);
        Assert.Equal("1.260810.1250", manifest.Version);
        Assert.Equal("public.ecr.aws/r3q3q2f4", manifest.Source);
        Assert.Equal("linux/amd64", Assert.Single(manifest.Platforms).ToString());
        Assert.Equal(
            [
                "public.ecr.aws/r3q3q2f4/olm-server:1.260716.1540",
                "docker.io/provectuslabs/kafka-ui:v0.7.1",
                $"public.ecr.aws/r3q3q2f4/olm-identity:1.260716.1540@{Digest64}",
                $"public.ecr.aws/r3q3q2f4/olm-reporting@{Digest64}",
            ],
            manifest.Images.Select(i => i.Reference.ToString()));
        Assert.Equal(["server.deployment.image"], manifest.Images[0].ValuesPaths);
        Assert.Equal("olm-server", manifest.Images[0].Name);
        Assert.Null(manifest.Images[1].Name);
        Assert.Equal(8, manifest.Images[0].Line);
        var listed = Assert.Single(manifest.Charts);
        Assert.Equal("openlm", listed.Path);
        Assert.Equal(chart.Path, listed.FullPath);
    }

    [Fact]
    public void PlatformManifest_Load_AcceptsShippedExample()
    {
        // Given the example manifest next to a chart at the path it names
        var example = File.ReadAllText(Path.Combine(RepositoryRoot(), "manifests", "openlm-platform.example.yaml"));
        var manifestPath = _dir.WriteText("openlm-platform.yaml", example);
        TestChartBuilder.WriteTgz(_dir.Combine("charts"), fileName: "openlm_mono-1.260810.1250.tgz");

        // When it is loaded
        var manifest = PlatformManifest.Load(manifestPath);

        // Then it is valid and its chart resolves next to it
        Assert.Equal("1.260810.1250", manifest.Version);
        Assert.Equal(3, manifest.Images.Count);
        Assert.Equal(_dir.Combine("charts", "openlm_mono-1.260810.1250.tgz"), Assert.Single(manifest.Charts).FullPath);
    }

    [Fact]
    public void PlatformManifest_Parse_ReportsBadReferenceWithFileLineAndField()
    {
        // Given the malformed reference from the real chart at images[3]
        var text = Valid(images: """
              - name: olm-identity
                tag: "1.260716.1540"
              - ref: redis:alpine3.17:25.6.17.422
            """);

        // When it is parsed
        var ex = ParseFails(text);

        // Then the message names file, line, field and the reference
        Assert.StartsWith("openlm-platform.yaml:14: images[3].ref: invalid reference 'redis:alpine3.17:25.6.17.422': ", ex.Message, StringComparison.Ordinal);
        Assert.Equal(FailureKind.Usage, ex.Kind);
    }

    [Fact]
    public void PlatformManifest_Parse_ReportsUnknownKey()
    {
        // Given an image entry with a typo
        var text = Valid(images: """
              - name: olm-identity
                tga: "1.260716.1540"
            """);

        // When it is parsed
        var ex = ParseFails(text);

        // Then the unknown key is named with its line
        Assert.Contains("openlm-platform.yaml:13: images[2].tga: unknown field (expected one of: name, ref, tag, digest, values)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PlatformManifest_Parse_ReportsMissingTag()
    {
        // Given a relative name with neither tag nor digest
        var text = Valid(images: """
              - name: olm-identity
                values: [identity.image.*]
            """);

        // When it is parsed
        var ex = ParseFails(text);

        // Then the missing tag is reported at the entry
        Assert.Contains("openlm-platform.yaml:12: images[2].tag: 'olm-identity' needs a 'tag' or a 'digest'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PlatformManifest_Parse_ReportsDuplicateImage()
    {
        // Given the same image once relative and once absolute
        var text = Valid(images: """
              - ref: public.ecr.aws/r3q3q2f4/olm-server:1.260716.1540
            """);

        // When it is parsed
        var ex = ParseFails(text);

        // Then the duplicate names the first occurrence
        Assert.Equal(
            "openlm-platform.yaml:12: images[2]: duplicate image 'public.ecr.aws/r3q3q2f4/olm-server:1.260716.1540' (already listed as images[0] at line 8)",
            ex.Message);
    }

    [Fact]
    public void PlatformManifest_Parse_ReportsDuplicateMappingKey()
    {
        // Given an image entry with tag twice
        var text = Valid(images: """
              - name: olm-identity
                tag: "1"
                tag: "2"
            """);

        // When it is parsed
        var ex = ParseFails(text);

        // Then the second key is reported
        Assert.Equal("openlm-platform.yaml:14: images[2].tag: duplicate key 'tag'", ex.Message);
    }

    [Fact]
    public void PlatformManifest_Parse_ReportsNonexistentChartPath()
    {
        // Given a chart path that does not exist
        var text = Valid(charts: """
            charts:
              - path: charts/missing-1.0.0.tgz
            """);

        // When it is parsed
        var ex = ParseFails(text);

        // Then the path is named with its line
        Assert.StartsWith("openlm-platform.yaml:14: charts[0].path: chart 'charts/missing-1.0.0.tgz' does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PlatformManifest_Parse_CollectsAllErrorsOnePerLine()
    {
        // Given several independent mistakes
        const string text = """
            apiVersion: mirror.openlm.io/v2
            kind: Platform
            version: 1
            source: public.ecr.aws/r3q3q2f4
            platforms: [linux]
            images:
              - name: olm-server
              - ref: nginx
              - name: a
                ref: docker.io/b:1
              - values: x
            extra: true
            """;

        // When it is parsed
        var lines = ParseFails(text).Message.Split('\n');

        // Then every one is reported, in line order
        Assert.Equal(
            [
                "openlm-platform.yaml:1: apiVersion: unsupported apiVersion 'mirror.openlm.io/v2' (expected mirror.openlm.io/v1)",
                "openlm-platform.yaml:1: name: required field is missing",
                "openlm-platform.yaml:5: platforms[0]: invalid platform 'linux': expected os/arch or os/arch/variant, e.g. linux/amd64",
                "openlm-platform.yaml:7: images[0].tag: 'olm-server' needs a 'tag' or a 'digest' (or both, to pin the tag)",
                "openlm-platform.yaml:8: images[1].ref: 'nginx' has no tag or digest; pin a version (':latest' must be written out)",
                "openlm-platform.yaml:9: images[2]: has both 'name' and 'ref'; use exactly one",
                "openlm-platform.yaml:11: images[3].values: expected a sequence of Helm values paths, got a scalar",
                "openlm-platform.yaml:11: images[3]: needs 'name' (relative to source, with tag or digest) or 'ref' (an absolute reference)",
                "openlm-platform.yaml:12: extra: unknown field (expected one of: apiVersion, kind, name, version, source, platforms, images, charts, registryMirrors)",
            ],
            lines);
    }

    [Theory]
    [InlineData("images: {a: 1}", "openlm-platform.yaml:6: images: expected a sequence, got a mapping")]
    [InlineData("images: []\nplatforms: linux/amd64", "openlm-platform.yaml:7: platforms: expected a sequence of os/arch strings, got a scalar")]
    [InlineData("images:\n  - name: [x]\n    tag: \"1\"", "openlm-platform.yaml:7: images[0].name: expected a string, got a sequence")]
    [InlineData("images:\n  - name: x\n    tag: \"-bad\"", "openlm-platform.yaml:8: images[0].tag: tag '-bad' is not valid")]
    [InlineData("images:\n  - name: x\n    digest: sha256:abc", "openlm-platform.yaml:8: images[0].digest: digest 'sha256:abc' must have 64 lowercase hex characters")]
    [InlineData("images:\n  - name: x:1\n    tag: \"1\"", "openlm-platform.yaml:7: images[0].name: 'x:1' must be a repository name without tag or digest")]
    [InlineData("images:\n  - ref: a/b:1\n    tag: \"2\"", "openlm-platform.yaml:8: images[0]: 'tag' and 'digest' go with 'name'")]
    public void PlatformManifest_Parse_ReportsWrongTypesAndValues(string body, string expected)
    {
        // Given a valid header and a broken body
        var text = $"""
            apiVersion: mirror.openlm.io/v1
            kind: Platform
            name: p
            version: "1"
            source: public.ecr.aws/r3q3q2f4
            {body}
            """;

        // When it is parsed
        var ex = ParseFails(text);

        // Then the problem is named
        Assert.StartsWith(expected, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("r3q3q2f4", "must start with a registry host")]
    [InlineData("public.ecr.aws/R3Q", "is not a registry/namespace prefix")]
    [InlineData("public.ecr.aws/r3q3q2f4:1", "is not a registry/namespace prefix")]
    public void PlatformManifest_Parse_RejectsBadSource(string source, string expected)
    {
        // Given a manifest whose source is not registry/namespace
        var text = $"apiVersion: mirror.openlm.io/v1\nkind: Platform\nname: p\nversion: \"1\"\nsource: {source}\nimages: []\n";

        // When it is parsed
        var ex = ParseFails(text);

        // Then source is named
        Assert.StartsWith("openlm-platform.yaml:5: source: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PlatformManifest_Parse_ReportsYamlSyntaxErrorWithLine()
    {
        // Given text that is not YAML
        const string text = "apiVersion: mirror.openlm.io/v1\nkind: Platform\nimages:\n  - name: [unclosed\n";

        // When it is parsed
        var ex = ParseFails(text);

        // Then the message names the file and a line
        Assert.Matches(@"^openlm-platform\.yaml:\d+:\d+: YAML syntax error: ", ex.Message);
    }

    [Fact]
    public void PlatformManifest_Parse_ReportsEmptyFile()
    {
        // Given an empty file
        // When it is parsed
        var ex = ParseFails("# nothing\n");

        // Then it says what is expected
        Assert.StartsWith("openlm-platform.yaml:1: the file is empty", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PlatformManifest_Load_ReportsMissingFile()
    {
        // Given no file
        // When it is loaded
        var ex = Assert.Throws<InputException>(() => PlatformManifest.Load(_dir.Combine("nope.yaml")));

        // Then the path is named
        Assert.Contains("nope.yaml' does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PlatformManifest_Parse_AcceptsDockerHubSourceAndShortNames()
    {
        // Given a Docker Hub namespace as source
        const string text = "apiVersion: mirror.openlm.io/v1\nkind: Platform\nname: p\nversion: \"1\"\nsource: index.docker.io/bitnami\nimages:\n  - name: kafka\n    tag: \"3.9\"\n";

        // When it is parsed
        var manifest = PlatformManifest.Parse(text, FileName, _dir.Path);

        // Then names are normalised
        Assert.Equal("docker.io/bitnami", manifest.Source);
        Assert.Equal("docker.io/bitnami/kafka:3.9", manifest.Images[0].Reference.ToString());
        Assert.Empty(manifest.Platforms);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "OpenLm.Mirror.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root (OpenLm.Mirror.sln) not found above " + AppContext.BaseDirectory);
    }
}
