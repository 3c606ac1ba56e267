using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Content;

/// <summary>Reads a manifest through a verifying fetch, under the 4 MiB cap.</summary>
public static class ManifestReader
{
    public static async Task<byte[]> ReadBytesAsync(IFetchable source, Descriptor descriptor, string sourceName, CancellationToken cancellationToken)
    {
        if (descriptor.Size > ManifestDocument.MaxManifestBytes)
        {
            throw new InputException($"{sourceName}: manifest {descriptor.Digest} declares {descriptor.Size} bytes, larger than the {ManifestDocument.MaxManifestBytes} byte limit");
        }

        var stream = await source.FetchAsync(descriptor, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            var buffer = new byte[descriptor.Size];
            await stream.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);

            // Reading the end proves size and digest (VerifyingStream checks at end of stream).
            if (await stream.ReadAsync(new byte[1], cancellationToken).ConfigureAwait(false) != 0)
            {
                throw new IntegrityException($"{sourceName}: manifest {descriptor.Digest} is longer than {descriptor.Size} bytes");
            }

            return buffer;
        }
    }

    public static async Task<ManifestDocument> ReadAsync(IFetchable source, Descriptor descriptor, string sourceName, CancellationToken cancellationToken)
    {
        var bytes = await ReadBytesAsync(source, descriptor, sourceName, cancellationToken).ConfigureAwait(false);
        return ManifestDocument.Parse(bytes, descriptor.MediaType, $"{sourceName}@{descriptor.Digest}");
    }
}
