using System.Text.Json;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Export;
using OpenLm.Mirror.Import;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Delta;

/// <summary>The three kinds of file a delta can be built on.</summary>
public enum DeltaBaseKind
{
    /// <summary>A previous bundle (full or delta): what it delivered.</summary>
    Bundle,

    /// <summary>A previous lock: every manifest and blob of that release.</summary>
    Lock,

    /// <summary>An import receipt of the target site: what the target holds.</summary>
    Receipt,
}

/// <summary>
/// One base of a delta bundle: which release it stands for and, by digest, every manifest and blob it holds with its
/// size. Comparison is by digest only: a tag that moved or an image renamed between releases changes nothing about which
/// bytes the target already has.
/// </summary>
public sealed record DeltaBase
{
    public required string Path { get; init; }

    public required DeltaBaseKind Kind { get; init; }

    public required BundleProduct Release { get; init; }

    /// <summary>For a bundle its bundle digest; for a lock or receipt the SHA-256 of the file.</summary>
    public required Digest Digest { get; init; }

    /// <summary>Every manifest and blob the base holds (for a delta bundle base: what it carries and what it omits).</summary>
    public required IReadOnlyDictionary<Digest, long> Contents { get; init; }

    /// <summary>Images of the base release, reference to root digest (for diffs).</summary>
    public required IReadOnlyDictionary<string, string> Images { get; init; }

    /// <summary>Charts of the release by name (empty for a receipt, which records images).</summary>
    public IReadOnlyDictionary<string, ReleaseChart> Charts { get; init; } = new Dictionary<string, ReleaseChart>();

    /// <summary>Helm values paths that name the release's images (empty for a receipt).</summary>
    public IReadOnlyList<string> Values { get; init; } = [];

    public string KindName => Kind.ToString().ToLowerInvariant();

    public BundleBaseFile ToBaseFile() => new() { Kind = KindName, Release = Release, Digest = Digest.ToString() };

