using System.Text.Json.Serialization.Metadata;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// The JSON metadata for <c>openlm-bundle.json</c> and the bundle's <c>index.json</c>: OCI types (descriptor lists)
/// from the generated <see cref="MirrorJsonContext"/>, the bundle's own records by reflection. The bytes written do not
/// depend on which resolver supplies a type's metadata: the options passed in decide the format.
/// </summary>
/// <remarks>
/// The bundle records stay on reflection on purpose: their init-only properties have defaults (<c>= []</c>,
/// <c>= string.Empty</c>) that a source-generated context replaces with null when a property is missing from the
/// document (dotnet/runtime#84484, open), so a hand-made or older manifest would fail with a NullReferenceException
/// instead of the reader's message. Until those properties change shape, reflection keeps them.
/// </remarks>
internal static class BundleJsonContext
{
    public static IJsonTypeInfoResolver Resolver { get; } =
        JsonTypeInfoResolver.Combine(MirrorJsonContext.Default, new DefaultJsonTypeInfoResolver());
}
