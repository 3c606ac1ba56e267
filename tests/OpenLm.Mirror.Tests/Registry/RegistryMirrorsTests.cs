using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.Registry;

public sealed class RegistryMirrorsTests
{
    [Theory]
    [InlineData("public.ecr.aws=mirror.corp:5000/ecr-cache", "public.ecr.aws/r3q3q2f4/olm-server:1.2", "mirror.corp:5000/ecr-cache/r3q3q2f4/olm-server:1.2")]
    [InlineData("public.ecr.aws=mirror.corp:5000", "public.ecr.aws/r3q3q2f4/olm-server:1.2", "mirror.corp:5000/r3q3q2f4/olm-server:1.2")]
    [InlineData("docker.io=harbor.corp/hub-cache", "docker.io/library/redis:7", "harbor.corp/hub-cache/library/redis:7")]
    public void Locate_PrefixesTheRepositoryOnTheMirror(string rule, string reference, string expected)
    {
        var mirrors = RegistryMirrors.Parse([rule], "rule");
        var parsed = Reference.Parse(reference);

        Assert.Equal(expected, mirrors.For(parsed.Registry)!.Locate(parsed).ToString());
        Assert.Null(mirrors.For("quay.io"));
    }

    [Theory]
    [InlineData("public.ecr.aws", "is not SOURCE=MIRROR[/prefix]")]
    [InlineData("=mirror.corp", "is not SOURCE=MIRROR[/prefix]")]
    [InlineData("public.ecr.aws/r3q3q2f4=mirror.corp", "is not a registry host")]
    [InlineData("public.ecr.aws=mirror.corp/Upper Case", "is not a mirror registry")]
    [InlineData("mirror.corp:5000=mirror.corp:5000", "cannot be its own mirror")]
    public void Parse_BadRule_NamesRuleAndSetting(string rule, string expected)
    {
        var ex = Assert.Throws<InputException>(() => RegistryMirrors.Parse([rule], "the rule", Setting.RegistryMirror));

        Assert.Contains($"the rule '{rule}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Equal(Setting.RegistryMirror, ex.Setting);
    }

    [Fact]
    public void Parse_TwoMirrorsForOneSource_Refused()
    {
        var ex = Assert.Throws<InputException>(() => RegistryMirrors.Parse(["public.ecr.aws=a.corp", "public.ecr.aws=b.corp"], "rule"));

        Assert.Contains("already has the mirror public.ecr.aws=a.corp", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WithDefaults_CallerWinsPerSource()
    {
        var merged = RegistryMirrors.Parse(["public.ecr.aws=flag.corp"], "flag")
            .WithDefaults(RegistryMirrors.Parse(["public.ecr.aws=manifest.corp", "quay.io=manifest.corp/quay"], "manifest"));

        Assert.Equal("flag.corp", merged.For("public.ecr.aws")!.Location);
        Assert.Equal("manifest.corp/quay", merged.For("quay.io")!.Location);
    }

    [Fact]
    public void PlatformManifest_RegistryMirrors_ParsedAndBadEntryNamedWithLine()
    {
        const string Head = "apiVersion: mirror.openlm.io/v1\nkind: Platform\nname: p\nversion: \"1\"\nsource: public.ecr.aws/r3q3q2f4\nimages:\n  - name: a\n    tag: \"1\"\n";
        var manifest = PlatformManifest.Parse(Head + "registryMirrors:\n  public.ecr.aws: mirror.corp:5000/ecr-cache\n", "p.yaml", "/tmp");

        Assert.Equal("mirror.corp:5000/ecr-cache", manifest.RegistryMirrors.For("public.ecr.aws")!.Location);

        var ex = Assert.Throws<InputException>(() => PlatformManifest.Parse(Head + "registryMirrors:\n  public.ecr.aws: \"mirror.corp/Bad Prefix\"\n", "p.yaml", "/tmp"));
        Assert.Contains("p.yaml:10: registryMirrors.public.ecr.aws:", ex.Message, StringComparison.Ordinal);
        Assert.Contains("is not a mirror registry", ex.Message, StringComparison.Ordinal);
    }
}
