using System.Collections.Concurrent;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Bundle;

/// <summary>How a bundle is opened as a content source.</summary>
public sealed record BundleOpenOptions
{
    /// <summary>The release public key the signature must verify with; null only with <see cref="RequireSignature"/> false.</summary>
    public VerificationKey? Key { get; init; }

    /// <summary>When false, an unsigned bundle (or one opened without a key) is accepted; digests are verified regardless.</summary>
    public bool RequireSignature { get; init; } = true;

    /// <summary>
    /// Where a bundle that cannot be read by byte range (an old single-stream zstd file) is decompressed to once;
    /// default the system temporary directory. The copy is removed on dispose.
    /// </summary>
    public string? TempDirectory { get; init; }

    /// <summary>Hears the (decompressed) bytes the opening pass has got through.</summary>
    public IProgress<long>? Progress { get; init; }
}

/// <summary>Where one blob lies in the bundle's tar data.</summary>
/// <param name="Descriptor">The descriptor that referenced it first (size checked against the tar header).</param>
/// <param name="Offset">Offset of its bytes in the tar data.</param>
public sealed record BundleEntry(Descriptor Descriptor, long Offset);

/// <summary>
/// A bundle as a read-only content source beside the registry and the OCI layout: opened once (the head and signature
/// verified, every manifest read and verified, the tar's structure and completeness checked, and an index of every blob's
/// byte range built, in one pass that seeks past blob data), then fetched from by descriptor in any order and in
/// parallel. <see cref="FetchAsync"/> streams a blob's byte range through a verifier, so nothing unverified leaves the
/// source: a mismatch raises <see cref="IntegrityException"/> at the end of that stream. Which blobs have been proven is
/// tracked; <see cref="VerifyRemainingAsync"/> hashes the rest (for commands that promise a fully verified bundle).
/// </summary>
public sealed class BundleSource : IReadOnlyTarget, IManifestFetchable, IAsyncDisposable
{
    private readonly Func<long, long, Stream> _openRange;
    private readonly Func<Stream> _openTar;
    private readonly string? _temporaryCopy;
    private readonly IDisposable? _owner;
    private readonly IReadOnlyDictionary<Digest, BundleEntry> _blobs;
    private readonly IReadOnlyDictionary<Digest, (Descriptor Descriptor, byte[] Bytes)> _manifests;
    private readonly IReadOnlyDictionary<string, Descriptor> _roots;
    private readonly ConcurrentDictionary<Digest, byte> _verified = new();

    private BundleSource(string path, BundleData data, BundleIndex index)
    {
        DisplayName = path;
        _openRange = data.OpenRange;
        _openTar = data.OpenTar;
        _temporaryCopy = data.TemporaryCopy;
        _owner = data.Owner;
        Head = index.Head! with { Compressed = data.Compressed };
        _blobs = index.Blobs;
        Blobs = index.Blobs.Values.OrderBy(b => b.Offset).ToList();
        _manifests = index.Manifests;
        Documents = index.Documents;
        ManifestsChildrenFirst = index.ChildrenFirst;
        _roots = Head.Images.ToDictionary(d => d.RefName!, StringComparer.Ordinal);
        Omitted = (Head.Manifest.Base?.Omitted ?? []).ToDictionary(o => Digest.Parse(o.Digest), o => o);
    }

    /// <summary>The bundle's path, for messages.</summary>
    public string DisplayName { get; }

    /// <summary>The verified head: <c>openlm-bundle.json</c>, its signature status, <c>index.json</c>'s images.</summary>
    public BundleHead Head { get; }

    /// <summary>Every manifest and index of the bundle, parsed from verified bytes, by digest.</summary>
    public IReadOnlyDictionary<Digest, ManifestDocument> Documents { get; }

    /// <summary>Every manifest and index, children before parents (the order a registry accepts them in).</summary>
    public IReadOnlyList<Descriptor> ManifestsChildrenFirst { get; }

    /// <summary>Every blob that is not a manifest (configs, layers, chart content), in the order they lie in the file.</summary>
    public IReadOnlyList<BundleEntry> Blobs { get; }

    /// <summary>For a delta bundle, every blob it leaves to the target (checked against the signed head when opened); empty for a full bundle.</summary>
    public IReadOnlyDictionary<Digest, BundleOmittedBlob> Omitted { get; }

    /// <summary>True for a delta bundle (its head names bases; <see cref="Omitted"/> lists what they supply).</summary>
    public bool IsDelta => Head.Manifest.Base is not null;

