using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Copy;

/// <summary>
/// A registry's positive blob HEAD is not always the truth: Nexus has been reported to answer "Layer already exists"
/// and then refuse the manifest with <c>BLOB_UNKNOWN</c> / <c>MANIFEST_BLOB_UNKNOWN</c> for that very blob
/// (sonatype/nexus-public#264). When the manifest PUT says so, the children the copier skipped on the HEAD's word are
/// uploaded after all — each at most once per target, the ones the error names if it names any — and the manifest is
/// sent once more. A second refusal is the registry's answer and is not retried again.
/// </summary>
public sealed partial class GraphCopier
{
    private readonly ConcurrentDictionary<string, Descriptor> _trustedHeads = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _reuploaded = new(StringComparer.Ordinal);

    /// <summary>Digests the copier re-uploaded because the registry's HEAD had claimed them and a manifest PUT then did not find them.</summary>
    public int BlobsReuploaded => _reuploaded.Count;

    /// <summary>Whether <paramref name="error"/> is a registry refusing a manifest over a blob it does not have.</summary>
    internal static bool IsBlobUnknown(RegistryException error) =>
        error.StatusCode is System.Net.HttpStatusCode.BadRequest or System.Net.HttpStatusCode.NotFound
        && (error.HasCode("MANIFEST_BLOB_UNKNOWN") || error.HasCode("BLOB_UNKNOWN"));

    /// <summary>The digests a blob-unknown error names in its message or detail (Distribution puts the digest in <c>detail</c>, Nexus in the message).</summary>
    internal static IReadOnlySet<Digest> NamedDigests(RegistryException error)
    {
        var named = new HashSet<Digest>();
        foreach (var entry in error.Errors)
        {
            foreach (Match match in DigestText().Matches($"{entry.Message} {entry.Detail}"))
            {
                if (Digest.TryParse(match.Value, out var digest))
                {
                    named.Add(digest);
                }
            }
        }

        return named;
    }

    private void TrustedHead(ITarget target, Descriptor blob) => _trustedHeads.TryAdd(Key(target, blob.Digest), blob);

    private async Task PushManifestReuploadingUnknownBlobsAsync(IReadOnlyTarget source, ITarget target, Descriptor descriptor, byte[] bytes, ManifestDocument doc, string image, Stats stats, CancellationToken cancellationToken)
    {
        try
        {
            await PushManifestOnceAsync(target, descriptor, bytes, cancellationToken).ConfigureAwait(false);
            return;
        }
        catch (RegistryException error) when (IsBlobUnknown(error) && Suspects(target, doc, error) is { Count: > 0 } suspects)
        {
            foreach (var blob in suspects)
            {
                _options.Log.Warn($"{target.DisplayName}@{descriptor.Digest}: the registry refused the manifest ({error.Errors[0].Code}) although a HEAD had said {blob.Digest} was stored; uploading that blob after all");
                await ReuploadAsync(source, target, blob, image, stats, cancellationToken).ConfigureAwait(false);
            }
        }

        await PushManifestOnceAsync(target, descriptor, bytes, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The children of <paramref name="doc"/> that were skipped on a HEAD's word and not yet re-uploaded to this target:
    /// those the error names, or all of them when it names none of them. Each is claimed here, so it goes up once.
    /// </summary>
    private List<Descriptor> Suspects(ITarget target, ManifestDocument doc, RegistryException error)
    {
        var trusted = ImageGraph.Dependencies(doc)
            .Where(e => !e.IsManifest && _trustedHeads.ContainsKey(Key(target, e.Descriptor.Digest)))
            .Select(e => e.Descriptor)
            .DistinctBy(d => d.Digest)
            .ToList();
        var named = NamedDigests(error);
        var pick = trusted.Any(d => named.Contains(d.Digest)) ? trusted.Where(d => named.Contains(d.Digest)).ToList() : trusted;
        return pick.Where(d => _reuploaded.TryAdd(Key(target, d.Digest), 0)).ToList();
    }

    private async Task ReuploadAsync(IReadOnlyTarget source, ITarget target, Descriptor blob, string image, Stats stats, CancellationToken cancellationToken)
    {
        if (_orderedSlots is { } ordered)
        {
            await ordered.WaitAsync(string.Empty, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await _blobSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        try
        {
            _options.Observer.BlobStarted(image, blob);
            await _options.Retry.ExecuteAsync(
                async ct => await UploadBlobAsync(source, target, blob, image, stats, ct).ConfigureAwait(false),
                cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref stats.Copied);
            _options.Observer.BlobFinished(image, blob, BlobOutcome.Copied);
        }
        finally
        {
            if (_orderedSlots is { } held)
            {
                held.Release();
            }
            else
            {
                _blobSlots.Release();
            }
        }
    }

    private static string Key(ITarget target, Digest digest) => $"{target.DisplayName}|{digest}";

    [GeneratedRegex("sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}", RegexOptions.CultureInvariant)]
    private static partial Regex DigestText();
}
