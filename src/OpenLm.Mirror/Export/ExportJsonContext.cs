using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Export;

/// <summary>
/// Compile-time JSON metadata for the lock file. <see cref="Resolver"/> chains the OCI context and then
/// reflection for anything else; the options passed in, not the resolver, decide the bytes written.
/// </summary>
[JsonSerializable(typeof(LockFile))]
internal sealed partial class ExportJsonContext : JsonSerializerContext
{
    public static IJsonTypeInfoResolver Resolver { get; } =
        JsonTypeInfoResolver.Combine(Default, MirrorJsonContext.Default, new DefaultJsonTypeInfoResolver());
}
