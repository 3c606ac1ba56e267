using System.Text.Json.Serialization.Metadata;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Export;

/// <summary>
/// The JSON metadata for the lock file: OCI types from the generated <see cref="MirrorJsonContext"/>, the lock's own
/// records by reflection; the options passed in, not the resolver, decide the bytes written.
/// </summary>
/// <remarks>
/// The lock records stay on reflection for the reason given on <see cref="Bundle.BundleJsonContext"/>: their init-only
/// properties have defaults (<c>Charts = []</c>, <c>Blobs = []</c>) that generated metadata would turn into null when a
/// lock leaves them out (dotnet/runtime#84484).
/// </remarks>
internal static class ExportJsonContext
{
    public static IJsonTypeInfoResolver Resolver { get; } =
        JsonTypeInfoResolver.Combine(MirrorJsonContext.Default, new DefaultJsonTypeInfoResolver());
}
