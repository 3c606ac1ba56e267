using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Cli.Output;

/// <summary>
/// The shapes every --json document shares, built in one place so commands cannot drift apart: the release as
/// <c>platform: {name, version}</c>, an OCI platform as <c>{os, architecture, variant}</c>, and
/// <c>signature: {status, keyId}</c>.
/// </summary>
internal static class Vocabulary
{
    public static object Release(BundleProduct product) => new { name = product.Name, version = product.Version };

    public static object ImagePlatform(Platform platform) => new { os = platform.Os, architecture = platform.Architecture, variant = platform.Variant };

    /// <summary><c>verified</c> (with the key that verified it), <c>notChecked</c> or <c>absent</c>.</summary>
    public static object Signature(SignatureStatus status, string? keyId) => new
    {
        status = status switch
        {
            SignatureStatus.Verified => "verified",
            SignatureStatus.NotChecked => "notChecked",
            _ => "absent",
        },
        keyId,
    };

    /// <summary>A bundle this run signed itself (export).</summary>
    public static object Signed(string keyId) => new { status = "signed", keyId };
}
