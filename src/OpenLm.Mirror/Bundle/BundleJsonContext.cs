using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// Compile-time JSON metadata for <c>openlm-bundle.json</c>. <see cref="Resolver"/> chains the OCI context
/// (the bundle's <c>index.json</c> is a descriptor list) and then reflection for anything else. The bytes
/// written do not depend on which resolver supplies a type's metadata: the options passed in decide the format.
/// </summary>
[JsonSerializable(typeof(BundleManifest))]
internal sealed partial class BundleJsonContext : JsonSerializerContext
{
    public static IJsonTypeInfoResolver Resolver { get; } =
        JsonTypeInfoResolver.Combine(Default, MirrorJsonContext.Default, new DefaultJsonTypeInfoResolver());
}
