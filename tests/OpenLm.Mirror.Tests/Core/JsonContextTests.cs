using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Export;
using OpenLm.Mirror.Oci;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

/// <summary>
/// Which resolver supplies the metadata of the library's JSON types: OCI types (every manifest parsed) come from the
/// generated context, not reflection (reflection metadata costs jitted methods and emitted accessors at every start);
/// the bundle's and lock's records stay on reflection, which keeps their property defaults (dotnet/runtime#84484).
/// </summary>
public sealed class JsonContextTests
{
    public static TheoryData<string, Type> OciTypes() => new()
    {
        { "oci", typeof(Descriptor) },
        { "oci", typeof(List<Descriptor>) },
        { "oci", typeof(Dictionary<string, string>) },
        { "oci", typeof(JsonObject) },
        { "bundle", typeof(List<Descriptor>) },
        { "lock", typeof(Descriptor) },
    };

    [Theory]
    [MemberData(nameof(OciTypes))]
    public void JsonContext_Resolver_OciTypeFromGeneratedContext(string resolver, Type type)
    {
        // Given the resolver the library's options use
        var options = new JsonSerializerOptions { TypeInfoResolver = Resolver(resolver) };

        // When the metadata of an OCI type is asked for
        var info = options.GetTypeInfo(type);

        // Then the generated context supplied it (a static initializer that ran before the generated Default was
        // set left the context out of the chain, and every type came from reflection)
        Assert.Same(MirrorJsonContext.Default, info.OriginatingResolver);
    }

    [Fact]
    public void MirrorJsonContext_Resolver_HasNoReflectionFallback()
    {
        // Given the OCI resolver, when a type it does not list is asked for, then there is no metadata: a call site
        // that serializes something unlisted fails in the tests instead of quietly using reflection
        Assert.Null(MirrorJsonContext.Resolver.GetTypeInfo(typeof(Version), new JsonSerializerOptions()));
    }

    [Fact]
    public void BundleFormat_ParseManifest_MissingListsKeepTheirEmptyDefaults()
    {
        // Given a manifest that leaves out its image and chart lists and a base's file list
        var json = "{\"formatVersion\":1,\"base\":{\"bundleDigest\":\"sha256:" + new string('0', 64) + "\"}}";

        // When it is parsed with the bundle's options
        var manifest = BundleFormat.ParseManifest(Encoding.UTF8.GetBytes(json), "test");

        // Then the lists are empty, not null (generated metadata would null them: dotnet/runtime#84484)
        Assert.Empty(manifest.Images);
        Assert.Empty(manifest.Charts);
        Assert.Empty(manifest.Base!.Files);
        Assert.Empty(manifest.Base.Omitted);
    }

    private static System.Text.Json.Serialization.Metadata.IJsonTypeInfoResolver Resolver(string name) => name switch
    {
        "bundle" => BundleJsonContext.Resolver,
        "lock" => ExportJsonContext.Resolver,
        "oci" => MirrorJsonContext.Resolver,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };
}
