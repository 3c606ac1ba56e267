using System.Text.Json;
using System.Text.Json.Serialization;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Export;

/// <summary>
/// The output of <c>resolve</c>: every image of a platform release pinned to its digest at the source,
/// in a deterministic order, so <c>export</c> can run later (or elsewhere) without re-resolving tags.
/// </summary>
public sealed record LockFile
{
    public const int CurrentVersion = 1;

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        RespectRequiredConstructorParameters = true,
        TypeInfoResolver = ExportJsonContext.Resolver,
    };

    public int LockVersion { get; init; } = CurrentVersion;

    public required string Name { get; init; }

    public required string Version { get; init; }

    public required string Source { get; init; }

    /// <summary>The platform filter applied (empty: all platforms kept).</summary>
    public IReadOnlyList<string> Platforms { get; init; } = [];

    public required IReadOnlyList<LockedImage> Images { get; init; }

    public IReadOnlyList<LockedChart> Charts { get; init; } = [];

    /// <summary>Every unique manifest, config and layer the images need, sorted by digest: what the bundle will hold besides charts.</summary>
    public IReadOnlyList<LockedBlob> Blobs { get; init; } = [];

    public long TotalBytes => Blobs.Sum(b => b.Size);

    public static LockFile Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException ex)
        {
            throw new InputException($"lock file '{path}' does not exist", ex);
        }

        LockFile? lockFile;
        try
        {
            lockFile = JsonSerializer.Deserialize<LockFile>(bytes, Json);
        }
        catch (JsonException ex)
        {
            throw new InputException($"{path}: not a valid lock file: {ex.Message}", ex);
        }

        if (lockFile is null)
        {
            throw new InputException($"{path}: empty lock file");
        }

        if (lockFile.LockVersion != CurrentVersion)
        {
            throw new InputException($"{path}: lockVersion {lockFile.LockVersion} is not supported (this tool reads version {CurrentVersion})");
        }

        var problems = new List<string>();
        for (var i = 0; i < lockFile.Images.Count; i++)
        {
            var image = lockFile.Images[i];
            if (!Oci.Reference.TryParse(image.Reference, out var reference, out var error))
            {
                problems.Add($"images[{i}].reference: {error}");
            }
            else if (reference.Tag is null && reference.Digest is null)
            {
                problems.Add($"images[{i}].reference: '{image.Reference}' has neither tag nor digest");
            }

            if (!Oci.Digest.TryParse(image.Digest, out _, out var digestError))
            {
                problems.Add($"images[{i}].digest: {digestError}");
            }

            if (!Oci.Digest.TryParse(image.SourceDigest, out _, out var sourceDigestError))
            {
                problems.Add($"images[{i}].sourceDigest: {sourceDigestError}");
            }
        }

        for (var i = 0; i < lockFile.Charts.Count; i++)
        {
            problems.AddRange(lockFile.Charts[i].Problems(i));
        }

        var duplicates = lockFile.Images.GroupBy(i => i.Reference).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (duplicates.Count > 0)
        {
            problems.Add($"images listed twice: {string.Join(", ", duplicates)}");
        }

        if (problems.Count > 0)
        {
            throw new InputException($"{path}: invalid lock file:\n  " + string.Join("\n  ", problems));
        }

        // Chart paths are stored relative to the lock file, so a lock travels with its charts.
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        return lockFile with
        {
            Charts = lockFile.Charts.Select(c => c.Path is null ? c : c with { Path = Path.GetFullPath(Path.Combine(directory, c.Path)) }).ToList(),
        };
    }

    public void Save(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var portable = this with
        {
            Charts = Charts.Select(c => c.Path is null ? c : c with { Path = Path.GetRelativePath(directory, c.Path).Replace('\\', '/') }).ToList(),
        };
        Content.AtomicFile.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(portable, Json));
    }

    /// <summary>sha256 of the canonical serialisation: identifies one release's export in the cache.</summary>
    public string Fingerprint() => Oci.Digest.Sha256(JsonSerializer.SerializeToUtf8Bytes(this, Json)).ToString();
}