    /// <summary>True when the blob's bytes have been read to the end through a verifier and matched.</summary>
    public bool IsVerified(Digest digest) => _manifests.ContainsKey(digest) || _verified.ContainsKey(digest);

    /// <summary>The config or layer with this digest, when the bundle carries it (an omitted blob is not carried).</summary>
    public BundleEntry? CarriedBlob(Digest digest) => _blobs.TryGetValue(digest, out var entry) ? entry : null;

    /// <summary>
    /// Opens the bundle at <paramref name="path"/>: see the type summary. The path must be a file (byte ranges are read
    /// from it); a pipe is refused. An old single-stream zstd bundle is decompressed once to a temporary file.
    /// </summary>
    public static async Task<BundleSource> OpenAsync(string path, BundleOpenOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(options);
        var data = await RandomAccessDataAsync(path, options, cancellationToken).ConfigureAwait(false);
        try
        {
            var index = new BundleIndex();
            var tar = data.OpenTar();
            await using (tar.ConfigureAwait(false))
            {
                await BundleReader.ReadAsync(tar, new BundleReadOptions
                {
                    Key = options.Key,
                    RequireSignature = options.RequireSignature,
                    Visitor = index,
                    SourceName = path,
                    Progress = options.Progress,
                }, cancellationToken).ConfigureAwait(false);
            }

            return new BundleSource(path, data, index);
        }
        catch
        {
            data.Owner?.Dispose();
            DeleteQuietly(data.TemporaryCopy);
            throw;
        }
    }

