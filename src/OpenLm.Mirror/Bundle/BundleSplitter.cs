using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// <c>split</c> and <c>join</c> for bundles that already exist: the source is opened and every blob verified with the
/// public half of <paramref name="key"/> (the release key that signed it), then written again — in parts, or as one
/// file — with its head re-signed and everything after the signature copied byte for byte. Deterministic: with
/// SOURCE_DATE_EPOCH fixed, splitting the same bundle twice gives the same part table and identical parts after part 1's head.
/// </summary>
public static class BundleSplitter
{
    public static async Task<BundleWriteResult> RewriteAsync(string sourcePath, SigningKey key, string outputPath, long? partSize, bool overwrite, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        using var verification = key.GetVerificationKey();
        var source = await BundleSource.OpenAsync(sourcePath, new BundleOpenOptions { Key = verification }, cancellationToken).ConfigureAwait(false);
        await using (source.ConfigureAwait(false))
        {
            if (partSize is null && source.Head.Manifest.Parts is null)
            {
                throw new InputException($"'{sourcePath}' is already one file; join reads a set of parts (NAME.001)");
            }

            var written = partSize is null ? outputPath : BundlePartSet.PartPath(outputPath, 1);
            if (Path.GetFullPath(written) == Path.GetFullPath(sourcePath))
            {
                throw new InputException($"'{outputPath}' is the bundle being read; write the {(partSize is null ? "joined file" : "parts")} under another name");
            }

            await source.VerifyRemainingAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            return await BundleWriter.RewriteAsync(source, key, outputPath, partSize, overwrite, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }
}
