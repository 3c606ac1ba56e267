using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// Reads a bundle (plain or zstd-compressed tar) in one forward pass, checking as it goes:
/// the head entries and their order, the signature before anything after it is used, index.json against
/// the signed digest, every blob against the descriptor that references it (size before reading, digest
/// while streaming), and at the end completeness. Nothing is written anywhere; a
/// <see cref="IBundleVisitor"/> receives the content. Tampering and corruption raise
/// <see cref="IntegrityException"/>; input that is not a bundle, or a malformed one, raises <see cref="InputException"/>.
/// </summary>
public static class BundleReader
{
    private const int CopyBufferSize = 1 << 20;

    /// <summary>Opens and reads the bundle file at <paramref name="path"/>.</summary>
    public static async Task<BundleReadResult> ReadAsync(string path, BundleReadOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);

        // A split bundle: every part is checked on its own first (all bad parts named), then the set is read in place.
        if (await BundlePartSet.TryLocateAsync(path, cancellationToken).ConfigureAwait(false) is { } parts)
        {
            await parts.RequireIntactAsync(hashes: !options.HeadOnly, options.Progress, cancellationToken).ConfigureAwait(false);
            var joined = parts.OpenStream();
            await using (joined.ConfigureAwait(false))
            {
                return await ReadAsync(joined, options with { SourceName = options.SourceName ?? path, Progress = options.HeadOnly ? options.Progress : null }, cancellationToken).ConfigureAwait(false);
            }
        }