    /// <summary>
    /// Reads a base file: a bundle (by its magic bytes: tar or zstd; its signature is not needed here, the head and
    /// manifests are read and checked structurally), a lock (<c>lockVersion</c>) or a receipt (<c>receiptVersion</c>).
    /// Anything else is an input error that says which three kinds are accepted.
    /// </summary>
    public static async Task<DeltaBase> LoadAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            throw new InputException($"base '{path}' is a directory; give a previous bundle, lock or import receipt file");
        }

        if (!File.Exists(path))
        {
            throw new InputException($"base '{path}' does not exist");
        }

        if (LooksLikeJson(path))
        {
            var bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
            return FromJson(path, bytes);
        }

        return await FromBundleAsync(path, cancellationToken).ConfigureAwait(false);
    }

    private static bool LooksLikeJson(string path)
    {
        using var file = File.OpenRead(path);
        int b;
        while ((b = file.ReadByte()) is ' ' or '\t' or '\r' or '\n' or 0xEF or 0xBB or 0xBF)
        {
        }

        return b is '{' or '[';
    }

    private static DeltaBase FromJson(string path, byte[] bytes)
    {
        string kind;
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            kind = root.ValueKind != JsonValueKind.Object ? string.Empty
                : root.TryGetProperty("receiptVersion", out _) ? "receipt"
                : root.TryGetProperty("lockVersion", out _) ? "lock"
                : string.Empty;
        }
        catch (JsonException ex)
        {
            throw new InputException($"base '{path}' is not valid JSON ({ex.Message}); a base is a previous bundle, lock or import receipt", ex);
        }

        var fileDigest = Digest.Sha256(bytes);
        if (kind == "receipt")
        {
            var receipt = ImportReceipt.Parse(bytes, $"base '{path}'");
            if (receipt.Contents.Count == 0)
            {
                throw new InputException($"base '{path}': the receipt lists no contents (written by an older openlm-mirror?); make a new one of the target with 'inventory'");
            }

            return new DeltaBase
            {
                Path = path,
                Kind = DeltaBaseKind.Receipt,
                Release = new BundleProduct { Name = receipt.Platform.Name, Version = receipt.Platform.Version },
                Digest = fileDigest,
                Contents = receipt.Contents.GroupBy(c => Digest.Parse(c.Digest)).ToDictionary(g => g.Key, g => g.First().Size),
                Images = receipt.Images.GroupBy(i => i.Source, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Digest, StringComparer.Ordinal),
            };
        }

        if (kind == "lock")
        {
            var lockFile = LockFile.Load(path);
            return new DeltaBase
            {
                Path = path,
                Kind = DeltaBaseKind.Lock,
                Release = new BundleProduct { Name = lockFile.Name, Version = lockFile.Version },
                Digest = fileDigest,
                Contents = lockFile.Blobs.GroupBy(b => Digest.Parse(b.Digest, $"base '{path}' blobs")).ToDictionary(g => g.Key, g => g.First().Size),
                Images = lockFile.Images.ToDictionary(i => i.Reference, i => i.Digest, StringComparer.Ordinal),
                Charts = lockFile.Charts.GroupBy(c => c.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => new ReleaseChart(g.Key, g.First().Version, g.First().Digest), StringComparer.Ordinal),
                Values = lockFile.Images.SelectMany(i => i.Values).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
            };
        }

        throw new InputException($"base '{path}' is JSON but neither a lock (lockVersion) nor an import receipt (receiptVersion); a base is a previous bundle, lock or import receipt");
    }

    private static async Task<DeltaBase> FromBundleAsync(string path, CancellationToken ct)
    {
        BundleSource bundle;
        try
        {
            bundle = await BundleSource.OpenAsync(path, new BundleOpenOptions { RequireSignature = false }, ct).ConfigureAwait(false);
        }
        catch (InputException ex)
        {
            throw new InputException($"base '{path}' is not a usable bundle, lock or import receipt: {ex.Message}", ex) { Remedy = ex.Remedy, Subject = path };
        }

        await using (bundle.ConfigureAwait(false))
        {
            var contents = new Dictionary<Digest, long>();
            foreach (var manifest in bundle.ManifestsChildrenFirst)
            {
                contents[manifest.Digest] = manifest.Size;
            }

            foreach (var blob in bundle.Blobs)
            {
                contents[blob.Descriptor.Digest] = blob.Descriptor.Size;
            }

            // A delta base delivered only part of its release; the rest was in the target already, so it counts too.
            foreach (var (digest, omitted) in bundle.Omitted)
            {
                contents[digest] = omitted.Size;
            }

            var head = bundle.Head.Manifest;
            return new DeltaBase
            {
                Path = path,
                Kind = DeltaBaseKind.Bundle,
                Release = head.Platform,
                Digest = bundle.Head.BundleDigest,
                Contents = contents,
                Images = head.Images.ToDictionary(i => i.Reference, i => i.Digest, StringComparer.Ordinal),
                Charts = head.Charts.GroupBy(c => c.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => new ReleaseChart(g.Key, g.First().Version, g.First().Digest), StringComparer.Ordinal),
                Values = head.Images.SelectMany(i => i.Values).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
            };
        }
    }
}

/// <summary>A Helm chart of a release: its version and the digest its kind of file records (artifact manifest in a bundle, .tgz in a lock).</summary>
public sealed record ReleaseChart(string Name, string Version, string Digest);

/// <summary>The bases of one delta export, checked against the release they are for.</summary>
public static class DeltaBases
{
    /// <summary>
    /// Loads every base and refuses one of another platform (its content would be compared against the wrong product),
    /// or the same file twice. Returns the write input: the base files and, per digest, the first base holding it.
    /// </summary>
    public static async Task<(IReadOnlyList<DeltaBase> Bases, BundleDeltaInput Input)> LoadAsync(IReadOnlyList<string> paths, string platform, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var bases = new List<DeltaBase>();
        foreach (var path in paths)
        {
            var loaded = await DeltaBase.LoadAsync(path, cancellationToken).ConfigureAwait(false);
            if (!string.Equals(loaded.Release.Name, platform, StringComparison.Ordinal))
            {
                throw new InputException($"base '{path}' is a {loaded.KindName} of platform '{loaded.Release.Name}' {loaded.Release.Version}, but this export is of '{platform}'; give a base of the same platform");
            }

            if (bases.FirstOrDefault(b => b.Digest == loaded.Digest) is { } same)
            {
                throw new InputException($"base '{path}' is the same {loaded.KindName} as base '{same.Path}'; give each base once");
            }

            bases.Add(loaded);
        }

        var available = new Dictionary<Digest, int>();
        for (var i = 0; i < bases.Count; i++)
        {
            foreach (var digest in bases[i].Contents.Keys)
            {
                available.TryAdd(digest, i + 1);
            }
        }

        return (bases, new BundleDeltaInput { Files = bases.Select(b => b.ToBaseFile()).ToList(), Available = available });
    }
}
