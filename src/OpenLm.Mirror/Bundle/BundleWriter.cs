using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// Writes a signed bundle from an OCI layout: everything reachable from the layout's index.json, each blob
/// once, streamed from the layout and verified while streamed. The file appears under its final name only
/// when complete (written as <c>&lt;output&gt;.partial-&lt;random&gt;</c>, then renamed).
/// </summary>
public static class BundleWriter
{
    private const int CopyBufferSize = 1 << 20;

    /// <summary>
    /// Writes the bundle. <paramref name="manifest"/> supplies platform, tool, source, and optionally images
    /// (reference + values) and charts (name, version, reference); the writer fills digests, media types,
    /// platforms, sizes, index, blobs, signer and created, and adds any layout image the manifest does not
    /// describe (charts are recognised by their Helm config media type). <paramref name="bytesWritten"/>
    /// receives the number of uncompressed tar bytes written so far.
    /// </summary>
    public static async Task<BundleWriteResult> WriteAsync(
        OciLayoutStore layout,
        BundleManifest manifest,
        SigningKey key,
        string outputPath,
        BundleWriteOptions? options = null,
        IProgress<long>? bytesWritten = null,
        CancellationToken cancellationToken = default) =>
        await WriteAsync(layout, null, manifest, key, outputPath, options, bytesWritten, null, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Writes the bundle of <paramref name="planned"/> (null: the layout's index.json) while <paramref name="gate"/>, when
    /// given, still stores its configs and layers: each is awaited just before it is read, and the file is committed only
    /// once the gate allows it (its work all done). Bytes are the same as a write from the finished layout.
    /// </summary>
    internal static async Task<BundleWriteResult> WriteAsync(
        OciLayoutStore layout,
        BundleGraph? planned,
        BundleManifest manifest,
        SigningKey key,
        string outputPath,
        BundleWriteOptions? options,
        IProgress<long>? bytesWritten,
        BundleWriteGate? gate,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputPath);
        options ??= new BundleWriteOptions();

        if (options.SplitSize is <= 0)
        {
            throw new InputException($"part size {options.SplitSize} is not a positive number of bytes") { Setting = Setting.SplitSize };
        }

        if (options.Delta is { Files.Count: 0 })
        {
            throw new InputException("a delta bundle needs at least one base");
        }

        if (options.Compression == BundleCompression.Zstd && options.ZstdLevel is < 1 or > 19)
        {
            throw new InputException($"zstd level {options.ZstdLevel} is out of range (1-19)");
        }

        var output = Path.GetFullPath(outputPath);
        var directory = Path.GetDirectoryName(output)!;
        if (!Directory.Exists(directory))
        {
            throw new InputException($"directory '{directory}' does not exist");
        }

        if (Directory.Exists(output))
        {
            throw new InputException($"'{outputPath}' is a directory");
        }

        if (File.Exists(output) && !options.Overwrite)
        {
            throw new InputException($"'{outputPath}' already exists; refusing to overwrite it");
        }

        var mtime = options.SourceDateEpoch?.ToUnixTimeSeconds() ?? 0;
        if (mtime is < 0 or > BundleFormat.MaxTarTime)
        {
            throw new InputException($"SOURCE_DATE_EPOCH {mtime} is out of range (0 to {BundleFormat.MaxTarTime})");
        }

        var graph = planned ?? await BundleGraph.LoadAsync(layout, cancellationToken).ConfigureAwait(false);
        var indexBytes = BuildIndex(graph.Roots);
        // A delta leaves out the configs and layers its bases hold; manifests always travel (every tag stays settable).
        var blobs = graph.Configs.Concat(graph.Layers).ToList();
        var omitted = options.Delta is { } delta ? blobs.Where(b => delta.Available.ContainsKey(b.Digest)).ToList() : [];
        if (omitted.Count > 0)
        {
            var left = omitted.Select(o => o.Digest).ToHashSet();
            blobs = blobs.Where(b => !left.Contains(b.Digest)).ToList();
        }

        var completed = await CompleteManifestAsync(layout, graph, manifest, indexBytes, key, options, omitted, gate, cancellationToken).ConfigureAwait(false);
        // Uncompressed, every config and layer entry's data starts on a 4 KiB boundary (see TarHeaders.AlignedRegularFile).
        var body = new BundleBody(layout, graph, indexBytes, blobs, mtime, gate);
        if (options.SplitSize is not null)
        {
            return await WriteSplitAsync(body, completed, key, output, options, bytesWritten, gate, cancellationToken).ConfigureAwait(false);
        }

        var manifestBytes = BundleFormat.SerializeManifest(completed);
        var signatureBytes = BundleFormat.EncodeSignature(key.Sign(manifestBytes));
        var headBytes = HeadLength(manifestBytes.Length);
        var tarBytes = headBytes + body.LengthAt(headBytes);
        gate?.Sized?.Invoke(tarBytes);

        var temp = $"{output}.partial-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}";
        try
        {
            var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await using (file.ConfigureAwait(false))
            {
                // zstd: the seekable format, a new frame at every tar entry (see SeekableZstdWriter).
                var zstd = options.Compression == BundleCompression.Zstd ? new SeekableZstdWriter(file, options.ZstdLevel) : null;
                try
                {
                    var sink = new TarSink(zstd is null ? file : zstd, zstd, mtime, bytesWritten)
                    {
                        Files = zstd is null ? new FileStreamRangeTarget(file) : null,
                        Writeback = new IncrementalWriteback(file.SafeFileHandle),
                    };
                    await sink.WriteHeadAsync(manifestBytes, signatureBytes, cancellationToken).ConfigureAwait(false);

                    await body.WriteAsync(sink, cancellationToken).ConfigureAwait(false);
                    if (sink.Written != tarBytes)
                    {
                        throw new InvalidOperationException($"bundle writer wrote {sink.Written} tar bytes, expected {tarBytes}");
                    }

                    if (zstd is not null)
                    {
                        // Ends the last frame and appends the seek table.
                        await zstd.FinishAsync(cancellationToken).ConfigureAwait(false);
                    }
                }
                finally
                {
                    // Frees the compressor only; on failure the partial file is deleted below.
                    zstd?.Dispose();
                }

                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }

            if (gate is not null)
            {
                // Not committed before the gate's work (the rest of the pull) is done: a failed export leaves no bundle.
                await gate.BeforeCommit(cancellationToken).ConfigureAwait(false);
            }

            var fileBytes = new FileInfo(temp).Length;
            try
            {
                File.Move(temp, output, overwrite: options.Overwrite);
            }
            catch (IOException ex) when (!options.Overwrite && File.Exists(output))
            {
                throw new InputException($"'{outputPath}' already exists; refusing to overwrite it", ex);
            }

            return new BundleWriteResult
            {
                OutputPath = output,
                Manifest = completed,
                BundleDigest = Digest.Sha256(manifestBytes),
                TarBytes = tarBytes,
                FileBytes = fileBytes,
            };
        }
        catch (IOException ex) when (ex is not EndOfStreamException)
        {
            throw new OperationException($"cannot write bundle '{outputPath}': {ex.Message}", ex);
        }
        finally
        {
            TryDelete(temp);
        }
    }

    internal static string BlobName(Digest digest) => BundleFormat.BlobPrefix + digest.Hex;

    /// <summary>
    /// Writes an existing bundle again as part files (<paramref name="partSize"/> set: <c>split</c>) or as one file
    /// (<paramref name="partSize"/> null: <c>join</c>), re-signed with <paramref name="key"/>: the head is the source's
    /// <c>openlm-bundle.json</c> with only <c>parts</c> changed, and everything after the signature is copied byte for
    /// byte. The source must be fully verified first (the caller opens it with the release key and verifies every blob).
    /// </summary>
    public static async Task<BundleWriteResult> RewriteAsync(BundleSource source, SigningKey key, string outputPath, long? partSize, bool overwrite, IProgress<long>? bytesWritten = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(key);
        var output = Path.GetFullPath(outputPath);
        var head = source.Head;
        var tar = source.OpenTar();
        await using (tar.ConfigureAwait(false))
        {
            // A bundle written with a padded head, or one from before the padding.
            var bodyOffset = HeadLength(head.ManifestBytes.Length);
            if (!await StartsWithIndexEntryAsync(tar, bodyOffset, cancellationToken).ConfigureAwait(false))
            {
                bodyOffset = UnpaddedHeadLength(head.ManifestBytes.Length);
            }

            if (!await StartsWithIndexEntryAsync(tar, bodyOffset, cancellationToken).ConfigureAwait(false))
            {
                throw new InputException($"{source.DisplayName}: the tar was rewritten by another tool (no '{BundleFormat.IndexEntry}' header right after the signature entry); export the release again to write it in parts");
            }

            tar.Seek(bodyOffset, SeekOrigin.Begin);
            var body = new CopiedBody(tar, tar.Length - bodyOffset, TarHeaders.EntryLength(BundleFormat.IndexEntry, head.IndexBytes.Length), BundleFormat.SourceDateEpochFromEnvironment()?.ToUnixTimeSeconds() ?? 0);
            var manifest = head.Manifest with { Parts = null, Signer = new BundleSigner { KeyId = key.KeyId } };
            var options = new BundleWriteOptions { SplitSize = partSize, Overwrite = overwrite };
            if (partSize is not null)
            {
                return await WriteSplitAsync(body, manifest, key, output, options, bytesWritten, null, cancellationToken).ConfigureAwait(false);
            }

            if (File.Exists(output) && !overwrite)
            {
                throw new InputException($"'{outputPath}' already exists; refusing to overwrite it") { Remedy = Remedy.Overwrite, Subject = outputPath };
            }

            var manifestBytes = BundleFormat.SerializeManifest(manifest);
            var temp = $"{output}.partial-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}";
            try
            {
                var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                await using (file.ConfigureAwait(false))
                {
                    var sink = new TarSink(file, null, body.Mtime, bytesWritten) { Writeback = new IncrementalWriteback(file.SafeFileHandle) };
                    await sink.WriteHeadAsync(manifestBytes, BundleFormat.EncodeSignature(key.Sign(manifestBytes)), cancellationToken).ConfigureAwait(false);

                    await body.WriteAsync(sink, cancellationToken).ConfigureAwait(false);
                    await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                    file.Flush(flushToDisk: true);
                }

                File.Move(temp, output, overwrite);
                var length = new FileInfo(output).Length;
                return new BundleWriteResult { OutputPath = output, Manifest = manifest, BundleDigest = Digest.Sha256(manifestBytes), TarBytes = length, FileBytes = length };
            }
            finally
            {
                TryDelete(temp);
            }
        }
    }

    private static async Task<bool> StartsWithIndexEntryAsync(Stream tar, long offset, CancellationToken ct)
    {
        if (offset + TarHeaders.BlockSize > tar.Length)
        {
            return false;
        }

        tar.Seek(offset, SeekOrigin.Begin);
        var header = new byte[TarHeaders.BlockSize];
        await tar.ReadExactlyAsync(header, ct).ConfigureAwait(false);
        return System.Text.Encoding.ASCII.GetString(header, 0, 100).TrimEnd('\0') == BundleFormat.IndexEntry;
    }

    /// <summary>The body of an existing, verified bundle, copied unchanged.</summary>
    private sealed class CopiedBody(Stream tar, long length, long indexEntryLength, long mtime) : IBundleBody
    {
        public long Mtime => mtime;

        public long IndexEntryLength => indexEntryLength;

        // Copied byte for byte after a head that also ends on a 4 KiB boundary: aligned data stays aligned (a body from a
        // bundle written before heads were padded stays valid tar, its data as unaligned as it was).
        public long LengthAt(long start) => length;

        public Task WriteAsync(TarSink sink, CancellationToken ct) => sink.WriteRawAsync(tar, length, ct);
    }

    /// <summary>Where the signature entry's data starts, past a 4 KiB boundary: its one block then ends the head on one.</summary>
    private const int SignatureResidue = TarHeaders.DataAlignment - TarHeaders.BlockSize;

    /// <summary>Configs and layers of at least this size get aligned data; smaller ones are not worth up to 4 KiB of padding.</summary>
    internal const long AlignmentThreshold = 1 << 20;

    /// <summary>
    /// Length of the head entries for a manifest of <paramref name="manifestLength"/> bytes (a signature entry is always
    /// one block of data). The signature entry is padded (a pax comment) so the head ends on a 4 KiB boundary: the body,
    /// and so every aligned blob in it, then has the same bytes whatever the head holds (a part table or not).
    /// </summary>
    private static long HeadLength(int manifestLength)
    {
        var beforeSignature = TarHeaders.EntryLength(BundleFormat.OciLayoutEntry, BundleFormat.OciLayoutContent.Length)
            + TarHeaders.EntryLength(BundleFormat.ManifestEntry, manifestLength);
        return beforeSignature + TarHeaders.AlignedEntryLength(beforeSignature, TarHeaders.BlockSize, SignatureResidue);
    }

    /// <summary>The head as bundles written before the 4 KiB alignment have it (no padding): where such a bundle's body starts.</summary>
    private static long UnpaddedHeadLength(int manifestLength) =>
        TarHeaders.EntryLength(BundleFormat.OciLayoutEntry, BundleFormat.OciLayoutContent.Length)
        + TarHeaders.EntryLength(BundleFormat.ManifestEntry, manifestLength)
        + TarHeaders.EntryLength(BundleFormat.SignatureEntry, TarHeaders.BlockSize);

    /// <summary>
    /// Writes the bundle as part files. The part table goes into the signed head, so its layout is fixed first: a head
    /// with placeholder hashes (hashes are fixed-width, so the head's length is final) decides where the body starts and
    /// so every part's range. The body is then streamed into the parts, each hashed as written (part 1 from the body on),
    /// and the real head (table with hashes, signed) is written over part 1's first bytes, which no hash covers.
    /// </summary>
    private static async Task<BundleWriteResult> WriteSplitAsync(
        IBundleBody body, BundleManifest completed, SigningKey key, string output, BundleWriteOptions options, IProgress<long>? bytesWritten, BundleWriteGate? gate, CancellationToken ct)
    {
        var partSize = options.SplitSize!.Value;
        if (options.Compression != BundleCompression.None)
        {
            throw new InputException("split parts are cut from an uncompressed bundle (layers are already compressed); write it without compression") { Setting = Setting.Compression };
        }

        var placeholder = "sha256:" + new string('0', 64);
        BundleManifest Planned(long total, long bodyOffset) => completed with
        {
            Parts = new BundleParts
            {
                PartSize = partSize,
                TotalBytes = total,
                BodyOffset = bodyOffset,
                Files = Enumerable.Range(0, (int)((total + partSize - 1) / partSize))
                    .Select(i => new BundlePart { Index = i + 1, Offset = i * partSize, Size = Math.Min(partSize, total - (i * partSize)), Sha256 = placeholder })
                    .ToList(),
            },
        };

        // The head's length depends on the table's numbers, which depend on the total: settle it (a few rounds at most).
        var headLength = HeadLength(BundleFormat.SerializeManifest(completed).Length);
        BundleManifest planned;
        for (var round = 0; ; round++)
        {
            planned = Planned(headLength + body.LengthAt(headLength), headLength);
            var next = HeadLength(BundleFormat.SerializeManifest(planned).Length);
            if (next == headLength)
            {
                break;
            }

            if (round > 8)
            {
                throw new InvalidOperationException("the split bundle's head length does not settle");
            }

            headLength = next;
        }

        var table = planned.Parts!;
        if (table.Files[0].Size < headLength + body.IndexEntryLength)
        {
            throw new InputException($"part size {partSize} bytes is too small: part 1 must hold the bundle head and index.json ({headLength + body.IndexEntryLength} bytes)") { Setting = Setting.SplitSize };
        }

        gate?.Sized?.Invoke(table.TotalBytes);

        for (var i = 1; i <= table.Files.Count + 1; i++)
        {
            if (i <= table.Files.Count && File.Exists(BundlePartSet.PartPath(output, i)) && !options.Overwrite)
            {
                throw new InputException($"'{BundlePartSet.PartPath(output, i)}' already exists; refusing to overwrite it") { Remedy = Remedy.Overwrite, Subject = BundlePartSet.PartPath(output, i) };
            }
        }

        try
        {
            using var parts = new BundlePartWriter(output, table.Files, headLength);
            var sink = new TarSink(parts, null, body.Mtime, bytesWritten) { Files = parts };
            var provisional = BundleFormat.SerializeManifest(planned);
            await sink.WriteHeadAsync(provisional, BundleFormat.EncodeSignature(key.Sign(provisional)), ct).ConfigureAwait(false);

            await body.WriteAsync(sink, ct).ConfigureAwait(false);
            var final = planned with { Parts = table with { Files = await parts.CompletedAsync().ConfigureAwait(false) } };
            var manifestBytes = BundleFormat.SerializeManifest(final);
            var headBytes = new MemoryStream();
            var headSink = new TarSink(headBytes, null, body.Mtime, null);
            await headSink.WriteHeadAsync(manifestBytes, BundleFormat.EncodeSignature(key.Sign(manifestBytes)), ct).ConfigureAwait(false);

            await parts.RewriteHeadAsync(headBytes.ToArray(), ct).ConfigureAwait(false);
            if (gate is not null)
            {
                await gate.BeforeCommit(ct).ConfigureAwait(false);
            }

            var files = parts.Commit(options.Overwrite);
            return new BundleWriteResult
            {
                OutputPath = files[0],
                Manifest = final,
                BundleDigest = Digest.Sha256(manifestBytes),
                TarBytes = table.TotalBytes,
                FileBytes = table.TotalBytes,
                PartPaths = files,
            };
        }
        catch (IOException ex) when (ex is not EndOfStreamException)
        {
            throw new OperationException($"cannot write the parts of bundle '{output}': {ex.Message}", ex);
        }
    }

    /// <summary>Everything after the signature entry, as the writer streams it.</summary>
    private interface IBundleBody
    {
        long Mtime { get; }

        long IndexEntryLength { get; }

        /// <summary>Bytes of the body when it starts at tar offset <paramref name="start"/> (aligned entries depend on where they fall).</summary>
        long LengthAt(long start);

        Task WriteAsync(TarSink sink, CancellationToken ct);
    }

    /// <summary>
    /// Everything after the signature entry: index.json, manifests parents first, configs and layers, the end-of-archive
    /// marker. Config and layer data of <see cref="AlignmentThreshold"/> bytes or more start on <see cref="TarHeaders.DataAlignment"/>
    /// boundaries (the body itself starts on one). Where the sink takes file ranges, each config and layer goes from the cache's file to the bundle in the
    /// kernel: a blob this layout instance verified as it pulled it is not hashed again; any other (kept from an earlier
    /// run) is hashed from its file while it is copied, and a mismatch fails the write before anything is committed.
    /// </summary>
    private sealed class BundleBody(OciLayoutStore layout, BundleGraph graph, byte[] indexBytes, IReadOnlyList<Descriptor> blobs, long mtime, BundleWriteGate? gate) : IBundleBody
    {
        public long Mtime => mtime;

        public long IndexEntryLength => TarHeaders.EntryLength(BundleFormat.IndexEntry, indexBytes.Length);

        public long LengthAt(long start)
        {
            var offset = start + IndexEntryLength + graph.Manifests.Sum(m => TarHeaders.EntryLength(BlobName(m.Descriptor.Digest), m.Descriptor.Size));
            foreach (var blob in blobs)
            {
                offset += Aligned(blob) ? TarHeaders.AlignedEntryLength(offset, blob.Size) : TarHeaders.EntryLength(BlobName(blob.Digest), blob.Size);
            }

            return offset + TarHeaders.EndOfArchive.Length - start;
        }

        public async Task WriteAsync(TarSink sink, CancellationToken ct)
        {
            await sink.WriteBytesAsync(BundleFormat.IndexEntry, indexBytes, ct).ConfigureAwait(false);
            foreach (var (descriptor, bytes) in graph.Manifests)
            {
                await sink.WriteBytesAsync(BlobName(descriptor.Digest), bytes, ct).ConfigureAwait(false);
            }

            foreach (var blob in blobs)
            {
                if (gate is not null)
                {
                    // Stored (and so verified) by the pull running alongside, or found already stored.
                    await gate.BlobStored(blob, ct).ConfigureAwait(false);
                }

                if (sink.Files is not null)
                {
                    using var file = layout.OpenBlobFile(blob);
                    var check = layout.VerifiedByThisInstance(blob) ? null : Task.Run(() => VerifyFile(file, blob, layout.DisplayName), ct);
                    try
                    {
                        await sink.CopyFileAsync(BlobName(blob.Digest), blob, file, Aligned(blob), layout.DisplayName, ct).ConfigureAwait(false);
                    }
                    finally
                    {
                        if (check is not null)
                        {
                            await check.ConfigureAwait(false);
                        }
                    }

                    continue;
                }

                var source = await layout.FetchAsync(blob, ct).ConfigureAwait(false);
                await using (source.ConfigureAwait(false))
                {
                    await sink.WriteStreamAsync(BlobName(blob.Digest), blob, source, layout.DisplayName, Aligned(blob), ct).ConfigureAwait(false);
                }
            }

            await sink.FinishAsync(ct).ConfigureAwait(false);
        }

        private static bool Aligned(Descriptor blob) => blob.Size >= AlignmentThreshold;

        /// <summary>Hashes a stored blob's file (size and digest) as the verifying stream would, reading it positionally.</summary>
        private static void VerifyFile(Microsoft.Win32.SafeHandles.SafeFileHandle file, Descriptor blob, string sourceName)
        {
            var length = RandomAccess.GetLength(file);
            if (length != blob.Size)
            {
                throw new IntegrityException($"{sourceName}: blob {blob.Digest} is {length} bytes, but {blob.Size} are declared");
            }

            using var hash = IncrementalHash.CreateHash(blob.Digest.HashAlgorithm);
            var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
            try
            {
                for (long at = 0; at < length;)
                {
                    var n = RandomAccess.Read(file, buffer.AsSpan(0, (int)Math.Min(CopyBufferSize, length - at)), at);
                    if (n == 0)
                    {
                        throw new IntegrityException($"{sourceName}: blob {blob.Digest} ended after {at} of {blob.Size} bytes");
                    }

                    hash.AppendData(buffer, 0, n);
                    at += n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (actual != blob.Digest.Hex)
            {
                throw new IntegrityException($"{sourceName} blob {blob.Digest}: digest mismatch: expected {blob.Digest}, content hashes to {blob.Digest.Algorithm}:{actual} (the stored file is damaged: delete it and export again)");
            }
        }
    }

    /// <summary>index.json of the bundle: one descriptor per image, sorted by ref name; only the ref name annotation is kept.</summary>
    internal static byte[] BuildIndex(IReadOnlyList<Descriptor> roots)
    {
        var entries = roots
            .OrderBy(r => r.RefName, StringComparer.Ordinal)
            .Select(r => new Descriptor
            {
                MediaType = r.MediaType,
                Digest = r.Digest,
                Size = r.Size,
                Platform = r.Platform,
                ArtifactType = r.ArtifactType,
            }.WithRefName(r.RefName!))
            .ToList();
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.OciIndex,
            ["manifests"] = JsonSerializer.SerializeToNode(entries, BundleFormat.JsonOptions),
        };
        var json = JsonSerializer.SerializeToUtf8Bytes(index, BundleFormat.JsonOptions);
        return [.. json, (byte)'\n'];
    }

    private static async Task<BundleManifest> CompleteManifestAsync(
        OciLayoutStore layout,
        BundleGraph graph,
        BundleManifest manifest,
        byte[] indexBytes,
        SigningKey key,
        BundleWriteOptions options,
        IReadOnlyList<Descriptor> omitted,
        BundleWriteGate? gate,
        CancellationToken ct)
    {
        var roots = graph.Roots.ToDictionary(r => r.RefName!, StringComparer.Ordinal);
        var described = new HashSet<string>(StringComparer.Ordinal);
        var images = new List<BundleImage>();
        var charts = new List<BundleChart>();

        foreach (var image in manifest.Images)
        {
            if (!described.Add(image.Reference))
            {
                throw new InputException($"the bundle manifest lists '{image.Reference}' twice");
            }

            if (!roots.TryGetValue(image.Reference, out var root))
            {
                throw new InputException($"image '{image.Reference}' is not in {layout.DisplayName} (no index.json entry with that ref name)");
            }

            images.Add(await DescribeImageAsync(layout, graph, root, image.Values, gate, ct).ConfigureAwait(false));
        }

        foreach (var chart in manifest.Charts)
        {
            if (!described.Add(chart.Reference))
            {
                throw new InputException($"the bundle manifest lists '{chart.Reference}' twice");
            }

            if (!roots.TryGetValue(chart.Reference, out var root))
            {
                throw new InputException($"chart '{chart.Reference}' is not in {layout.DisplayName} (no index.json entry with that ref name)");
            }

            var info = await ReadChartInfoAsync(layout, graph, root, gate, ct).ConfigureAwait(false);
            charts.Add(chart with
            {
                Name = string.IsNullOrEmpty(chart.Name) ? info?.Name ?? string.Empty : chart.Name,
                Version = string.IsNullOrEmpty(chart.Version) ? info?.Version ?? string.Empty : chart.Version,
                Digest = root.Digest.ToString(),
            });
        }

        // Layout entries the caller did not describe: charts by their config media type, the rest as images.
        foreach (var root in graph.Roots.Where(r => !described.Contains(r.RefName!)))
        {
            var info = await ReadChartInfoAsync(layout, graph, root, gate, ct).ConfigureAwait(false);
            if (info is not null)
            {
                charts.Add(new BundleChart { Name = info.Value.Name, Version = info.Value.Version, Reference = root.RefName!, Digest = root.Digest.ToString() });
            }
            else
            {
                images.Add(await DescribeImageAsync(layout, graph, root, [], gate, ct).ConfigureAwait(false));
            }
        }

        var created = options.SourceDateEpoch ?? manifest.Created ?? DateTimeOffset.UtcNow;
        created = DateTimeOffset.FromUnixTimeSeconds(created.ToUnixTimeSeconds());
        return manifest with
        {
            FormatVersion = BundleFormat.FormatVersion,
            Created = created,
            Images = images.OrderBy(i => i.Reference, StringComparer.Ordinal).ToList(),
            Charts = charts.OrderBy(c => c.Reference, StringComparer.Ordinal).ToList(),
            Index = new BundleIndexInfo { Digest = Digest.Sha256(indexBytes).ToString(), Size = indexBytes.Length },
            Blobs = new BundleBlobStats { Count = graph.Count - omitted.Count, TotalBytes = graph.TotalBytes - omitted.Sum(o => o.Size) },
            Signer = new BundleSigner { KeyId = key.KeyId },
            Base = options.Delta is { } delta
                ? new BundleBase
                {
                    Files = delta.Files,
                    Omitted = omitted
                        .OrderBy(o => o.Digest.ToString(), StringComparer.Ordinal)
                        .Select(o => new BundleOmittedBlob { Digest = o.Digest.ToString(), Size = o.Size, Base = delta.Available[o.Digest] })
                        .ToList(),
                }
                : null,
            Parts = null,
        };
    }

    private static async Task<BundleImage> DescribeImageAsync(
        OciLayoutStore layout, BundleGraph graph, Descriptor root, IReadOnlyList<string> values, BundleWriteGate? gate, CancellationToken ct) =>
        new()
        {
            Reference = root.RefName!,
            Digest = root.Digest.ToString(),
            MediaType = root.MediaType,
            Platforms = await graph.PlatformsAsync(layout, root, gate is null ? null : gate.BlobStored, ct).ConfigureAwait(false),
            Size = graph.Reachable(root).Values.Sum(),
            Values = values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
        };

    /// <summary>Name and version from a Helm chart artifact's config; null when the root is not a chart.</summary>
    private static async Task<(string Name, string Version)?> ReadChartInfoAsync(OciLayoutStore layout, BundleGraph graph, Descriptor root, BundleWriteGate? gate, CancellationToken ct)
    {
        var config = graph.Documents[root.Digest].Config;
        if (config?.MediaType != MediaTypes.HelmConfig)
        {
            return null;
        }

        if (gate is not null)
        {
            await gate.BlobStored(config, ct).ConfigureAwait(false);
        }

        var bytes = await ManifestReader.ReadBytesAsync(layout, config, layout.DisplayName, ct).ConfigureAwait(false);
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var name = doc.RootElement.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
            var version = doc.RootElement.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            return (name ?? string.Empty, version ?? string.Empty);
        }
        catch (JsonException ex)
        {
            throw new InputException($"{layout.DisplayName}: Helm chart config {config.Digest} of '{root.RefName}' is not valid JSON: {ex.Message}", ex);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>
    /// Writes tar entries and counts uncompressed bytes. With <paramref name="frames"/> (the seekable zstd
    /// writer, also <paramref name="stream"/>), every entry header and the end-of-archive marker start a new
    /// zstd frame.
    /// </summary>
    private sealed class TarSink(Stream stream, SeekableZstdWriter? frames, long mtime, IProgress<long>? progress)
    {
        private static readonly byte[] Zeros = new byte[TarHeaders.BlockSize];

        public long Written { get; private set; }

        /// <summary>The output, when blob data can be copied into it from files (uncompressed only).</summary>
        public IFileRangeTarget? Files { get; init; }

        /// <summary>Writeback of the output file started as it grows, so the closing fsync waits for the tail only.</summary>
        public IncrementalWriteback? Writeback { get; init; }

        /// <summary>The three head entries before <c>index.json</c>; the signature entry is padded so the head ends on a 4 KiB boundary.</summary>
        public async Task WriteHeadAsync(byte[] manifestBytes, byte[] signatureBytes, CancellationToken ct)
        {
            await WriteBytesAsync(BundleFormat.OciLayoutEntry, System.Text.Encoding.ASCII.GetBytes(BundleFormat.OciLayoutContent), ct).ConfigureAwait(false);
            await WriteBytesAsync(BundleFormat.ManifestEntry, manifestBytes, ct).ConfigureAwait(false);
            if (signatureBytes.Length is 0 or > TarHeaders.BlockSize)
            {
                throw new InvalidOperationException($"a bundle signature fits one {TarHeaders.BlockSize}-byte block; this one is {signatureBytes.Length} bytes");
            }

            await StartEntryAsync(ct).ConfigureAwait(false);
            await WriteAsync(TarHeaders.AlignedRegularFile(BundleFormat.SignatureEntry, signatureBytes.Length, mtime, Written, SignatureResidue), ct).ConfigureAwait(false);
            await WriteAsync(signatureBytes, ct).ConfigureAwait(false);
            await PadAsync(signatureBytes.Length, ct).ConfigureAwait(false);
            progress?.Report(Written);
        }

        public async Task WriteBytesAsync(string name, byte[] bytes, CancellationToken ct)
        {
            await StartEntryAsync(ct).ConfigureAwait(false);
            await WriteAsync(TarHeaders.RegularFile(name, bytes.Length, mtime), ct).ConfigureAwait(false);
            await WriteAsync(bytes, ct).ConfigureAwait(false);
            await PadAsync(bytes.Length, ct).ConfigureAwait(false);
            progress?.Report(Written);
        }

        public async Task WriteStreamAsync(string name, Descriptor descriptor, Stream source, string sourceName, bool aligned, CancellationToken ct)
        {
            await StartEntryAsync(ct).ConfigureAwait(false);
            await WriteAsync(Header(name, descriptor.Size, aligned), ct).ConfigureAwait(false);
            var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
            try
            {
                long copied = 0;
                int n;

                // Read to the end (0) so the verifying stream checks size and digest before the entry is finished.
                while ((n = await source.ReadAsync(buffer.AsMemory(0, CopyBufferSize), ct).ConfigureAwait(false)) > 0)
                {
                    copied += n;
                    if (copied > descriptor.Size)
                    {
                        throw new IntegrityException($"{sourceName}: blob {descriptor.Digest} is longer than its declared {descriptor.Size} bytes");
                    }

                    await WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    progress?.Report(Written);
                }

                if (copied != descriptor.Size || source is VerifyingStream { Verified: false })
                {
                    throw new IntegrityException($"{sourceName}: blob {descriptor.Digest} ended after {copied} of {descriptor.Size} bytes");
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            await PadAsync(descriptor.Size, ct).ConfigureAwait(false);
            progress?.Report(Written);
        }

        /// <summary>One entry whose data is <paramref name="source"/>'s whole file, copied by <see cref="Files"/>.</summary>
        public async Task CopyFileAsync(string name, Descriptor descriptor, Microsoft.Win32.SafeHandles.SafeFileHandle source, bool aligned, string sourceName, CancellationToken ct)
        {
            var files = Files ?? throw new InvalidOperationException("this bundle output takes no file ranges");
            await WriteAsync(Header(name, descriptor.Size, aligned), ct).ConfigureAwait(false);
            var start = Written;
            try
            {
                await files.CopyFromFileAsync(
                    source,
                    0,
                    descriptor.Size,
                    n =>
                    {
                        Written += n;
                        Writeback?.Wrote(Written);
                        progress?.Report(Written);
                    },
                    ct).ConfigureAwait(false);
            }
            catch (EndOfStreamException ex)
            {
                throw new IntegrityException($"{sourceName}: blob {descriptor.Digest} is shorter than its declared {descriptor.Size} bytes", ex);
            }

            if (Written != start + descriptor.Size)
            {
                throw new InvalidOperationException($"copied {Written - start} bytes of blob {descriptor.Digest}, expected {descriptor.Size}");
            }

            await PadAsync(descriptor.Size, ct).ConfigureAwait(false);
            progress?.Report(Written);
        }

        public async Task FinishAsync(CancellationToken ct)
        {
            await StartEntryAsync(ct).ConfigureAwait(false);
            await WriteAsync(TarHeaders.EndOfArchive, ct).ConfigureAwait(false);
            await stream.FlushAsync(ct).ConfigureAwait(false);
            progress?.Report(Written);
        }

        /// <summary>Copies <paramref name="length"/> bytes that are already tar (a verified bundle's body) unchanged.</summary>
        public async Task WriteRawAsync(Stream source, long length, CancellationToken ct)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
            try
            {
                var left = length;
                while (left > 0)
                {
                    var n = await source.ReadAsync(buffer.AsMemory(0, (int)Math.Min(CopyBufferSize, left)), ct).ConfigureAwait(false);
                    if (n == 0)
                    {
                        throw new IntegrityException($"the bundle ended {left} bytes early while it was copied");
                    }

                    await WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    left -= n;
                    progress?.Report(Written);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        /// <summary>The header(s) of an entry starting at the current offset.</summary>
        private byte[] Header(string name, long size, bool aligned) =>
            aligned ? TarHeaders.AlignedRegularFile(name, size, mtime, Written) : TarHeaders.RegularFile(name, size, mtime);

        private ValueTask StartEntryAsync(CancellationToken ct) => frames?.EndFrameAsync(ct) ?? ValueTask.CompletedTask;

        private Task PadAsync(long size, CancellationToken ct)
        {
            var padding = (int)TarHeaders.Padding(size);
            return padding == 0 ? Task.CompletedTask : WriteAsync(Zeros.AsMemory(0, padding), ct).AsTask();
        }

        private async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
        {
            await stream.WriteAsync(data, ct).ConfigureAwait(false);
            Written += data.Length;
            Writeback?.Wrote(Written);
        }

        private ValueTask WriteAsync(byte[] data, CancellationToken ct) => WriteAsync(data.AsMemory(), ct);
    }
}
