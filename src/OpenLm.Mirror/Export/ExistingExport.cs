using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Export;

/// <summary>What an existing file at an export's output path is, compared with the export asked for.</summary>
/// <param name="Head">The verified head when the file is a complete bundle signed by the key; null otherwise.</param>
/// <param name="Difference">Why the file is not this export (null when it is).</param>
public sealed record ExistingExport(BundleHead? Head, long FileBytes, string? Difference)
{
    /// <summary>True when the file is already the export asked for: nothing needs to be written.</summary>
    public bool Matches => Difference is null && Head is not null;

    /// <summary>
    /// Checks whether <paramref name="path"/> is already the bundle of <paramref name="lockFile"/> signed with
    /// <paramref name="key"/>: the whole file verifies (signature with this key, every blob's digest and size, nothing
    /// missing or extra), it is a full bundle (no delta, no part table), and its signed manifest names the lock's release,
    /// source, images at their pinned digests and charts. A rerun of an export that finished can then stop with success
    /// instead of rewriting (or refusing) the file; anything else is a different file.
    /// </summary>
    public static async Task<ExistingExport> CheckAsync(string path, LockFile lockFile, SigningKey key, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(lockFile);
        ArgumentNullException.ThrowIfNull(key);
        var fileBytes = new FileInfo(path).Length;
        BundleReadResult read;
        try
        {
            using var verification = key.GetVerificationKey();
            read = await BundleReader.ReadAsync(path, new BundleReadOptions { Key = verification, RequireSignature = true, SourceName = path }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is MirrorException or IOException or InvalidDataException or System.Security.Cryptography.CryptographicException)
        {
            return new ExistingExport(null, fileBytes, $"it does not verify as a bundle signed by {key.KeyId}: {ex.Message}");
        }

        return new ExistingExport(read.Head, fileBytes, Compare(read.Head.Manifest, lockFile));
    }

    private static string? Compare(BundleManifest manifest, LockFile lockFile)
    {
        if (manifest.Base is not null)
        {
            return "it is a delta bundle";
        }

        if (manifest.Parts is not null)
        {
            return "it is one part of a split bundle";
        }

        if (manifest.Platform.Name != lockFile.Name || manifest.Platform.Version != lockFile.Version)
        {
            return $"it holds {manifest.Platform.Name} {manifest.Platform.Version}, the lock is {lockFile.Name} {lockFile.Version}";
        }

        if (manifest.Source != lockFile.Source)
        {
            return $"its source is {manifest.Source}, the lock's is {lockFile.Source}";
        }

        var bundled = manifest.Images.Select(i => $"{i.Reference}@{i.Digest}").ToHashSet(StringComparer.Ordinal);
        var locked = lockFile.Images.Select(i => $"{i.Reference}@{i.Digest}").ToHashSet(StringComparer.Ordinal);
        if (locked.Except(bundled).FirstOrDefault() is { } notBundled)
        {
            return $"it lacks {notBundled} (or holds another digest of it)";
        }

        if (bundled.Except(locked).FirstOrDefault() is { } notLocked)
        {
            return $"it holds {notLocked}, which the lock does not pin";
        }

        var bundledCharts = manifest.Charts.Select(c => $"{c.Name} {c.Version}").Order(StringComparer.Ordinal);
        var lockedCharts = lockFile.Charts.Select(c => $"{c.Name} {c.Version}").Order(StringComparer.Ordinal);
        return bundledCharts.SequenceEqual(lockedCharts, StringComparer.Ordinal)
            ? null
            : $"its charts ({string.Join(", ", bundledCharts)}) are not the lock's ({string.Join(", ", lockedCharts)})";
    }
}
