using System.Text.RegularExpressions;

namespace OpenLm.Mirror.TestKit;

/// <summary>What kind of top-level object an image of a <see cref="SamplePlatform"/> is.</summary>
public enum SampleImageKind
{
    /// <summary>Docker schema2 image manifest (single platform).</summary>
    DockerImage,
    /// <summary>OCI image manifest (single platform).</summary>
    OciImage,
    /// <summary>Docker manifest list whose children are Docker schema2 manifests.</summary>
    DockerList,
    /// <summary>OCI image index whose children are OCI image manifests.</summary>
    OciIndex,
    /// <summary>OCI artifact: <c>artifactType</c>, empty config, raw payload layer(s) of a custom media type.</summary>
    Artifact,
    /// <summary>Helm-chart-shaped OCI artifact (Helm config + chart content tar+gzip layer).</summary>
    HelmChart,
}

/// <summary>An os/architecture[/variant] triple.</summary>
public sealed record ImagePlatform(string Os, string Architecture, string? Variant = null)
{
    public static ImagePlatform LinuxAmd64 { get; } = new("linux", "amd64");
    public static ImagePlatform LinuxArm64 { get; } = new("linux", "arm64");
    public static ImagePlatform LinuxArmV7 { get; } = new("linux", "arm", "v7");

    /// <summary>Parses <c>os/arch[/variant]</c>, e.g. <c>linux/arm/v7</c>.</summary>
    public static ImagePlatform Parse(string value)
    {
        var parts = value.Split('/');
        return parts.Length switch
        {
            2 when parts.All(p => p.Length > 0) => new ImagePlatform(parts[0], parts[1]),
            3 when parts.All(p => p.Length > 0) => new ImagePlatform(parts[0], parts[1], parts[2]),
            _ => throw new FormatException($"Invalid platform '{value}', expected os/arch[/variant]."),
        };
    }

    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";
}

/// <summary>A named set of base layers that images can share (one copy per platform).</summary>
/// <param name="Name">Base name referenced by <see cref="SampleImageSpec.BaseName"/>.</param>
/// <param name="LayerSizes">Uncompressed payload bytes of each base layer (tar/gzip overhead comes on top).</param>
public sealed record SampleBase(string Name, IReadOnlyList<long> LayerSizes);

/// <summary>One image (tag) of a <see cref="SamplePlatform"/>.</summary>
/// <param name="Repository">Repository path, e.g. <c>r3q3q2f4/olm-server</c>.</param>
/// <param name="Tag">Tag, e.g. <c>1.0.0</c>.</param>
/// <param name="Kind">Manifest shape.</param>
/// <param name="LayerSizes">
/// Payload bytes of the image's own layers (per platform, on top of the base). For <see cref="SampleImageKind.Artifact"/>
/// one raw payload blob per entry; for <see cref="SampleImageKind.HelmChart"/> the size of a binary file inside the chart
/// (first entry, may be empty).
/// </param>
public sealed record SampleImageSpec(string Repository, string Tag, SampleImageKind Kind, IReadOnlyList<long> LayerSizes)
{
    /// <summary>Name of a <see cref="SampleBase"/> whose layers come first (same digests in every image using it, per platform).</summary>
    public string? BaseName { get; init; }

    /// <summary>
    /// Platforms. For lists/indexes the children (default linux/amd64 + linux/arm64); for single images exactly one
    /// (default linux/amd64); ignored (must be null) for artifacts and charts.
    /// </summary>
    public IReadOnlyList<ImagePlatform>? Platforms { get; init; }

    public string Reference => $"{Repository}:{Tag}";

    public bool IsMultiArch => Kind is SampleImageKind.DockerList or SampleImageKind.OciIndex;

    /// <summary>The effective platform list (empty for artifacts and charts).</summary>
    public IReadOnlyList<ImagePlatform> EffectivePlatforms => Kind switch
    {
        SampleImageKind.DockerList or SampleImageKind.OciIndex => Platforms ?? [ImagePlatform.LinuxAmd64, ImagePlatform.LinuxArm64],
        SampleImageKind.DockerImage or SampleImageKind.OciImage => Platforms ?? [ImagePlatform.LinuxAmd64],
        _ => [],
    };
}

