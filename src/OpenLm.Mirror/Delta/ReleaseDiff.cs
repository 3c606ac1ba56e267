using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Delta;

/// <summary>How one image differs between two releases.</summary>
public enum ImageChange
{
    Added,
    Removed,
    Changed,
    Unchanged,
}

/// <summary>One image (by repository) in a release diff: its tag and digest before and after.</summary>
public sealed record ImageDiff(string Repository, ImageChange Change, string? OldTag, string? NewTag, string? OldDigest, string? NewDigest);

/// <summary>One chart whose version or content changed, or that came or went.</summary>
public sealed record ChartDiff(string Name, string? OldVersion, string? NewVersion);

/// <summary>
/// What changes if a site moves from <see cref="Old"/> to <see cref="New"/>: images added, removed and changed (by
/// repository: tag → tag, digest → digest), charts changed, values paths added and removed, and the blobs and bytes a
/// delta of the new release over the old would carry (every manifest and blob the old one lacks, by digest).
/// </summary>
public sealed record ReleaseDiff
{
    public required ReleaseSide Old { get; init; }

    public required ReleaseSide New { get; init; }

    public required IReadOnlyList<ImageDiff> Images { get; init; }

    public required IReadOnlyList<ChartDiff> Charts { get; init; }

    public required IReadOnlyList<string> ValuesAdded { get; init; }

    public required IReadOnlyList<string> ValuesRemoved { get; init; }

    /// <summary>Manifests and blobs of the new release the old one lacks.</summary>
    public required int DeltaBlobs { get; init; }

    public required long DeltaBytes { get; init; }

    /// <summary>All manifests and blobs of the new release (what a full bundle carries).</summary>
    public required long FullBytes { get; init; }

    public int Count(ImageChange change) => Images.Count(i => i.Change == change);

    /// <summary>Compares two releases given as bundles, locks or receipts (any kind on either side).</summary>
    public static async Task<ReleaseDiff> CompareAsync(string oldPath, string newPath, CancellationToken cancellationToken = default)
    {
        var old = await DeltaBase.LoadAsync(oldPath, cancellationToken).ConfigureAwait(false);
        var @new = await DeltaBase.LoadAsync(newPath, cancellationToken).ConfigureAwait(false);
        return Compare(old, @new);
    }

    public static ReleaseDiff Compare(DeltaBase old, DeltaBase @new)
    {
        ArgumentNullException.ThrowIfNull(old);
        ArgumentNullException.ThrowIfNull(@new);
        var before = ByRepository(old.Images);
        var after = ByRepository(@new.Images);
        var images = new List<ImageDiff>();
        foreach (var repository in before.Keys.Union(after.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            var had = before.GetValueOrDefault(repository);
            var has = after.GetValueOrDefault(repository);
            var change = had is null ? ImageChange.Added
                : has is null ? ImageChange.Removed
                : had.Value.Digest != has.Value.Digest || had.Value.Tag != has.Value.Tag ? ImageChange.Changed
                : ImageChange.Unchanged;
            images.Add(new ImageDiff(repository, change, had?.Tag, has?.Tag, had?.Digest, has?.Digest));
        }

        var charts = old.Charts.Keys.Union(@new.Charts.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal)
            .Select(name => (Name: name, Old: old.Charts.GetValueOrDefault(name), New: @new.Charts.GetValueOrDefault(name)))
            .Where(c => c.Old is null || c.New is null || c.Old.Version != c.New.Version || (old.Kind == @new.Kind && c.Old.Digest != c.New.Digest))
            .Select(c => new ChartDiff(c.Name, c.Old?.Version, c.New?.Version))
            .ToList();

        var carried = @new.Contents.Where(c => !old.Contents.ContainsKey(c.Key)).ToList();
        return new ReleaseDiff
        {
            Old = ReleaseSide.Of(old),
            New = ReleaseSide.Of(@new),
            Images = images,
            Charts = charts,
            ValuesAdded = @new.Values.Except(old.Values, StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
            ValuesRemoved = old.Values.Except(@new.Values, StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
            DeltaBlobs = carried.Count,
            DeltaBytes = carried.Sum(c => c.Value),
            FullBytes = @new.Contents.Values.Sum(),
        };
    }

    /// <summary>Images keyed by repository (registry/path); a repository with several tags is keyed by its full reference instead.</summary>
    private static Dictionary<string, (string? Tag, string Digest)?> ByRepository(IReadOnlyDictionary<string, string> images)
    {
        var parsed = images.Select(i => (Text: i.Key, Reference: Reference.TryParse(i.Key, out var r) ? r : null, Digest: i.Value)).ToList();
        var shared = parsed.Where(p => p.Reference is not null).GroupBy(p => p.Reference!.Name, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet(StringComparer.Ordinal);
        var result = new Dictionary<string, (string? Tag, string Digest)?>(StringComparer.Ordinal);
        foreach (var (text, reference, digest) in parsed)
        {
            var key = reference is null || shared.Contains(reference.Name) ? text : reference.Name;
            result[key] = (reference?.Tag, digest);
        }

        return result;
    }
}

/// <summary>One side of a diff: what kind of file, and which release.</summary>
public sealed record ReleaseSide(string Path, string Kind, string Platform, string Version)
{
    public static ReleaseSide Of(DeltaBase release) => new(release.Path, release.KindName, release.Release.Name, release.Release.Version);
}