        var file = OpenFile(path);
        await using (file.ConfigureAwait(false))
        {
            return await ReadAsync(file, options with { SourceName = options.SourceName ?? path }, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Reads a bundle from a stream (not disposed). See the type summary for what is checked.</summary>
    public static async Task<BundleReadResult> ReadAsync(Stream input, BundleReadOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Key is null && options.RequireSignature)
        {
            throw new InputException("a public key is required to verify the bundle signature");
        }

        var source = options.SourceName ?? "bundle";
        var (tarStream, compressed) = await BundleStreams.OpenAsync(input, source, cancellationToken).ConfigureAwait(false);
        try
        {
            var parts = (input as BundlePartsStream)?.Set;
            var pass = new Pass(new TarStreamReader(tarStream, source) { Progress = options.Progress }, options with { AllowParts = options.AllowParts || parts is not null }, source, compressed, parts);
            return await pass.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (compressed)
            {
                await tarStream.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    internal static FileStream OpenFile(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        }
        catch (FileNotFoundException ex)
        {
            throw new InputException($"bundle '{path}' does not exist", ex);
        }
        catch (DirectoryNotFoundException ex)
        {
            throw new InputException($"bundle '{path}' does not exist", ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new InputException(Directory.Exists(path) ? $"'{path}' is a directory, not a bundle file" : $"cannot read bundle '{path}': {ex.Message}", ex);
        }
    }

    /// <summary>State of one read.</summary>
    private sealed class Pass(TarStreamReader tar, BundleReadOptions options, string source, bool compressed, BundlePartSet? parts)
    {
        private readonly Dictionary<Digest, Expected> _expected = [];
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);
        private readonly Dictionary<Digest, ManifestDocument> _documents = [];
        private readonly List<Digest> _roots = [];
        private readonly Dictionary<Digest, BundleOmittedBlob> _omitted = [];
        private long _blobCount;
        private long _blobBytes;

        public async Task<BundleReadResult> RunAsync(CancellationToken ct)
        {
            var head = await ReadHeadAsync(ct).ConfigureAwait(false);
            if (options.Visitor is not null)
            {
                await options.Visitor.OnHeadAsync(head, ct).ConfigureAwait(false);
            }

            if (options.HeadOnly)
            {
                return new BundleReadResult { Head = head, Complete = false };
            }

            while (await NextEntryAsync(ct).ConfigureAwait(false) is { } entry)
            {
                await ReadBlobAsync(entry, ct).ConfigureAwait(false);
            }

            CheckComplete(head.Manifest);
            var result = new BundleReadResult
            {
                Head = head,
                Complete = true,
                BlobCount = _blobCount,
                BlobBytes = _blobBytes,
                OmittedCount = _omitted.Count,
                OmittedBytes = _omitted.Values.Sum(o => o.Size),
                ManifestsChildrenFirst = ChildrenFirst(),
            };
            if (options.Visitor is not null)
            {
                await options.Visitor.OnCompletedAsync(result, ct).ConfigureAwait(false);
            }

            return result;
        }

        private async Task<BundleHead> ReadHeadAsync(CancellationToken ct)
        {
            // 1. oci-layout
            var first = await NextEntryAsync(ct).ConfigureAwait(false)
                ?? throw new InputException($"{source}: not an OpenLM bundle: the tar archive is empty");
            if (first.Name != BundleFormat.OciLayoutEntry)
            {
                throw new InputException($"{source}: not an OpenLM bundle: the first entry is '{first.Name}', expected '{BundleFormat.OciLayoutEntry}'");
            }

            var layout = await ReadSmallAsync(first, BundleFormat.MaxOciLayoutBytes, integrity: false, ct).ConfigureAwait(false);
            CheckOciLayout(layout);

            // 2. openlm-bundle.json
            var second = await NextEntryAsync(ct).ConfigureAwait(false);
            if (second?.Name != BundleFormat.ManifestEntry)
            {
                throw new InputException(second is null
                    ? $"{source}: not an OpenLM bundle: the archive ends after '{BundleFormat.OciLayoutEntry}', expected '{BundleFormat.ManifestEntry}'"
                    : $"{source}: not an OpenLM bundle: the second entry is '{second.Name}', expected '{BundleFormat.ManifestEntry}'"
                      + (second.Name == BundleFormat.IndexEntry ? " (this looks like a plain OCI archive)" : string.Empty));
            }

            var manifestBytes = await ReadSmallAsync(second, BundleFormat.MaxManifestBytes, integrity: false, ct).ConfigureAwait(false);

            // Refuse a newer format before anything else, so the message is about the version, not the signature.
            var version = BundleFormat.PeekFormatVersion(manifestBytes, $"{source}: {BundleFormat.ManifestEntry}");
            if (version > BundleFormat.FormatVersion)
            {
                throw new InputException(
                    $"{source}: bundle format version {version} is newer than this tool supports (version {BundleFormat.FormatVersion}); use a newer openlm-mirror");
            }

            // 3. openlm-bundle.json.sig (or index.json when unsigned)
            var third = await NextEntryAsync(ct).ConfigureAwait(false);
            byte[]? signature = null;
            TarEntryHeader? indexEntry = null;
            if (third?.Name == BundleFormat.SignatureEntry)
            {
                var sigBytes = await ReadSmallAsync(third, BundleFormat.MaxSignatureBytes, integrity: true, ct).ConfigureAwait(false);
                signature = BundleFormat.DecodeSignature(sigBytes, source);
            }
            else if (third?.Name == BundleFormat.IndexEntry)
            {
                indexEntry = third;
            }
            else
            {
                throw new IntegrityException(third is null
                    ? $"{source}: the archive ends after '{BundleFormat.ManifestEntry}'; expected '{BundleFormat.SignatureEntry}' and '{BundleFormat.IndexEntry}'"
                    : $"{source}: the third entry is '{third.Name}', expected '{BundleFormat.SignatureEntry}'");
            }

            var status = CheckSignature(manifestBytes, signature);

            var manifest = BundleFormat.ParseManifest(manifestBytes, $"{source}: {BundleFormat.ManifestEntry}");
            CheckManifestFields(manifest);
            if (signature is not null)
            {
                indexEntry = await NextEntryAsync(ct).ConfigureAwait(false);
            }

            // 4. index.json, pinned by the (now trusted) manifest.
            if (indexEntry?.Name != BundleFormat.IndexEntry)
            {
                throw new IntegrityException(indexEntry is null
                    ? $"{source}: the archive ends after '{BundleFormat.SignatureEntry}'; expected '{BundleFormat.IndexEntry}'"
                    : $"{source}: the fourth entry is '{indexEntry.Name}', expected '{BundleFormat.IndexEntry}'");
            }

            var indexInfo = manifest.Index!;
            var indexDigest = Digest.Parse(indexInfo.Digest, $"{source}: {BundleFormat.ManifestEntry} index.digest");
            if (indexEntry.Size != indexInfo.Size)
            {
                throw new IntegrityException(
                    $"{source}: entry '{BundleFormat.IndexEntry}' is {indexEntry.Size} bytes, but {BundleFormat.ManifestEntry} says {indexInfo.Size}");
            }

            var indexBytes = await ReadSmallAsync(indexEntry, BundleFormat.MaxIndexBytes, integrity: false, ct).ConfigureAwait(false);
            var actualIndexDigest = Digest.Sha256(indexBytes);
            if (actualIndexDigest != indexDigest)
            {
                throw new IntegrityException(
                    $"{source}: entry '{BundleFormat.IndexEntry}' hashes to {actualIndexDigest}, but {BundleFormat.ManifestEntry} says {indexDigest}");
            }

            var images = ReadIndex(indexBytes, manifest);
            return new BundleHead
            {
                Manifest = manifest,
                ManifestBytes = manifestBytes,
                BundleDigest = Digest.Sha256(manifestBytes),
                Signature = status,
                VerifiedKeyId = status == SignatureStatus.Verified ? options.Key!.KeyId : null,
                Images = images,
                IndexBytes = indexBytes,
                Compressed = compressed,
            };
        }

        private void CheckOciLayout(byte[] bytes)
        {
            try
            {
                using var doc = JsonDocument.Parse(bytes);
                if (doc.RootElement.ValueKind == JsonValueKind.Object
                    && doc.RootElement.TryGetProperty("imageLayoutVersion", out var v)
                    && v.ValueKind == JsonValueKind.String
                    && v.GetString() == "1.0.0")
                {
                    return;
                }
            }
            catch (JsonException)
            {
            }

            throw new InputException($"{source}: '{BundleFormat.OciLayoutEntry}' is not {BundleFormat.OciLayoutContent}");
        }

        private SignatureStatus CheckSignature(byte[] manifestBytes, byte[]? signature)
        {
            var key = options.Key;
            if (signature is null)
            {
                if (key is not null || options.RequireSignature)
                {
                    throw new IntegrityException(
                        $"{source}: the bundle is not signed: expected '{BundleFormat.SignatureEntry}' after '{BundleFormat.ManifestEntry}', found '{BundleFormat.IndexEntry}'");
                }

                return SignatureStatus.Absent;
            }

            if (key is null)
            {
                return SignatureStatus.NotChecked;
            }

            if (key.Verify(manifestBytes, signature))
            {
                return SignatureStatus.Verified;
            }

            // The manifest is untrusted here; its signer key id only makes the message more useful.
            var claimed = TryReadSignerKeyId(manifestBytes);
            var hint = claimed is not null && claimed != key.KeyId
                ? $"; {BundleFormat.ManifestEntry} names signer {claimed}, the verification key is {key.KeyId} (signed with another key?)"
                : $"; the verification key is {key.KeyId} ({BundleFormat.ManifestEntry} or the signature was altered)";
            throw new IntegrityException($"{source}: the signature in '{BundleFormat.SignatureEntry}' does not verify{hint}");
        }

        private static string? TryReadSignerKeyId(byte[] bytes)
        {
            try
            {
                using var doc = JsonDocument.Parse(bytes);
                return doc.RootElement.TryGetProperty("signer", out var s)
                    && s.ValueKind == JsonValueKind.Object
                    && s.TryGetProperty("keyId", out var k)
                    && k.ValueKind == JsonValueKind.String
                    ? k.GetString()
                    : null;
            }
            catch (JsonException)
            {
                return null;
            }
        }

        private void CheckManifestFields(BundleManifest manifest)
        {
            var where = $"{source}: {BundleFormat.ManifestEntry}";
            if (manifest.Base is not null)
            {
                ReadOmitted(manifest.Base, where);
            }

            if (manifest.Parts is { } table)
            {
                if (!options.AllowParts)
                {
                    throw new InputException($"{where}: this file is part 1 of a bundle split into {table.Files.Count} parts; give the first part (NAME.001) with the others next to it");
                }

                BundlePartSet.CheckTable(table, where);
                parts?.RequireSame(table);
            }

            if (manifest.Index is null || string.IsNullOrEmpty(manifest.Index.Digest))
            {
                throw new InputException($"{where}: missing index (digest and size of {BundleFormat.IndexEntry})");
            }

            if (manifest.Index.Size < 0)
            {
                throw new InputException($"{where}: index.size is negative");
            }

            if (manifest.Blobs is null || manifest.Blobs.Count < 0 || manifest.Blobs.TotalBytes < 0)
            {
                throw new InputException($"{where}: missing or invalid blobs (count and totalBytes)");
            }
        }

        /// <summary>A delta's signed list of what it leaves out: well-formed, each digest once, each naming one of its bases.</summary>
        private void ReadOmitted(BundleBase delta, string where)
        {
            if (delta.Files.Count == 0)
            {
                throw new InputException($"{where}: base lists no files; a delta bundle names at least one base");
            }

            foreach (var omitted in delta.Omitted)
            {
                if (!Digest.TryParse(omitted.Digest, out var digest) || digest.Algorithm != "sha256")
                {
                    throw new InputException($"{where}: base.omitted lists '{omitted.Digest}', which is not a sha256 digest");
                }

                if (omitted.Size < 0 || omitted.Base < 1 || omitted.Base > delta.Files.Count)
                {
                    throw new InputException($"{where}: base.omitted entry {digest} has size {omitted.Size} and base {omitted.Base}; the size must be at least 0 and the base one of the {delta.Files.Count} base file(s)");
                }

                if (!_omitted.TryAdd(digest, omitted))
                {
                    throw new InputException($"{where}: base.omitted lists {digest} twice");
                }
            }
        }

        private List<Descriptor> ReadIndex(byte[] indexBytes, BundleManifest manifest)
        {
            var where = $"{source}: {BundleFormat.IndexEntry}";
            var doc = ManifestDocument.Parse(indexBytes, MediaTypes.OciIndex, where);
            if (!doc.IsIndex)
            {
                throw new InputException($"{where}: is a {doc.MediaType}, expected an OCI image index");
            }

            var byRef = new Dictionary<string, Descriptor>(StringComparer.Ordinal);
            var i = 0;
            foreach (var d in doc.Manifests)
            {
                var refName = d.RefName;
                if (string.IsNullOrEmpty(refName))
                {
                    throw new InputException($"{where}: manifests[{i}] ({d.Digest}) has no {Descriptor.RefNameAnnotation} annotation");
                }

                if (!byRef.TryAdd(refName, d))
                {
                    throw new InputException($"{where}: ref name '{refName}' appears more than once");
                }

                if (!MediaTypes.IsManifest(d.MediaType))
                {
                    throw new InputException($"{where}: '{refName}' has media type '{d.MediaType}', which is not a manifest or index");
                }

                Expect(d, isManifest: true, $"{BundleFormat.IndexEntry} ('{refName}')");
                if (!_roots.Contains(d.Digest))
                {
                    _roots.Add(d.Digest);
                }

                i++;
            }

            // openlm-bundle.json and index.json must describe the same images.
            var described = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (reference, digest, kind) in manifest.Images.Select(x => (x.Reference, x.Digest, "image"))
                         .Concat(manifest.Charts.Select(x => (x.Reference, x.Digest, "chart"))))
            {
                if (!byRef.TryGetValue(reference, out var d))
                {
                    throw new InputException($"{source}: {BundleFormat.ManifestEntry} lists {kind} '{reference}', which is not in {BundleFormat.IndexEntry}");
                }

                if (d.Digest.ToString() != digest)
                {
                    throw new InputException(
                        $"{source}: {BundleFormat.ManifestEntry} says {kind} '{reference}' is {digest}, but {BundleFormat.IndexEntry} says {d.Digest}");
                }

                described.Add(reference);
            }

            var undescribed = byRef.Keys.FirstOrDefault(r => !described.Contains(r));
            if (undescribed is not null)
            {
                throw new InputException($"{source}: {BundleFormat.IndexEntry} lists '{undescribed}', which {BundleFormat.ManifestEntry} does not describe");
            }

            return doc.Manifests.ToList();
        }

        private async Task ReadBlobAsync(TarEntryHeader entry, CancellationToken ct)
        {
            var name = entry.Name;
            if (!name.StartsWith(BundleFormat.BlobPrefix, StringComparison.Ordinal))
            {
                throw new IntegrityException(name is BundleFormat.OciLayoutEntry or BundleFormat.ManifestEntry or BundleFormat.SignatureEntry or BundleFormat.IndexEntry
                    ? $"{source}: duplicate entry '{name}'"
                    : $"{source}: unexpected entry '{name}' (after {BundleFormat.IndexEntry} only blobs/sha256/<digest> entries may follow)");
            }

            if (!Digest.TryParse("sha256:" + name[BundleFormat.BlobPrefix.Length..], out var digest))
            {
                throw new IntegrityException($"{source}: unexpected entry '{name}': a blob name must be blobs/sha256/ followed by 64 lowercase hex digits");
            }

            if (_omitted.ContainsKey(digest))
            {
                throw new IntegrityException($"{source}: entry '{name}' is in the bundle, but {BundleFormat.ManifestEntry} lists {digest} as omitted (left to the base)");
            }

            if (!_expected.TryGetValue(digest, out var expected))
            {
                throw new IntegrityException(
                    $"{source}: unexpected entry '{name}': nothing read before it references {digest} (every blob must be referenced by {BundleFormat.IndexEntry} or a manifest that precedes it)");
            }

            if (entry.Size != expected.Descriptor.Size)
            {
                throw new IntegrityException(
                    $"{source}: entry '{name}' is {entry.Size} bytes in its tar header, but {expected.ReferencedBy} says {expected.Descriptor.Size} bytes");
            }

            var descriptor = expected.Descriptor;
            var label = $"{source}: entry '{name}'";
            if (expected.IsManifest)
            {
                if (descriptor.Size > ManifestDocument.MaxManifestBytes)
                {
                    throw new InputException(
                        $"{label}: manifest {digest} is {descriptor.Size} bytes, larger than the {ManifestDocument.MaxManifestBytes} byte limit");
                }

                var bytes = new byte[descriptor.Size];
                var verifying = new VerifyingStream(tar.OpenData(), descriptor, label);
                await using (verifying.ConfigureAwait(false))
                {
                    await verifying.ReadExactlyAsync(bytes, ct).ConfigureAwait(false);
                    await verifying.ReadAsync(new byte[1], ct).ConfigureAwait(false);
                    RequireVerified(verifying, label);
                }

                expected.Seen = true;
                var doc = ManifestDocument.Parse(bytes, descriptor.MediaType, label);
                var referrer = $"manifest {digest} (entry '{name}')";
                foreach (var edge in ImageGraph.Dependencies(doc))
                {
                    Expect(edge.Descriptor, edge.IsManifest, referrer);
                }

                _documents[digest] = doc;
                Count(descriptor);
                if (options.Visitor is not null)
                {
                    await options.Visitor.OnManifestAsync(descriptor, bytes, ct).ConfigureAwait(false);
                }

                return;
            }

            if (options.Visitor is IBlobIndexer indexer && !compressed && tar.CanSeek
                && await indexer.ClaimBlobAsync(descriptor, tar.Position, ct).ConfigureAwait(false))
            {
                tar.SeekPastData();
                expected.Seen = true;
                Count(descriptor);
                return;
            }

            var stream = new VerifyingStream(tar.OpenData(), descriptor, label);
            await using (stream.ConfigureAwait(false))
            {
                if (options.Visitor is not null)
                {
                    await options.Visitor.OnBlobAsync(descriptor, stream, ct).ConfigureAwait(false);
                }

                // Whatever the visitor left unread is read here, so the digest is always checked.
                var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
                try
                {
                    while (await stream.ReadAsync(buffer, ct).ConfigureAwait(false) > 0)
                    {
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }

                RequireVerified(stream, label);
            }

            expected.Seen = true;
            Count(descriptor);
        }

        private void Count(Descriptor descriptor)
        {
            _blobCount++;
            _blobBytes += descriptor.Size;
        }

        private static void RequireVerified(VerifyingStream stream, string label)
        {
            if (!stream.Verified)
            {
                throw new IntegrityException($"{label}: content was not fully verified");
            }
        }

        private void Expect(Descriptor d, bool isManifest, string referencedBy)
        {
            if (d.Digest.Algorithm != "sha256")
            {
                throw new InputException($"{source}: {referencedBy} references {d.Digest}; bundles hold sha256 blobs only");
            }

            if (!_expected.TryGetValue(d.Digest, out var known))
            {
                _expected[d.Digest] = new Expected(d, isManifest, referencedBy);
                return;
            }

            if (known.Descriptor.Size != d.Size)
            {
                throw new IntegrityException(
                    $"{source}: {referencedBy} says {d.Digest} is {d.Size} bytes, but {known.ReferencedBy} says {known.Descriptor.Size} bytes");
            }

            if (isManifest && !known.IsManifest)
            {
                if (known.Seen)
                {
                    throw new IntegrityException(
                        $"{source}: {referencedBy} references {d.Digest} as a manifest, but it was already read as a plain blob (manifests must precede other blobs)");
                }

                known.IsManifest = true;
                known.Descriptor = d;
                known.ReferencedBy = referencedBy;
            }
        }

        private void CheckComplete(BundleManifest manifest)
        {
            // A delta's omitted blobs are expected in the target, not here; the signed list must match what is referenced.
            foreach (var (digest, omitted) in _omitted)
            {
                if (!_expected.TryGetValue(digest, out var referenced))
                {
                    throw new IntegrityException($"{source}: {BundleFormat.ManifestEntry} lists {digest} as omitted, but no manifest of the bundle references it");
                }

                if (referenced.IsManifest)
                {
                    throw new IntegrityException($"{source}: {BundleFormat.ManifestEntry} lists manifest {digest} as omitted; a delta omits only configs and layers");
                }

                if (referenced.Descriptor.Size != omitted.Size)
                {
                    throw new IntegrityException(
                        $"{source}: {BundleFormat.ManifestEntry} lists omitted {digest} as {omitted.Size} bytes, but {referenced.ReferencedBy} says {referenced.Descriptor.Size} bytes");
                }
            }

            var missing = _expected.Values.Where(e => !e.Seen && !_omitted.ContainsKey(e.Descriptor.Digest)).ToList();
            if (missing.Count > 0)
            {
                var shown = string.Join("; ", missing.Take(5).Select(m => $"{m.Descriptor.Digest} ({m.Descriptor.Size} bytes, referenced by {m.ReferencedBy})"));
                throw new IntegrityException(
                    $"{source}: the bundle is incomplete: {missing.Count} referenced blob(s) missing: {shown}{(missing.Count > 5 ? "; …" : string.Empty)}");
            }

            var stats = manifest.Blobs!;
            if (stats.Count != _blobCount || stats.TotalBytes != _blobBytes)
            {
                throw new IntegrityException(
                    $"{source}: the bundle holds {_blobCount} blobs ({_blobBytes} bytes), but {BundleFormat.ManifestEntry} says {stats.Count} ({stats.TotalBytes} bytes)");
            }
        }

        private IReadOnlyList<Descriptor> ChildrenFirst() =>
            ImageGraph.ManifestsChildrenFirst(_roots.Select(r => _expected[r].Descriptor), _documents);

        /// <summary>The next entry that matters: regular files only; harmless directories are skipped, everything else refused.</summary>
        private async ValueTask<TarEntryHeader?> NextEntryAsync(CancellationToken ct)
        {
            while (await tar.NextAsync(ct).ConfigureAwait(false) is { } entry)
            {
                CheckName(entry);
                if (entry.IsDirectory)
                {
                    var trimmed = entry.Name.TrimEnd('/');
                    if (trimmed is "blobs" or "blobs/sha256")
                    {
                        continue;
                    }

                    throw new IntegrityException($"{source}: unexpected directory entry '{entry.Name}' (only blobs/ and blobs/sha256/ may appear)");
                }

                if (!entry.IsRegularFile)
                {
                    var target = entry.TypeFlag is (byte)'1' or (byte)'2' ? $" pointing to '{entry.LinkName}'" : string.Empty;
                    throw new IntegrityException($"{source}: entry '{entry.Name}' is a {entry.TypeName}{target}; a bundle holds only regular files");
                }

                if (!_names.Add(entry.Name))
                {
                    throw new IntegrityException($"{source}: duplicate entry '{entry.Name}'");
                }

                return entry;
            }

            return null;
        }

        private void CheckName(TarEntryHeader entry)
        {
            var name = entry.Name;
            if (name.Length == 0)
            {
                throw new IntegrityException($"{source}: a tar entry at offset {entry.Offset} has an empty name");
            }

            if (name[0] == '/' || (name.Length >= 2 && name[1] == ':'))
            {
                throw new IntegrityException($"{source}: entry '{name}' has an absolute path; a bundle holds only relative names");
            }

            if (name.Split('/', '\\').Any(part => part == ".."))
            {
                throw new IntegrityException($"{source}: entry '{name}' contains '..' (path traversal)");
            }

            if (name.Contains('\\') || name.Contains('\0') || name.Any(char.IsControl))
            {
                throw new IntegrityException($"{source}: entry '{name}' has a backslash or control character in its name");
            }
        }

        private async Task<byte[]> ReadSmallAsync(TarEntryHeader entry, int limit, bool integrity, CancellationToken ct)
        {
            if (entry.Size > limit)
            {
                var message = $"{source}: entry '{entry.Name}' is {entry.Size} bytes, larger than the {limit} byte limit";
                throw integrity ? new IntegrityException(message) : new InputException(message);
            }

            var bytes = new byte[entry.Size];
            await tar.OpenData().ReadExactlyAsync(bytes, ct).ConfigureAwait(false);
            return bytes;
        }

        private sealed class Expected(Descriptor descriptor, bool isManifest, string referencedBy)
        {
            public Descriptor Descriptor { get; set; } = descriptor;

            public bool IsManifest { get; set; } = isManifest;

            public string ReferencedBy { get; set; } = referencedBy;

            public bool Seen { get; set; }
        }
    }
}