/// <summary>One image pinned by digest.</summary>
public sealed record LockedImage
{
    /// <summary>Full source reference with tag (or digest when the platform pins only a digest).</summary>
    public required string Reference { get; init; }

    /// <summary>The digest of what the bundle will hold (the filtered index when a platform filter applies).</summary>
    public required string Digest { get; init; }

    /// <summary>The digest at the source (equal to <see cref="Digest"/> unless an index was filtered).</summary>
    public required string SourceDigest { get; init; }

    public required string MediaType { get; init; }

    /// <summary>Kept per-platform children of an index (empty for single-platform manifests).</summary>
    public IReadOnlyList<LockedPlatform> Children { get; init; } = [];

    /// <summary>Bytes of every manifest, config and layer the image needs (kept platforms only).</summary>
    public long Size { get; init; }

    public IReadOnlyList<string> Values { get; init; } = [];

    public IReadOnlyList<string> Origins { get; init; } = [];
}

public sealed record LockedBlob(string Digest, long Size);

public sealed record LockedPlatform(string Platform, string Digest, string MediaType, long Size);

/// <summary>
/// A Helm chart shipped with the release, pinned by the sha256 of its archive and by its source: exactly one of
/// <see cref="Path"/> (a local chart), <see cref="Ref"/> (<c>oci://…</c>) or <see cref="Repo"/> (a Helm repository, with
/// <see cref="Name"/> and <see cref="Version"/> selecting the entry of its index).
/// </summary>
public sealed record LockedChart
{
    /// <summary>A local chart's path: relative to the lock file when saved, absolute once loaded. Null for a chart from a registry or repository.</summary>
    public string? Path { get; init; }

    /// <summary>The OCI reference the chart was pulled from (<c>oci://host/path/chart:tag</c>).</summary>
    public string? Ref { get; init; }

    /// <summary>The Helm repository URL the chart was downloaded from (its <c>index.yaml</c> lists <see cref="Name"/> at <see cref="Version"/>).</summary>
    public string? Repo { get; init; }

    public required string Name { get; init; }

    public required string Version { get; init; }

    /// <summary>sha256 of the packaged chart archive; export refuses a chart that changed since resolve.</summary>
    public required string Digest { get; init; }

    /// <summary>Where the chart comes from, as the manifest named it.</summary>
    public PlatformSpec.ChartSources.ChartSource Source() =>
        Ref is not null && PlatformSpec.ChartSources.OciChartSource.TryParse(Ref, out var oci, out _) ? oci
        : Repo is not null && PlatformSpec.ChartSources.HelmRepositoryChartSource.TryParseRepository(Repo, out var repo, out _) ? new PlatformSpec.ChartSources.HelmRepositoryChartSource(repo, Name, Version)
        : Path is not null ? new PlatformSpec.ChartSources.LocalChartSource(Path, Path)
        : throw new InvalidOperationException($"chart {Name} {Version} has no valid source");

    /// <summary>The problems of one chart entry of a lock file (checked on load, so export never meets them).</summary>
    internal IEnumerable<string> Problems(int index)
    {
        var field = FormattableString.Invariant($"charts[{index}]");
        var sources = new[] { Path, Ref, Repo }.Count(s => s is not null);
        if (sources != 1)
        {
            yield return $"{field}: needs exactly one of path, ref or repo (has {sources})";
        }

        if (Ref is not null && !PlatformSpec.ChartSources.OciChartSource.TryParse(Ref, out _, out var refError))
        {
            yield return $"{field}.ref: {refError}";
        }

        if (Repo is not null && !PlatformSpec.ChartSources.HelmRepositoryChartSource.TryParseRepository(Repo, out _, out var repoError))
        {
            yield return $"{field}.repo: {repoError}";
        }

        if (!Oci.Digest.TryParse(Digest, out var digest, out var digestError) || digest.Algorithm != "sha256")
        {
            yield return $"{field}.digest: {(digestError.Length > 0 ? digestError : $"'{Digest}' is not a sha256 digest")}";
        }
    }
}
