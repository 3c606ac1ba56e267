using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// Reads only the head of a bundle (<c>oci-layout</c>, <c>openlm-bundle.json</c>, the signature, <c>index.json</c>)
/// and returns what it says. With a key the signature must verify; without one it is not checked
/// (<see cref="BundleHead.Signature"/> is <see cref="SignatureStatus.NotChecked"/> or <see cref="SignatureStatus.Absent"/>).
/// index.json is always checked against the digest in openlm-bundle.json. Blobs are not read.
/// </summary>
public static class BundleInspector
{
    public static async Task<BundleHead> InspectAsync(string path, VerificationKey? key = null, CancellationToken cancellationToken = default)
    {
        if (await BundlePartSet.TryLocateAsync(path, cancellationToken).ConfigureAwait(false) is { } parts)
        {
            var joined = parts.OpenStream();
            await using (joined.ConfigureAwait(false))
            {
                return await InspectAsync(joined, key, path, cancellationToken).ConfigureAwait(false);
            }
        }

        var file = BundleReader.OpenFile(path);
        await using (file.ConfigureAwait(false))
        {
            return await InspectAsync(file, key, path, cancellationToken).ConfigureAwait(false);
        }
    }

    public static async Task<BundleHead> InspectAsync(Stream stream, VerificationKey? key = null, string? sourceName = null, CancellationToken cancellationToken = default)
    {
        var result = await BundleReader.ReadAsync(
            stream,
            new BundleReadOptions { Key = key, RequireSignature = key is not null, HeadOnly = true, SourceName = sourceName },
            cancellationToken).ConfigureAwait(false);
        return result.Head;
    }
}
