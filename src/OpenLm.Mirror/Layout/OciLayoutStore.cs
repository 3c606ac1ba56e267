using System.Text.Json;
using System.Text.Json.Nodes;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Layout;

/// <summary>
/// An OCI image layout directory (<c>oci-layout</c>, <c>index.json</c>, <c>blobs/&lt;alg&gt;/&lt;hex&gt;</c>).
/// Blobs are written to a temporary file, verified while written, then renamed into place;
/// <c>index.json</c> is replaced atomically. A blob's path comes only from its digest.
/// </summary>
public sealed class OciLayoutStore : ITarget
{
    public const string LayoutFileName = "oci-layout";
    public const string IndexFileName = "index.json";
    public const string TempDirectoryName = ".openlm-tmp";
    private const string LayoutFileContent = "{\"imageLayoutVersion\":\"1.0.0\"}";
    private static readonly JsonSerializerOptions IndexJson = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, TypeInfoResolver = MirrorJsonContext.Resolver };
    private readonly SemaphoreSlim _indexLock = new(1, 1);

    /// <summary>Blobs this instance hashed and committed itself (not ones it found already stored): size and file time at the commit.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Digest, (long Size, DateTime Written)> _verifiedHere = new();

    /// <summary>One signal per blob someone awaits (<see cref="WhenStoredAsync"/>), set when this instance stores it.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Digest, TaskCompletionSource> _stored = new();

    private OciLayoutStore(string root)
    {
        Root = root;
    }

    public string Root { get; }

    public string DisplayName => $"oci:{Root}";

    /// <summary>Opens a layout; with <paramref name="create"/> an empty or missing directory becomes a new layout.</summary>
    public static OciLayoutStore Open(string directory, bool create)
    {
        var root = Path.GetFullPath(directory);
        var layoutFile = Path.Combine(root, LayoutFileName);
        if (File.Exists(layoutFile))
        {
            ValidateLayoutFile(layoutFile);
        }
        else if (!create)
        {
            throw new InputException(Directory.Exists(root)
                ? $"'{directory}' is not an OCI layout (no {LayoutFileName} file)"
                : $"OCI layout '{directory}' does not exist");
        }
        else
        {
            // The manifests resolve keeps for export (ManifestStore) may be there before the layout is.
            if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any(e => Path.GetFileName(e) != ManifestStore.DirectoryName))
            {
                throw new InputException($"'{directory}' exists, is not empty and is not an OCI layout; refusing to write into it");
            }

            try
            {
                Directory.CreateDirectory(Path.Combine(root, "blobs", "sha256"));
                AtomicFile.WriteAllBytes(Path.Combine(root, IndexFileName), "{\"schemaVersion\":2,\"manifests\":[]}\n"u8.ToArray());
                AtomicFile.WriteAllBytes(layoutFile, System.Text.Encoding.UTF8.GetBytes(LayoutFileContent));
            }
            catch (IOException ex)
            {
                throw new OperationException($"cannot create OCI layout '{directory}': {ex.Message}", ex);
            }
        }

        return new OciLayoutStore(root);
    }

    public string BlobPath(Digest digest) => Path.Combine(Root, "blobs", digest.Algorithm, digest.Hex);

    public Task<bool> ExistsAsync(Descriptor descriptor, CancellationToken cancellationToken = default)
    {
        var info = new FileInfo(BlobPath(descriptor.Digest));
        return Task.FromResult(info.Exists && info.Length == descriptor.Size);
    }

    /// <summary>
    /// True when this instance itself verified <paramref name="descriptor"/>'s content (hashed while it was pushed)
    /// and committed it, and the stored file still has the size and modification time it had then: such a blob can be
    /// copied on (into a bundle) without hashing it again. A blob found already stored (from an earlier run) or rewritten
    /// since is not: hash it when reading it (<see cref="FetchAsync"/> does).
    /// </summary>
    public bool VerifiedByThisInstance(Descriptor descriptor)
    {
        if (!_verifiedHere.TryGetValue(descriptor.Digest, out var committed) || committed.Size != descriptor.Size)
        {
            return false;
        }

        var info = new FileInfo(BlobPath(descriptor.Digest));
        return info.Exists && info.Length == committed.Size && info.LastWriteTimeUtc == committed.Written;
    }

    private void RecordVerified(Descriptor expected, string path) =>
        _verifiedHere[expected.Digest] = (expected.Size, File.GetLastWriteTimeUtc(path));

    /// <summary>
    /// Returns once <paramref name="descriptor"/>'s blob is stored: at once when a file of its size is there, else when a
    /// push through this instance commits it (verified). A reader running alongside a pull into the layout awaits it.
    /// </summary>
    public async Task WhenStoredAsync(Descriptor descriptor, CancellationToken cancellationToken = default)
    {
        // The signal exists before the file is looked for, so a commit in between is not missed.
        var signal = _stored.GetOrAdd(descriptor.Digest, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        if (await ExistsAsync(descriptor, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        await signal.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (!await ExistsAsync(descriptor, cancellationToken).ConfigureAwait(false))
        {
            throw new OperationException($"{DisplayName}: blob {descriptor.Digest} was stored but is no longer there (removed or changed by another process)");
        }
    }

    private void SignalStored(Digest digest) =>
        _stored.GetOrAdd(digest, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Opens a stored blob's file for reading as is (no verification: see <see cref="VerifiedByThisInstance"/>).</summary>
    public Microsoft.Win32.SafeHandles.SafeFileHandle OpenBlobFile(Descriptor descriptor)
    {
        try
        {
            return File.OpenHandle(BlobPath(descriptor.Digest), FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new OperationException($"{DisplayName}: blob {descriptor.Digest} is missing", ex);
        }
    }

    public Task<Stream> FetchAsync(Descriptor descriptor, CancellationToken cancellationToken = default)
    {
        var path = BlobPath(descriptor.Digest);
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        }
        catch (FileNotFoundException ex)
        {
            throw new OperationException($"{DisplayName}: blob {descriptor.Digest} is missing", ex);
        }
        catch (DirectoryNotFoundException ex)
        {
            throw new OperationException($"{DisplayName}: blob {descriptor.Digest} is missing", ex);
        }

        return Task.FromResult<Stream>(new VerifyingStream(file, descriptor, $"{DisplayName} blob {descriptor.Digest}"));
    }

    public async Task PushAsync(Descriptor expected, Stream content, CancellationToken cancellationToken = default)
    {
        var final = BlobPath(expected.Digest);
        if (await ExistsAsync(expected, cancellationToken).ConfigureAwait(false))
        {
            SignalStored(expected.Digest);
            return;
        }

        var tempDir = Path.Combine(Root, TempDirectoryName);
        Directory.CreateDirectory(tempDir);
        Directory.CreateDirectory(Path.GetDirectoryName(final)!);
        var temp = Path.Combine(tempDir, $"{expected.Digest.Hex}.{Guid.NewGuid():N}.partial");
        try
        {
            // Content fetched through a verifier of this very descriptor is not hashed a second time.
            var untrusted = VerifyingStream.Ensure(content, expected, $"{DisplayName} push {expected.Digest}");
            await using (untrusted.ConfigureAwait(false))
            {
                var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                await using (file.ConfigureAwait(false))
                {
                    await untrusted.Stream.CopyToAsync(file, 1 << 20, cancellationToken).ConfigureAwait(false);
                    await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                }

                if (!untrusted.Verifier.Verified)
                {
                    throw new IntegrityException($"{DisplayName}: content for {expected.Digest} was not fully verified");
                }
            }

            try
            {
                File.Move(temp, final, overwrite: false);
                RecordVerified(expected, final);
            }
            catch (IOException) when (File.Exists(final))
            {
                // Another writer committed the same verified content first, unless the file there is damaged
                // (wrong size: ExistsAsync said no); our copy is verified, so it replaces that one.
                if (new FileInfo(final).Length != expected.Size)
                {
                    File.Move(temp, final, overwrite: true);
                    RecordVerified(expected, final);
                }
            }
        }
        finally
        {
            TryDelete(temp);
        }

        SignalStored(expected.Digest);
    }

    /// <summary>Stores small verified content (manifests) directly.</summary>
    public async Task PushBytesAsync(Descriptor expected, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        using var stream = new MemoryStream(content.ToArray(), writable: false);
        await PushAsync(expected, stream, cancellationToken).ConfigureAwait(false);
    }

    public async Task TagAsync(Descriptor descriptor, string reference, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(reference))
        {
            throw new InputException("an OCI layout ref name cannot be empty");
        }

        if (!await ExistsAsync(descriptor, cancellationToken).ConfigureAwait(false))
        {
            throw new OperationException($"{DisplayName}: cannot tag '{reference}': manifest {descriptor.Digest} is not in the layout");
        }

        await UpdateIndexAsync(
            entries =>
            {
                entries.RemoveAll(e => e.RefName == reference);
                entries.Add(new Descriptor
                {
                    MediaType = descriptor.MediaType,
                    Digest = descriptor.Digest,
                    Size = descriptor.Size,
                    Platform = descriptor.Platform,
                    ArtifactType = descriptor.ArtifactType,
                }.WithRefName(reference));
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Makes <c>index.json</c> list exactly these descriptors (each carries its ref name); blobs stay.</summary>
    public Task ReplaceIndexAsync(IReadOnlyList<Descriptor> entries, CancellationToken cancellationToken = default) =>
        UpdateIndexAsync(
            current =>
            {
                current.Clear();
                current.AddRange(entries);
            },
            cancellationToken);

    public async Task<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken = default)
    {
        var entries = await ReadIndexAsync(cancellationToken).ConfigureAwait(false);
        var byName = entries.Where(e => e.RefName == reference).ToList();
        if (byName.Count == 1)
        {
            return byName[0];
        }

        if (byName.Count > 1)
        {
            throw new InputException($"{DisplayName}: ref name '{reference}' appears {byName.Count} times in index.json");
        }

        if (Digest.TryParse(reference, out var digest))
        {
            var byDigest = entries.FirstOrDefault(e => e.Digest == digest);
            if (byDigest is not null)
            {
                return byDigest;
            }
        }

        var known = entries.Select(e => e.RefName).Where(n => n is not null).Take(10).ToList();
        throw new NotFoundException(
            $"{DisplayName}: no image named '{reference}'" + (known.Count > 0 ? $" (it has: {string.Join(", ", known)}{(entries.Count > known.Count ? ", …" : string.Empty)})" : " (the layout is empty)"));
    }

    /// <summary>The descriptors listed in <c>index.json</c>.</summary>
    public async Task<List<Descriptor>> ReadIndexAsync(CancellationToken cancellationToken = default)
    {
        var path = Path.Combine(Root, IndexFileName);
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (FileNotFoundException ex)
        {
            throw new InputException($"{DisplayName}: {IndexFileName} is missing", ex);
        }

        try
        {
            var doc = ManifestDocument.Parse(bytes, MediaTypes.OciIndex, $"{DisplayName}/{IndexFileName}");
            return doc.Manifests.ToList();
        }
        catch (InputException ex)
        {
            throw new InputException($"{DisplayName}: {IndexFileName} is invalid: {ex.Message}", ex);
        }
    }

    private async Task UpdateIndexAsync(Action<List<Descriptor>> change, CancellationToken cancellationToken)
    {
        await _indexLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var fileLock = await FileLock.AcquireAsync(Path.Combine(Root, IndexFileName + ".lock"), cancellationToken).ConfigureAwait(false);
            var entries = await ReadIndexAsync(cancellationToken).ConfigureAwait(false);
            change(entries);
            entries.Sort((a, b) => string.CompareOrdinal(a.RefName ?? a.Digest.ToString(), b.RefName ?? b.Digest.ToString()));
            var index = new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = MediaTypes.OciIndex,
                ["manifests"] = JsonSerializer.SerializeToNode(entries, IndexJson),
            };
            AtomicFile.WriteAllBytes(Path.Combine(Root, IndexFileName), JsonSerializer.SerializeToUtf8Bytes(index, IndexJson));
        }
        finally
        {
            _indexLock.Release();
        }
    }

    private static void ValidateLayoutFile(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("imageLayoutVersion", out var v)
                || v.ValueKind != JsonValueKind.String
                || v.GetString() != "1.0.0")
            {
                throw new InputException($"{path}: unsupported imageLayoutVersion (expected 1.0.0)");
            }
        }
        catch (JsonException ex)
        {
            throw new InputException($"{path}: not valid JSON: {ex.Message}", ex);
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
}