/// <summary>
/// Declarative description of a set of synthetic images ("a platform's worth of images").
/// Everything generated from it is a pure function of the spec and <see cref="Seed"/>.
/// </summary>
public sealed partial class SamplePlatform
{
    public const string DefaultNamespace = "r3q3q2f4";

    public SamplePlatform(int seed, IEnumerable<SampleBase> bases, IEnumerable<SampleImageSpec> images)
    {
        Seed = seed;
        Bases = bases.ToArray();
        Images = images.ToArray();
        Validate();
    }

    public int Seed { get; }
    public IReadOnlyList<SampleBase> Bases { get; }
    public IReadOnlyList<SampleImageSpec> Images { get; }

    /// <summary>Sum of the unique layer payload sizes (base layers counted once per platform). Blobs are slightly larger.</summary>
    public long EstimatedPayloadBytes
    {
        get
        {
            var basesUsed = new HashSet<(string, string)>();
            long total = 0;
            foreach (var image in Images)
            {
                var platforms = image.EffectivePlatforms;
                total += image.LayerSizes.Sum() * Math.Max(1, platforms.Count);
                if (image.BaseName is null) continue;
                var baseSpec = Bases.First(b => b.Name == image.BaseName);
                foreach (var p in platforms)
                {
                    if (basesUsed.Add((image.BaseName, p.ToString()))) total += baseSpec.LayerSizes.Sum();
                }
            }
            return total;
        }
    }

    /// <summary>
    /// A small platform (8 images, ~5 MB): at least one of every <see cref="SampleImageKind"/>, two shared bases,
    /// a 2-arch Docker list and a 3-arch OCI index.
    /// </summary>
    public static SamplePlatform Small(int seed = 1, string @namespace = DefaultNamespace)
    {
        const long K = 1024;
        var ns = @namespace.TrimEnd('/');
        SampleBase[] bases =
        [
            new("base-os", [640 * K, 160 * K]),
            new("base-slim", [256 * K]),
        ];
        SampleImageSpec[] images =
        [
            new($"{ns}/olm-server", "1.0.0", SampleImageKind.DockerImage, [384 * K, 64 * K]) { BaseName = "base-os" },
            new($"{ns}/olm-worker", "1.0.0", SampleImageKind.OciImage, [256 * K]) { BaseName = "base-os" },
            new($"{ns}/olm-gateway", "1.0.0", SampleImageKind.DockerList, [192 * K]) { BaseName = "base-os" },
            new($"{ns}/olm-agent", "1.0.0", SampleImageKind.OciIndex, [128 * K])
            {
                BaseName = "base-slim",
                Platforms = [ImagePlatform.LinuxAmd64, ImagePlatform.LinuxArm64, ImagePlatform.LinuxArmV7],
            },
            new($"{ns}/olm-tools", "1.0.0", SampleImageKind.OciImage, [160 * K]) { BaseName = "base-slim" },
            new($"{ns}/olm-migrate", "1.0.0", SampleImageKind.DockerImage, [200 * K, 24 * K, 8 * K]),
            new($"{ns}/olm-artifact", "1.0.0", SampleImageKind.Artifact, [96 * K]),
            new($"{ns}/charts/olm-platform", "0.1.0", SampleImageKind.HelmChart, [32 * K]),
        ];
        return new SamplePlatform(seed, bases, images);
    }