    public Task<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken = default) =>
        Task.FromResult(Resolve(reference));

    public Task<(Descriptor Descriptor, byte[] Bytes)> FetchManifestAsync(string reference, CancellationToken cancellationToken = default)
    {
        var descriptor = Resolve(reference);
        return Task.FromResult((descriptor, _manifests[descriptor.Digest].Bytes));
    }

    public Task<bool> ExistsAsync(Descriptor descriptor, CancellationToken cancellationToken = default) =>
        Task.FromResult(_manifests.ContainsKey(descriptor.Digest) || _blobs.ContainsKey(descriptor.Digest));

    /// <summary>
    /// Manifests come from memory (verified when the bundle was opened); any other blob streams from its byte range
    /// through a verifier of the descriptor the bundle recorded for it.
    /// </summary>
    public Task<Stream> FetchAsync(Descriptor descriptor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        if (_manifests.TryGetValue(descriptor.Digest, out var manifest))
        {
            RequireSize(descriptor, manifest.Descriptor.Size);
            return Task.FromResult<Stream>(new MemoryStream(manifest.Bytes, writable: false));
        }

        if (!_blobs.TryGetValue(descriptor.Digest, out var entry))
        {
            throw new NotFoundException(Omitted.TryGetValue(descriptor.Digest, out var omitted)
                ? $"{DisplayName}: blob {descriptor.Digest} is omitted from this delta bundle: base {omitted.Base} ({BaseName(omitted.Base)}) supplies it, and the target must already hold it"
                : $"{DisplayName}: the bundle holds no blob {descriptor.Digest}");
        }

        RequireSize(descriptor, entry.Descriptor.Size);
        var range = _openRange(entry.Offset, entry.Descriptor.Size);
        return Task.FromResult<Stream>(new VerifyingStream(range, entry.Descriptor, $"{DisplayName}: blob {descriptor.Digest}", onVerified: d => _verified.TryAdd(d.Digest, 0)));
    }

    /// <summary>
    /// Reads <paramref name="length"/> bytes at <paramref name="offset"/> of a blob that is already verified (by a fetch
    /// or <see cref="VerifyRemainingAsync"/>): for serving <c>Range</c> requests, which a verifier cannot check.
    /// </summary>
    public Stream OpenVerifiedRange(Digest digest, long offset, long length)
    {
        if (_manifests.TryGetValue(digest, out var manifest))
        {
            CheckRange(offset, length, manifest.Bytes.Length);
            return new MemoryStream(manifest.Bytes, (int)offset, (int)length, writable: false);
        }

        if (!_blobs.TryGetValue(digest, out var entry))
        {
            throw new NotFoundException($"{DisplayName}: the bundle holds no blob {digest}");
        }

        if (!_verified.ContainsKey(digest))
        {
            throw new InvalidOperationException($"blob {digest} has not been verified; verify the bundle before serving ranges of it");
        }

        CheckRange(offset, length, entry.Descriptor.Size);
        return _openRange(entry.Offset + offset, length);
    }

    /// <summary>Reads every blob not yet proven through its verifier, in file order; the first mismatch throws.</summary>
    public async Task VerifyRemainingAsync(IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        var buffer = new byte[1 << 20];
        long done = 0;
        foreach (var entry in Blobs)
        {
            if (!_verified.ContainsKey(entry.Descriptor.Digest))
            {
                var stream = await FetchAsync(entry.Descriptor, cancellationToken).ConfigureAwait(false);
                await using (stream.ConfigureAwait(false))
                {
                    while (await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false) > 0)
                    {
                    }
                }
            }

            done += entry.Descriptor.Size;
            progress?.Report(done);
        }
    }

    public ValueTask DisposeAsync()
    {
        _owner?.Dispose();
        DeleteQuietly(_temporaryCopy);
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Refuses a delta for a use that needs every byte of every image (a Docker load, serving): the omitted blobs are in
    /// the air-gapped registry, not in this file. <paramref name="use"/> completes "a delta bundle cannot be …".
    /// </summary>
    public void RequireFull(string use, bool baseAccepted = false) => RequireFull(Head, DisplayName, use, baseAccepted);

    /// <summary>
    /// <see cref="RequireFull(string, bool)"/> on a head alone (e.g. one read with <see cref="BundleReadOptions.HeadOnly"/>,
    /// before anything else is contacted). With <paramref name="baseAccepted"/> the remedy is to give the earlier bundles.
    /// </summary>
    public static void RequireFull(BundleHead head, string displayName, string use, bool baseAccepted = false)
    {
        ArgumentNullException.ThrowIfNull(head);
        if (head.Manifest.Base is not { } deltaBase)
        {
            return;
        }

        var bases = string.Join("; ", deltaBase.Files.Select((_, i) => BaseName(head.Manifest, i + 1)));
        throw new InputException(
            $"{displayName} is a delta bundle: it leaves {deltaBase.Omitted.Count} blobs ({deltaBase.Omitted.Sum(o => o.Size)} bytes) to its base ({bases}), so it cannot be {use} on its own; " +
            (baseAccepted ? "give the earlier bundle file(s) it was made against as base(s), use" : "use") +
            " a full bundle of this release, or import the delta into the registry that holds the base")
        { Subject = displayName, Remedy = baseAccepted ? Remedy.BaseBundle : Remedy.None };
    }

    /// <summary>The (decompressed) tar of the bundle as one seekable stream, e.g. to write it again in parts.</summary>
    public Stream OpenTar() => _openTar();

    /// <summary>"kind release" of a delta's base (1-based), for messages.</summary>
    public string BaseName(int index) => BaseName(Head.Manifest, index);

    private static string BaseName(BundleManifest manifest, int index)
    {
        var files = manifest.Base?.Files ?? [];
        return index >= 1 && index <= files.Count
            ? $"{files[index - 1].Kind} of {files[index - 1].Release.Name} {files[index - 1].Release.Version}"
            : $"base {index}";
    }

    private Descriptor Resolve(string reference)
    {
        if (_roots.TryGetValue(reference, out var root))
        {
            return root;
        }

        if (Digest.TryParse(reference, out var digest) && _manifests.TryGetValue(digest, out var manifest))
        {
            return manifest.Descriptor;
        }

        throw new NotFoundException($"{DisplayName}: the bundle holds no image '{reference}'");
    }

    private void RequireSize(Descriptor asked, long recorded)
    {
        if (asked.Size != recorded)
        {
            throw new IntegrityException($"{DisplayName}: {asked.Digest} is {recorded} bytes in the bundle, but {asked.Size} bytes were asked for");
        }
    }

    private static void CheckRange(long offset, long length, long size)
    {
        if (offset < 0 || length < 0 || offset > size || length > size - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"range {offset}+{length} is outside a {size}-byte blob");
        }
    }

    /// <summary>How the tar's bytes are read: the plain bundle file, a seekable zstd bundle's frames, or a decompressed copy.</summary>
    private sealed record BundleData(Func<Stream> OpenTar, Func<long, long, Stream> OpenRange, bool Compressed, string? TemporaryCopy = null, IDisposable? Owner = null)
    {
        public static BundleData PlainFile(string path, bool compressed = false, string? temporaryCopy = null) => new(
            () => BundleReader.OpenFile(path),
            (offset, length) => new RangeStream(path, offset, length),
            compressed,
            temporaryCopy);

        public static BundleData Seekable(SeekableZstdFile file) => new(
            () => new SeekableZstdTarStream(file),
            file.OpenRange,
            Compressed: true,
            Owner: file);
    }

    private static async Task<BundleData> RandomAccessDataAsync(string path, BundleOpenOptions options, CancellationToken ct)
    {
        // Parts are read in place: the tar is their concatenation, a blob's range may cross from one part into the next.
        if (await BundlePartSet.TryLocateAsync(path, ct).ConfigureAwait(false) is { } parts)
        {
            await parts.RequireIntactAsync(hashes: false, cancellationToken: ct).ConfigureAwait(false);
            return new BundleData(parts.OpenStream, parts.OpenRange, Compressed: false);
        }

        var file = BundleReader.OpenFile(path);
        await using (file.ConfigureAwait(false))
        {
            if (!file.CanSeek)
            {
                throw new InputException(
                    $"'{path}' is not a regular file (a pipe?): a bundle is read by the byte ranges of its blobs, so it must be a file on disk; save the stream to a file first and pass that path");
            }

            var magic = new byte[4];
            var n = await file.ReadAtLeastAsync(magic, magic.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
            if (n < 4 || !magic.AsSpan().SequenceEqual(BundleFormat.ZstdMagic))
            {
                return BundleData.PlainFile(path);
            }

            // A seekable zstd bundle (what export writes) is read frame by frame; only an old single-stream one is copied.
            if (SeekableZstdFile.TryOpen(path) is { } seekable)
            {
                return BundleData.Seekable(seekable);
            }

            file.Seek(0, SeekOrigin.Begin);
            var copy = await DecompressToTemporaryAsync(file, path, options.TempDirectory, ct).ConfigureAwait(false);
            return BundleData.PlainFile(copy, compressed: true, temporaryCopy: copy);
        }
    }

    private static async Task<string> DecompressToTemporaryAsync(FileStream compressed, string path, string? tempDirectory, CancellationToken ct)
    {
        var directory = tempDirectory ?? Path.GetTempPath();
        var copy = Path.Combine(directory, $"openlm-bundle-{Guid.NewGuid():N}.tar");
        try
        {
            var (tar, _) = await BundleStreams.OpenAsync(compressed, path, ct).ConfigureAwait(false);
            await using (tar.ConfigureAwait(false))
            {
                var output = new FileStream(copy, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                await using (output.ConfigureAwait(false))
                {
                    await tar.CopyToAsync(output, 1 << 20, ct).ConfigureAwait(false);
                }
            }

            return copy;
        }
        catch (IOException ex) when (ex is not FileNotFoundException)
        {
            DeleteQuietly(copy);
            throw new OperationException($"{path}: could not decompress the bundle to '{directory}' for reading by range: {ex.Message}; free space there or choose another temporary directory", ex);
        }
        catch
        {
            DeleteQuietly(copy);
            throw;
        }
    }

    private static void DeleteQuietly(string? path)
    {
        if (path is null)
        {
            return;
        }

        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>The opening pass's visitor: keeps the head and the verified manifests, and takes every other blob by its location.</summary>
    private sealed class BundleIndex : IBundleVisitor, IBlobIndexer
    {
        public BundleHead? Head { get; private set; }

        public Dictionary<Digest, BundleEntry> Blobs { get; } = [];

        public Dictionary<Digest, (Descriptor Descriptor, byte[] Bytes)> Manifests { get; } = [];

        public Dictionary<Digest, ManifestDocument> Documents { get; } = [];

        public IReadOnlyList<Descriptor> ChildrenFirst { get; private set; } = [];

        public ValueTask OnHeadAsync(BundleHead head, CancellationToken cancellationToken)
        {
            Head = head;
            return ValueTask.CompletedTask;
        }

        public ValueTask OnManifestAsync(Descriptor descriptor, ReadOnlyMemory<byte> verifiedBytes, CancellationToken cancellationToken)
        {
            var bytes = verifiedBytes.ToArray();
            Manifests[descriptor.Digest] = (descriptor, bytes);
            Documents[descriptor.Digest] = ManifestDocument.Parse(bytes, descriptor.MediaType, $"bundle manifest {descriptor.Digest}");
            return ValueTask.CompletedTask;
        }

        public ValueTask<bool> ClaimBlobAsync(Descriptor descriptor, long dataOffset, CancellationToken cancellationToken)
        {
            Blobs[descriptor.Digest] = new BundleEntry(descriptor, dataOffset);
            return ValueTask.FromResult(true);
        }

        public ValueTask OnCompletedAsync(BundleReadResult result, CancellationToken cancellationToken)
        {
            ChildrenFirst = result.ManifestsChildrenFirst;
            return ValueTask.CompletedTask;
        }
    }
}
