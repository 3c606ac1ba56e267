using OpenLm.Mirror.Errors;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.Yaml;
using Xunit;

namespace OpenLm.Mirror.Tests.Yaml;

/// <summary>YAML syntax errors name the file, line and column of the fault, and are input errors (exit 2).</summary>
public sealed class YamlErrorPositionTests
{
    private const string FileName = "openlm-platform.yaml";

    [Fact]
    public void YamlTree_Parse_UnclosedFlowSequence_NamesFileLineColumn()
    {
        // Given a flow sequence that is never closed
        const string text = "name: p\nplatforms: [linux/amd64\nimages: []\n";

        // When it is parsed
        var ex = Assert.Throws<YamlTreeException>(() => YamlTree.Parse(text, FileName));

        // Then the error is a syntax error with a position, not an InvalidOperationException leak
        Assert.StartsWith($"{FileName}:", ex.Message, StringComparison.Ordinal);
        Assert.Matches(@"^openlm-platform\.yaml:\d+:\d+: YAML syntax error: ", ex.Message);
        Assert.DoesNotContain("current state of the object", ex.Message, StringComparison.Ordinal);
        Assert.True(ex.Line >= 2, ex.Message);
    }

    [Fact]
    public void YamlTree_Parse_UnclosedFlowSequenceAtEnd_NamesFileLineColumn()
    {
        // Given a flow sequence left open at the end of the file
        const string text = "name: p\nplatforms: [linux/amd64\n";

        // When it is parsed
        var ex = Assert.Throws<YamlTreeException>(() => YamlTree.Parse(text, FileName));

        // Then the error has a line and a column and names the unclosed bracket
        Assert.Matches(@"^openlm-platform\.yaml:\d+:\d+: YAML syntax error: ", ex.Message);
        Assert.DoesNotContain("current state of the object", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void YamlTree_Parse_TabIndentation_PointsAtTheTabLine()
    {
        // Given a mapping whose third line is indented with a tab
        const string text = "name: p\nimages:\n\t- name: a\n";

        // When it is parsed
        var ex = Assert.Throws<YamlTreeException>(() => YamlTree.Parse(text, FileName));

        // Then the error points at line 3 column 1 and says tabs are the cause
        Assert.StartsWith($"{FileName}:3:1: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains("tab", ex.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(3, ex.Line);
    }

    [Fact]
    public void PlatformManifest_Parse_UnclosedBracket_IsAnInputError()
    {
        // Given a platform manifest with an unclosed '['
        const string text = "apiVersion: mirror.openlm.io/v1\nkind: Platform\nplatforms: [linux/amd64\nimages: []\n";

        // When it is parsed
        var ex = Assert.Throws<InputException>(() => PlatformManifest.Parse(text, FileName, Path.GetTempPath()));

        // Then it is an input error (exit 2) with file:line:column
        Assert.Matches(@"^openlm-platform\.yaml:\d+:\d+: ", ex.Message);
        Assert.DoesNotContain("current state of the object", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PlatformManifest_Parse_TabIndentation_IsAnInputErrorAtTheTabLine()
    {
        // Given a platform manifest indented with a tab on line 4
        const string text = "apiVersion: mirror.openlm.io/v1\nkind: Platform\nimages:\n\t- name: a\n";

        // When it is parsed
        var ex = Assert.Throws<InputException>(() => PlatformManifest.Parse(text, FileName, Path.GetTempPath()));

        // Then the message points at line 4
        Assert.StartsWith($"{FileName}:4:1: ", ex.Message, StringComparison.Ordinal);
    }
}