    /// <summary>
    /// A benchmark-sized platform: <paramref name="imageCount"/> images whose unique payload adds up to about
    /// <paramref name="totalBytes"/>. ~20% of the bytes are two shared bases; kinds cycle through Docker/OCI single-arch
    /// images with a Docker list and an OCI index (amd64+arm64) every 8 images; with ≥ 8 images the last one is an
    /// artifact and with ≥ 10 the one before it a Helm chart.
    /// </summary>
    public static SamplePlatform Synthetic(long totalBytes, int imageCount = 16, int seed = 1, string @namespace = DefaultNamespace)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(totalBytes, 1L << 20);
        ArgumentOutOfRangeException.ThrowIfLessThan(imageCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(imageCount, 10_000);
        var ns = @namespace.TrimEnd('/');
        var rng = new Random(seed);

        SampleImageKind[] cycle =
        [
            SampleImageKind.DockerImage, SampleImageKind.OciImage, SampleImageKind.DockerImage, SampleImageKind.OciIndex,
            SampleImageKind.OciImage, SampleImageKind.DockerImage, SampleImageKind.OciImage, SampleImageKind.DockerList,
        ];
        var kinds = new SampleImageKind[imageCount];
        var baseOf = new string?[imageCount];
        for (var i = 0; i < imageCount; i++)
        {
            kinds[i] = cycle[i % cycle.Length];
            baseOf[i] = (i % 5) switch { 4 => null, 1 or 3 => "base-alpine", _ => "base-debian" };
        }
        if (imageCount >= 8) { kinds[^1] = SampleImageKind.Artifact; baseOf[^1] = null; }
        if (imageCount >= 10) { kinds[^2] = SampleImageKind.HelmChart; baseOf[^2] = null; }

        ImagePlatform[] multi = [ImagePlatform.LinuxAmd64, ImagePlatform.LinuxArm64];
        int ArchCount(int i) => kinds[i] is SampleImageKind.DockerList or SampleImageKind.OciIndex ? multi.Length : 1;

        // Base budget: 20% of the total, debian:alpine = 3:1, one copy per platform actually used.
        var debianArches = new HashSet<string>();
        var alpineArches = new HashSet<string>();
        for (var i = 0; i < imageCount; i++)
        {
            var set = baseOf[i] switch { "base-debian" => debianArches, "base-alpine" => alpineArches, _ => null };
            if (set is null) continue;
            foreach (var p in ArchCount(i) > 1 ? multi : [ImagePlatform.LinuxAmd64]) set.Add(p.ToString());
        }
        var baseBudget = totalBytes / 5;
        var unitDivisor = 3 * debianArches.Count + alpineArches.Count;
        var unit = unitDivisor == 0 ? 0 : baseBudget / unitDivisor;
        var bases = new List<SampleBase>();
        if (debianArches.Count > 0)
        {
            var debian = 3 * unit;
            bases.Add(new SampleBase("base-debian", [Math.Max(1024, debian * 7 / 10), Math.Max(1024, debian - debian * 7 / 10)]));
        }
        if (alpineArches.Count > 0) bases.Add(new SampleBase("base-alpine", [Math.Max(1024, unit)]));
        var ownBudget = totalBytes - unit * unitDivisor;

        var weights = new double[imageCount];
        double effective = 0;
        for (var i = 0; i < imageCount; i++)
        {
            weights[i] = (0.5 + rng.NextDouble()) * (kinds[i] is SampleImageKind.Artifact or SampleImageKind.HelmChart ? 0.25 : 1.0);
            effective += weights[i] * ArchCount(i);
        }

        var images = new List<SampleImageSpec>(imageCount);
        for (var i = 0; i < imageCount; i++)
        {
            var own = Math.Max(1024L, (long)(ownBudget * weights[i] / effective));
            var layerCount = kinds[i] is SampleImageKind.Artifact or SampleImageKind.HelmChart ? 1 : 1 + rng.Next(3);
            var sizes = SplitSizes(own, layerCount, rng);
            var (repo, tag) = kinds[i] switch
            {
                SampleImageKind.HelmChart => ($"{ns}/charts/synth-chart-{i:D2}", "0.1.0"),
                SampleImageKind.Artifact => ($"{ns}/synth-artifact-{i:D2}", "1.0.0"),
                _ => ($"{ns}/synth-{i:D2}", "1.0.0"),
            };
            images.Add(new SampleImageSpec(repo, tag, kinds[i], sizes)
            {
                BaseName = baseOf[i],
                Platforms = ArchCount(i) > 1 ? multi : null,
            });
        }
        return new SamplePlatform(seed, bases, images);
    }

    /// <summary>
    /// The same platform with Docker kinds turned into their OCI counterparts (DockerImage → OciImage, DockerList → OciIndex).
    /// Layer blobs stay byte-identical; configs and manifests change. Useful because skopeo's <c>oci:</c> transport and
    /// umoci skip/refuse Docker-media-type entries of an OCI layout's index.json.
    /// </summary>
    public SamplePlatform WithOciMediaTypesOnly() =>
        new(Seed, Bases, Images.Select(i => i.Kind switch
        {
            SampleImageKind.DockerImage => i with { Kind = SampleImageKind.OciImage },
            SampleImageKind.DockerList => i with { Kind = SampleImageKind.OciIndex },
            _ => i,
        }));

