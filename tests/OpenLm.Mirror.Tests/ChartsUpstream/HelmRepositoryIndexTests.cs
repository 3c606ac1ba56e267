using OpenLm.Mirror.Errors;
using OpenLm.Mirror.PlatformSpec.ChartSources;
using Xunit;

namespace OpenLm.Mirror.Tests.ChartsUpstream;

/// <summary>index.yaml as Helm repositories publish it: parsing, selecting an entry, resolving its URL.</summary>
public sealed class HelmRepositoryIndexTests
{
    private const string Hex = "4c2e3f8b5a1d7e9c0b6a2f4d8e1c3b5a7d9f0e2c4b6a8d0f1e3c5b7a9d2f4e6c";
    private const string Source = "https://charts.example.com/openlm/index.yaml";

    // The shape `helm repo index` writes (entries newest first, bare-hex digest, relative urls).
    private static readonly string Index = $"""
        apiVersion: v1
        entries:
          openlm:
          - apiVersion: v2
            appVersion: "1.260810"
            created: "2026-08-10T12:50:00Z"
            digest: {Hex}
            name: openlm
            type: application
            urls:
            - openlm-1.260810.1250.tgz
            version: 1.260810.1250
          - name: openlm
            urls:
            - https://cdn.example.net/charts/openlm-1.260716.1540.tgz
            version: 1.260716.1540
          kafka:
          - name: kafka
            urls: [kafka-31.5.0.tgz]
            version: 31.5.0
        generated: "2026-08-10T12:50:01Z"
        """;

    [Fact]
    public void HelmRepositoryIndex_Select_ReturnsTheExactVersionWithItsDigestAndUrls()
    {
        var index = HelmRepositoryIndex.Parse(Index, Source);

        var entry = index.Select("openlm", "1.260810.1250");

        Assert.Equal("openlm", entry.Name);
        Assert.Equal(["openlm-1.260810.1250.tgz"], entry.Urls);
        Assert.Equal("sha256:" + Hex, entry.Digest?.ToString());
        Assert.Null(index.Select("openlm", "1.260716.1540").Digest);
        Assert.Equal(["kafka", "openlm"], index.ChartNames.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void HelmRepositoryIndex_Select_ToleratesALeadingV()
    {
        var index = HelmRepositoryIndex.Parse(Index, Source);

        Assert.Equal("31.5.0", index.Select("kafka", "v31.5.0").Version);
    }

    [Fact]
    public void HelmRepositoryIndex_Select_UnknownVersion_ListsTheAvailableVersions()
    {
        var index = HelmRepositoryIndex.Parse(Index, Source);

        var ex = Assert.Throws<InputException>(() => index.Select("openlm", "9.9.9"));

        Assert.Equal(FailureKind.Usage, ex.Kind);
        Assert.Contains("chart 'openlm' has no version '9.9.9'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(Source, ex.Message, StringComparison.Ordinal);
        Assert.Contains("available versions: 1.260810.1250, 1.260716.1540", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HelmRepositoryIndex_Select_UnknownChart_ListsTheChartsItHas()
    {
        var index = HelmRepositoryIndex.Parse(Index, Source);

        var ex = Assert.Throws<InputException>(() => index.Select("redis", "1.0.0"));

        Assert.Contains("chart 'redis' is not in the Helm repository index", ex.Message, StringComparison.Ordinal);
        Assert.Contains("it has: kafka, openlm", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HelmRepositoryIndex_Parse_RefusesADocumentWithoutEntries()
    {
        var ex = Assert.Throws<InputException>(() => HelmRepositoryIndex.Parse("<html>not found</html>\n", Source));

        Assert.Contains($"{Source} is not a Helm repository index", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HelmRepositoryIndex_Parse_BadDigest_NamesTheLine()
    {
        var text = """
            apiVersion: v1
            entries:
              openlm:
              - name: openlm
                version: 1.0.0
                digest: not-hex
                urls: [openlm-1.0.0.tgz]
            """;

        var ex = Assert.Throws<InputException>(() => HelmRepositoryIndex.Parse(text, Source));

        Assert.Contains($"{Source}:6: chart 'openlm' 1.0.0: digest 'not-hex' is not a sha256 hex digest", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HelmRepositoryIndex_Parse_AcceptsPrefixedAndUpperCaseDigests()
    {
        var text = $"""
            apiVersion: v1
            entries:
              a:
              - {"{"}name: a, version: 1.0.0, digest: "sha256:{Hex}", urls: [a.tgz]{"}"}
              b:
              - {"{"}name: b, version: 1.0.0, digest: "{Hex.ToUpperInvariant()}", urls: [b.tgz]{"}"}
            """;

        var index = HelmRepositoryIndex.Parse(text, Source);

        Assert.Equal("sha256:" + Hex, index.Select("a", "1.0.0").Digest?.ToString());
        Assert.Equal("sha256:" + Hex, index.Select("b", "1.0.0").Digest?.ToString());
    }

    [Fact]
    public void HelmRepositoryIndex_Select_EntryWithoutUrls_IsRefused()
    {
        var index = HelmRepositoryIndex.Parse("entries:\n  a:\n  - name: a\n    version: 1.0.0\n", Source);

        var ex = Assert.Throws<InputException>(() => index.Select("a", "1.0.0"));

        Assert.Contains("lists no download urls", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("https://charts.example.com/openlm", "openlm-1.0.0.tgz", "https://charts.example.com/openlm/openlm-1.0.0.tgz")]
    [InlineData("https://charts.example.com/openlm/", "openlm-1.0.0.tgz", "https://charts.example.com/openlm/openlm-1.0.0.tgz")]
    [InlineData("https://charts.example.com/openlm", "packages/openlm-1.0.0.tgz", "https://charts.example.com/openlm/packages/openlm-1.0.0.tgz")]
    [InlineData("https://charts.example.com/openlm/stable", "../archive/openlm-1.0.0.tgz", "https://charts.example.com/openlm/archive/openlm-1.0.0.tgz")]
    [InlineData("https://charts.example.com/openlm", "/downloads/openlm-1.0.0.tgz", "https://charts.example.com/downloads/openlm-1.0.0.tgz")]
    [InlineData("https://charts.example.com/openlm", "https://cdn.example.net/c/openlm-1.0.0.tgz", "https://cdn.example.net/c/openlm-1.0.0.tgz")]
    [InlineData("http://127.0.0.1:8080", "openlm-1.0.0.tgz?token=x", "http://127.0.0.1:8080/openlm-1.0.0.tgz?token=x")]
    public void HelmRepositoryIndex_ResolveUrl_IsRelativeToTheRepositoryDirectory(string repository, string url, string expected)
    {
        Assert.Equal(expected, HelmRepositoryIndex.ResolveUrl(new Uri(repository), url).AbsoluteUri);
    }

    [Fact]
    public void HelmRepositoryIndex_ResolveUrl_RefusesOtherSchemes()
    {
        var ex = Assert.Throws<InputException>(() => HelmRepositoryIndex.ResolveUrl(new Uri("https://charts.example.com/"), "file:///etc/passwd"));

        Assert.Contains("neither an http(s) URL nor a path relative to the repository", ex.Message, StringComparison.Ordinal);
    }
}