    /// <summary>Generates every blob into <paramref name="directory"/> as a complete OCI image layout (see <see cref="GeneratedPlatform"/>).</summary>
    public GeneratedPlatform WriteLayout(string directory, GenerateOptions? options = null) =>
        Generator.Generate(this, directory, options ?? new GenerateOptions());

    /// <summary>Generates into <paramref name="workDirectory"/> (an OCI layout) and pushes every image to <paramref name="registry"/>.</summary>
    public async Task<GeneratedPlatform> PushAsync(string registry, string workDirectory, RegistryPushOptions? pushOptions = null,
        GenerateOptions? generateOptions = null, CancellationToken cancellationToken = default)
    {
        var generated = WriteLayout(workDirectory, generateOptions);
        await RegistryPusher.PushAsync(generated, registry, pushOptions, cancellationToken).ConfigureAwait(false);
        return generated;
    }

    internal static long[] SplitSizes(long total, int parts, Random rng)
    {
        if (parts <= 1) return [total];
        var weights = Enumerable.Range(0, parts).Select(_ => 0.3 + rng.NextDouble()).ToArray();
        var sum = weights.Sum();
        var sizes = weights.Select(w => Math.Max(1024L, (long)(total * w / sum))).ToArray();
        sizes[0] = Math.Max(1024L, total - sizes.Skip(1).Sum());
        return sizes;
    }

    // Distribution's grammar: path components of lowercase alnum separated by [._-] / __ / -+, tags [\w][\w.-]{0,127}.
    [GeneratedRegex(@"^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*$")]
    private static partial Regex RepositoryRegex();

    [GeneratedRegex(@"^[\w][\w.-]{0,127}$")]
    private static partial Regex TagRegex();

    private void Validate()
    {
        var baseNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var b in Bases)
        {
            if (string.IsNullOrWhiteSpace(b.Name) || !baseNames.Add(b.Name)) throw new ArgumentException($"Duplicate or empty base name '{b.Name}'.");
            if (b.LayerSizes.Count == 0 || b.LayerSizes.Any(s => s < 0)) throw new ArgumentException($"Base '{b.Name}' needs at least one non-negative layer size.");
        }
        var refs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var image in Images)
        {
            if (!RepositoryRegex().IsMatch(image.Repository)) throw new ArgumentException($"Invalid repository name '{image.Repository}'.");
            if (!TagRegex().IsMatch(image.Tag)) throw new ArgumentException($"Invalid tag '{image.Tag}' for {image.Repository}.");
            if (!refs.Add(image.Reference)) throw new ArgumentException($"Duplicate image reference '{image.Reference}'.");
            if (image.LayerSizes.Any(s => s < 0)) throw new ArgumentException($"{image.Reference}: negative layer size.");
            if (image.BaseName is not null && !baseNames.Contains(image.BaseName)) throw new ArgumentException($"{image.Reference}: unknown base '{image.BaseName}'.");
            switch (image.Kind)
            {
                case SampleImageKind.DockerImage or SampleImageKind.OciImage:
                    if (image.Platforms is { Count: not 1 }) throw new ArgumentException($"{image.Reference}: a single-platform image takes exactly one platform.");
                    if (image.LayerSizes.Count == 0 && image.BaseName is null) throw new ArgumentException($"{image.Reference}: an image needs at least one layer.");
                    break;
                case SampleImageKind.DockerList or SampleImageKind.OciIndex:
                    if (image.Platforms is { Count: 0 }) throw new ArgumentException($"{image.Reference}: a list/index needs at least one platform.");
                    if (image.EffectivePlatforms.Select(p => p.ToString()).Distinct().Count() != image.EffectivePlatforms.Count)
                        throw new ArgumentException($"{image.Reference}: duplicate platforms.");
                    if (image.LayerSizes.Count == 0 && image.BaseName is null) throw new ArgumentException($"{image.Reference}: an image needs at least one layer.");
                    break;
                case SampleImageKind.Artifact:
                    if (image.LayerSizes.Count == 0) throw new ArgumentException($"{image.Reference}: an artifact needs at least one payload.");
                    goto case SampleImageKind.HelmChart;
                case SampleImageKind.HelmChart:
                    if (image.BaseName is not null || image.Platforms is not null)
                        throw new ArgumentException($"{image.Reference}: artifacts and charts take neither a base nor platforms.");
                    break;
                default:
                    throw new ArgumentException($"{image.Reference}: unknown kind {image.Kind}.");
            }
        }
    }
}
