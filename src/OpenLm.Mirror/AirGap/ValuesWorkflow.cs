using System.Globalization;
using System.Text;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.AirGap;

/// <summary>What to write for the air-gapped registry; at least one of the three outputs must be asked for.</summary>
public sealed record ValuesRequest
{
    public required string BundlePath { get; init; }

    /// <summary>The registry the bundle was imported into, <c>HOST[:PORT][/PREFIX]</c>; null only with <see cref="HelmValuesOptions.NoRegistry"/>.</summary>
    public string? Target { get; init; }

    /// <summary>The import's name-mapping rules, <c>FROM=TO</c>.</summary>
    public IReadOnlyList<string> Maps { get; init; } = [];

    /// <summary>The import's path-component limit (names deeper are flattened); null: the host's own limit.</summary>
    public int? MaxPathComponents { get; init; }

    /// <summary>The release public key; without one the signature is not checked (and a warning says so).</summary>
    public VerificationKey? Key { get; init; }

    /// <summary>Where the Helm values go: an override file, or <see cref="ValuesInput"/> rewritten.</summary>
    public string? ValuesOutput { get; init; }

    /// <summary>The customer's values file to rewrite into <see cref="ValuesOutput"/> (comments and layout kept); the same path rewrites it in place.</summary>
    public string? ValuesInput { get; init; }

    public HelmValuesOptions Helm { get; init; } = new();

    /// <summary>Where a k3s/RKE2 <c>registries.yaml</c> goes.</summary>
    public string? K3sRegistriesOutput { get; init; }

    /// <summary>Where the containerd <c>DIR/&lt;registry&gt;/hosts.toml</c> tree goes.</summary>
    public string? ContainerdHostsDirectory { get; init; }

    public NodeMirrorOptions Nodes { get; init; } = new();

    /// <summary>Replace existing output files (the values file rewritten in place is always replaced).</summary>
    public bool Overwrite { get; init; }

    /// <summary>
    /// The top-level chart (one Helm release) the values are for. Needed when the bundle holds several charts and
    /// <see cref="ValuesOutput"/> is a file; with a directory instead, one <c>&lt;chart&gt;.values-airgap.yaml</c> per chart is written.
    /// </summary>
    public string? Chart { get; init; }

    /// <summary>Where to write each chart of the bundle as its <c>.tgz</c> (<c>&lt;name&gt;-&lt;version&gt;.tgz</c>), verified.</summary>
    public string? ChartOutputDirectory { get; init; }
}

/// <summary>One Helm values file written: for which chart (null when the bundle lists none), where, and how many image paths it sets.</summary>
public sealed record ValuesFileWritten(string? Chart, string? ChartVersion, string Path, int ImagePaths, Reference? ChartTarget);

/// <summary>What <see cref="ValuesWorkflow.RunAsync"/> wrote.</summary>
public sealed record ValuesResult
{
    /// <summary>The bundle with the target's naming rule; null with no registry (see <see cref="Head"/> and <see cref="Roots"/>).</summary>
    public AirGapBundle? Bundle { get; init; }

    /// <summary>The bundle's checked head.</summary>
    public required BundleHead Head { get; init; }

    /// <summary>Every root of the bundle (images and charts).</summary>
    public required IReadOnlyList<BundleRoot> Roots { get; init; }

    /// <summary>The values paths set, one per recorded path of each image.</summary>
    public required IReadOnlyList<HelmImageUse> ImageUses { get; init; }

    /// <summary>True when <see cref="ValuesRequest.ValuesInput"/> was rewritten in place.</summary>
    public bool RewroteInPlace { get; init; }

    /// <summary>What the rewrite could not do as asked (also logged).</summary>
    public IReadOnlyList<string> RewriteWarnings { get; init; } = [];

    /// <summary>The containerd hosts.toml files written (full paths under the requested directory).</summary>
    public IReadOnlyList<string> ContainerdHostsFiles { get; init; } = [];

    /// <summary>Images containerd cannot redirect because the mapping renames their repository.</summary>
    public IReadOnlyList<ImageMapping> NotRedirected { get; init; } = [];

    /// <summary>The Helm values files written, one per chart (Helm release).</summary>
    public IReadOnlyList<ValuesFileWritten> ValuesFiles { get; init; } = [];

    /// <summary>The chart archives written to <see cref="ValuesRequest.ChartOutputDirectory"/>.</summary>
    public IReadOnlyList<string> ChartArchives { get; init; } = [];
}

/// <summary>
/// Helm values (an override file, or the customer's values file rewritten) and node mirror configuration for the
/// air-gapped registry (or, with no registry, for nodes that hold the images), from the bundle's head and the charts it
/// holds (no network). Everything is built in memory and every refusal
/// (collisions, existing files) comes first: nothing is written unless every piece can be.
/// </summary>
public static class ValuesWorkflow
{
    public static async Task<ValuesResult> RunAsync(ValuesRequest request, IMirrorLog log, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(log);
        Validate(request);
        var (bundle, head) = await OpenAsync(request, log, cancellationToken).ConfigureAwait(false);
        var roots = bundle?.Roots ?? AirGapBundle.RootsOf(head);
        var uses = ImageUses(head.Manifest, log);
        IReadOnlyList<BundleChartDefaults> charts = [];

        // One pass over the bundle serves both the chart defaults and the chart archives.
        var chartSource = head.Manifest.Charts.Count > 0 && (request.ValuesOutput is not null || request.ChartOutputDirectory is not null)
            ? await BundleCharts.OpenAsync(request.BundlePath, request.Key, cancellationToken).ConfigureAwait(false)
            : null;
        Outputs outputs;
        try
        {
            if (chartSource is not null)
            {
                charts = await BundleCharts.ReadAsync(chartSource, cancellationToken).ConfigureAwait(false);
            }

            outputs = Build(request, bundle?.Mapper, roots, uses, charts, log);
            RefuseUnsafeOutputs(request, outputs);
            await WriteChartArchivesAsync(request, chartSource, charts, log, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (chartSource is not null)
            {
                await chartSource.DisposeAsync().ConfigureAwait(false);
            }
        }

        foreach (var warning in outputs.RewriteWarnings)
        {
            log.Warn(warning);
        }

        Write(request, outputs);
        if (outputs.Hosts is { NotRedirected.Count: > 0 } hosts)
        {
            log.Warn($"containerd cannot redirect {hosts.NotRedirected.Count} image(s) whose repository the mapping renames; " +
                     "pods must name them by their air-gapped names (the Helm values do), or use k3s/RKE2 rewrites: " +
                     string.Join(", ", hosts.NotRedirected.Select(m => m.Source.ToString())));
        }

        return new ValuesResult
        {
            Bundle = bundle,
            Head = head,
            Roots = roots,
            ImageUses = uses,
            RewroteInPlace = outputs.InPlace,
            RewriteWarnings = outputs.RewriteWarnings,
            ContainerdHostsFiles = HostsFiles(request, outputs.Hosts),
            NotRedirected = outputs.Hosts?.NotRedirected ?? [],
            ValuesFiles = outputs.Values.Select(v => v.Written).ToList(),
            ChartArchives = request.ChartOutputDirectory is null ? [] : charts.Select(c => Path.Combine(request.ChartOutputDirectory, c.ArchiveFileName)).ToList(),
        };
    }

    /// <summary>The checked head, and with a registry the naming rule for it (collisions refused here).</summary>
    private static async Task<(AirGapBundle? Bundle, BundleHead Head)> OpenAsync(ValuesRequest request, IMirrorLog log, CancellationToken cancellationToken)
    {
        if (!request.Helm.NoRegistry)
        {
            var bundle = await AirGapBundle.OpenAsync(request.BundlePath, request.Target!, request.Maps, request.Key, log, cancellationToken, request.MaxPathComponents).ConfigureAwait(false);
            return (bundle, bundle.Head);
        }

        var head = await BundleInspector.InspectAsync(request.BundlePath, request.Key, cancellationToken).ConfigureAwait(false);
        if (request.Key is null)
        {
            log.Warn($"signature not checked: no release key given, so nothing proves '{request.BundlePath}' is the bundle your vendor released", Remedy.ReleaseKey);
        }

        return (null, head);
    }

    /// <summary>Every refusal came first; the chart archives go out (verified) before the values that name them.</summary>
    private static async Task WriteChartArchivesAsync(ValuesRequest request, BundleSource? chartSource, IReadOnlyList<BundleChartDefaults> charts, IMirrorLog log, CancellationToken cancellationToken)
    {
        if (request.ChartOutputDirectory is not { } directory)
        {
            return;
        }

        if (chartSource is null || charts.Count == 0)
        {
            log.Warn("the bundle holds no Helm chart; no chart archive was written");
            return;
        }

        await BundleCharts.WriteArchivesAsync(chartSource, charts, directory, request.Overwrite, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// One <see cref="HelmImageUse"/> per values path recorded on the bundle's images, with the digest the bundle holds.
    /// The <see cref="PlatformImageList.GlobalImageRegistryPath"/> entry is a marker (the image's split-key chart honours
    /// <c>global.imageRegistry</c>), not a path to write.
    /// </summary>
    public static IReadOnlyList<HelmImageUse> ImageUses(BundleManifest manifest, IMirrorLog log)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(log);
        var uses = new List<HelmImageUse>();
        foreach (var image in manifest.Images.Where(i => i.Values.Count > 0))
        {
            var source = SourceOf(image, log);
            var usesGlobal = image.Values.Contains(PlatformImageList.GlobalImageRegistryPath, StringComparer.Ordinal);
            foreach (var path in image.Values.Where(p => p != PlatformImageList.GlobalImageRegistryPath))
            {
                var split = path.EndsWith(".*", StringComparison.Ordinal);
                uses.Add(new HelmImageUse(path, source, UsesGlobalImageRegistry: split && usesGlobal));
            }
        }

        if (uses.Count == 0)
        {
            log.Warn("the bundle records no Helm values paths for its images; the values file sets no image");
        }

        return uses;
    }

    /// <summary>The outputs, as text, before anything is written.</summary>
    private sealed record Outputs(IReadOnlyList<ValuesText> Values, bool InPlace, IReadOnlyList<string> RewriteWarnings, string? Registries, ContainerdHostsConfig? Hosts);

    /// <summary>One values file's text and where it goes.</summary>
    private sealed record ValuesText(ValuesFileWritten Written, string Text);

    /// <summary>The name of each chart's values file when the output is a directory.</summary>
    public static string ValuesFileName(string chart) => chart + ".values-airgap.yaml";

    private static void Validate(ValuesRequest request)
    {
        if (request.ValuesOutput is null && request.K3sRegistriesOutput is null && request.ContainerdHostsDirectory is null && request.ChartOutputDirectory is null)
        {
            throw new InputException("nothing to write: ask for the Helm values, the chart archives, a k3s/RKE2 registries.yaml or containerd hosts.toml files")
            {
                Setting = Setting.ValuesOutput,
            };
        }

        if (request.Helm.NoRegistry && (request.Target is not null || request.Maps.Count > 0 || request.K3sRegistriesOutput is not null || request.ContainerdHostsDirectory is not null))
        {
            throw new InputException(
                "with no registry the images keep their source names on the nodes: a target registry, name-mapping rules and node mirror configuration do not apply")
            {
                Setting = request.Target is not null ? Setting.Target : Setting.None,
            };
        }

        if (!request.Helm.NoRegistry && request.Target is null)
        {
            throw new InputException("the registry the bundle was imported into is needed (or say there is none)") { Setting = Setting.Target };
        }

        if (request.ValuesInput is not null && request.ValuesOutput is null)
        {
            throw new InputException("a values file to rewrite needs an output path (give the same path to rewrite it in place)")
            {
                Setting = Setting.ValuesOutput,
                Subject = request.ValuesInput,
            };
        }
    }

    private static Reference SourceOf(BundleImage image, IMirrorLog log)
    {
        if (!Reference.TryParse(image.Reference, out var reference, out var error))
        {
            throw new InputException($"bundle image '{image.Reference}' is not a valid image reference: {error}");
        }

        if (!Digest.TryParse(image.Digest, out var digest, out var digestError))
        {
            throw new InputException($"bundle image '{image.Reference}' has an invalid digest '{image.Digest}': {digestError}");
        }

        if (reference.Tag is null && reference.Digest is { } own && own != digest)
        {
            log.Warn($"bundle image '{image.Reference}' is stored with digest {digest}; the values name that digest");
        }

        return reference.WithDigest(digest);
    }

    private static Outputs Build(
        ValuesRequest request, TargetNameMapper? mapper, IReadOnlyList<BundleRoot> roots, IReadOnlyList<HelmImageUse> uses, IReadOnlyList<BundleChartDefaults> charts, IMirrorLog log)
    {
        var runtimeImages = roots.Where(r => !r.IsChart).Select(r => r.Source).ToList();
        var values = new List<ValuesText>();
        IReadOnlyList<string> warnings = [];
        var inPlace = false;
        if (request.ValuesOutput is { } output)
        {
            var releases = Releases(request, uses, charts, log);
            var toDirectory = IsDirectoryOutput(output) && charts.Count > 0 && request.ValuesInput is null;
            if (releases.Count > 1 && !toDirectory)
            {
                throw new InputException(
                    $"the bundle holds {releases.Count} top-level charts ({string.Join(", ", releases.Select(r => r.Chart!.Listed.Name))}), each installed as its own Helm release, " +
                    (request.ValuesInput is null
                        ? $"so one values file cannot serve them: choose the chart, or give a directory for the values to write {ValuesFileName("<chart>")} for each"
                        : "and a values file is for one of them: choose the chart it belongs to"))
                {
                    Setting = Setting.ValuesChart,
                };
            }

            foreach (var (chart, chartUses) in releases)
            {
                var writer = new HelmValuesWriter(mapper, request.Helm, chart?.Defaults);
                var target = chart is null || mapper is null ? null : mapper.Map(Reference.Parse(chart.Listed.Reference));
                var path = toDirectory ? Path.Combine(output, ValuesFileName(chart!.Listed.Name)) : output;
                var written = new ValuesFileWritten(chart?.Listed.Name, chart?.Listed.Version, path, chartUses.Count, target);
                if (request.ValuesInput is { } input)
                {
                    var rewrite = writer.Rewrite(ReadText(input), chartUses, input);
                    (warnings, inPlace) = (rewrite.Warnings, SamePath(input, output));
                    values.Add(new ValuesText(written, rewrite.Text));
                }
                else
                {
                    values.Add(new ValuesText(written, writer.WriteOverrides(chartUses, InstallHint(chart, target))));
                }
            }
        }

        var registries = request.K3sRegistriesOutput is null ? null : new K3sRegistriesWriter(mapper!, request.Nodes).Write(runtimeImages);
        var hosts = request.ContainerdHostsDirectory is null ? null : new ContainerdHostsWriter(mapper!, request.Nodes).Build(runtimeImages);
        return new Outputs(values, inPlace, warnings, registries, hosts);
    }

    /// <summary>
    /// The image paths of each Helm release. Without charts in the bundle there is one release, unnamed. With charts, a
    /// path goes to every chart whose scan finds it holding that image (two charts may both hold <c>image.*</c>); a path
    /// no chart holds (listed in the platform manifest) goes to the chart whose values have its first key, else to the
    /// first chart, with a warning. <see cref="ValuesRequest.Chart"/> keeps one release.
    /// </summary>
    private static List<(BundleChartDefaults? Chart, List<HelmImageUse> Uses)> Releases(
        ValuesRequest request, IReadOnlyList<HelmImageUse> uses, IReadOnlyList<BundleChartDefaults> charts, IMirrorLog log)
    {
        if (charts.Count == 0)
        {
            if (request.Chart is { } asked)
            {
                throw new InputException($"the bundle holds no Helm chart, so there is no chart '{asked}' to choose") { Setting = Setting.ValuesChart, Subject = asked };
            }

            return [(null, uses.ToList())];
        }

        var releases = charts.Select(c => (Chart: (BundleChartDefaults?)c, Uses: new List<HelmImageUse>())).ToList();
        foreach (var use in uses)
        {
            var reference = (use.Source.Tag is null ? use.Source : use.Source.WithDigest(null)).ToString();
            var holders = releases.Where(r => r.Chart!.Defaults.Holds(use.ValuesPath, reference)).ToList();
            if (holders.Count == 0)
            {
                var first = use.ValuesPath.Split('.')[0];
                var byKey = releases.Where(r => r.Chart!.Defaults.HasTopLevelKey(first)).ToList();
                holders = byKey.Count == 1 ? byKey : [releases[0]];
                if (byKey.Count != 1 && charts.Count > 1)
                {
                    log.Warn($"values path '{use.ValuesPath}' ({use.Source}) is in none of the bundle's charts; it is written for '{holders[0].Chart!.Listed.Name}'");
                }
            }

            foreach (var holder in holders)
            {
                holder.Uses.Add(use);
            }
        }

        if (request.Chart is { } name)
        {
            var chosen = releases.Where(r => r.Chart!.Listed.Name == name).ToList();
            if (chosen.Count == 0)
            {
                throw new InputException(
                    $"the bundle holds no chart '{name}'; its charts are {string.Join(", ", charts.Select(c => c.Listed.Name))}")
                {
                    Setting = Setting.ValuesChart,
                    Subject = name,
                };
            }

            return chosen;
        }

        return releases;
    }


    /// <summary>The install command for a chart, as it lies in the air-gapped registry after import.</summary>
    public static string InstallCommand(string release, Reference chartTarget, string version, string valuesFile)
    {
        ArgumentNullException.ThrowIfNull(chartTarget);

        // Helm's own flags (output content, not this tool's options).
        const string helm = "helm upgrade --install {0} oci://{1}/{2} --version {3} -f <your-values.yaml> -f {4}";
        return string.Format(CultureInfo.InvariantCulture, helm, release, chartTarget.Registry, chartTarget.Repository, version, valuesFile);
    }

    private static string? InstallHint(BundleChartDefaults? chart, Reference? target) =>
        chart is null || target is null ? null : InstallCommand("<release>", target, chart.Listed.Version, "<this-file>");

    /// <summary>An existing directory, or a path written with a trailing separator.</summary>
    private static bool IsDirectoryOutput(string path) =>
        Directory.Exists(path) || path.EndsWith(Path.DirectorySeparatorChar) || path.EndsWith(Path.AltDirectorySeparatorChar);

    private static void RefuseUnsafeOutputs(ValuesRequest request, Outputs outputs)
    {
        if (!request.Overwrite)
        {
            // An existing file that already holds exactly what would be written is no conflict: a rerun of the
            // same command (a runbook step) succeeds and rewrites it with the same bytes.
            var existing = new List<string>();
            if (!outputs.InPlace)
            {
                existing.AddRange(outputs.Values.Where(v => Differs(v.Written.Path, Utf8(v.Text))).Select(v => v.Written.Path));
            }

            if (request.K3sRegistriesOutput is { } k3s && outputs.Registries is { } registries && Differs(k3s, Utf8(registries)))
            {
                existing.Add(k3s);
            }

            if (outputs.Hosts is { } hosts)
            {
                existing.AddRange(hosts.Files
                    .Select(f => (Path: Path.Combine(request.ContainerdHostsDirectory!, f.Directory, ContainerdHostsFile.FileName), Bytes: Encoding.UTF8.GetBytes(f.Content)))
                    .Where(f => Differs(f.Path, f.Bytes))
                    .Select(f => f.Path));
            }

            if (existing.Count > 0)
            {
                var list = string.Join(", ", existing.Select(p => $"'{p}'"));
                throw new InputException($"refusing to overwrite {list}") { Remedy = Remedy.Overwrite, Subject = list };
            }
        }

        var valuesFiles = outputs.Values.Select(v => v.Written.Path);
        foreach (var (path, setting) in valuesFiles.Select(p => ((string?)p, Setting.ValuesOutput)).Append((request.K3sRegistriesOutput, Setting.K3sRegistriesOutput)))
        {
            if (path is not null && Directory.Exists(path))
            {
                throw new InputException($"'{path}' is a directory") { Setting = setting, Subject = path };
            }
        }

        if (outputs.Values.Any(v => SamePath(v.Written.Path, request.K3sRegistriesOutput)))
        {
            throw new InputException("the Helm values and the k3s registries.yaml would be the same file")
            {
                Setting = Setting.K3sRegistriesOutput,
                Subject = request.K3sRegistriesOutput,
            };
        }
    }

    private static byte[] Utf8(string text) => new UTF8Encoding(false).GetBytes(text);

    /// <summary>True when <paramref name="path"/> exists (as anything) and does not hold exactly <paramref name="bytes"/>.</summary>
    private static bool Differs(string path, byte[] bytes)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        try
        {
            var info = new FileInfo(path);
            return info.Length != bytes.Length || !File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    private static void Write(ValuesRequest request, Outputs outputs)
    {
        try
        {
            foreach (var values in outputs.Values)
            {
                var directory = Path.GetDirectoryName(Path.GetFullPath(values.Written.Path));
                if (directory is not null)
                {
                    Directory.CreateDirectory(directory);
                }

                WriteFile(values.Written.Path, values.Text);
            }

            if (outputs.Registries is not null)
            {
                WriteFile(request.K3sRegistriesOutput!, outputs.Registries);
            }

            if (outputs.Hosts is not null)
            {
                ContainerdHostsWriter.WriteTo(outputs.Hosts, request.ContainerdHostsDirectory!);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OperationException($"cannot write output: {ex.Message}", ex);
        }
    }

    private static List<string> HostsFiles(ValuesRequest request, ContainerdHostsConfig? hosts) =>
        hosts?.Files.Select(f => Path.Combine(request.ContainerdHostsDirectory!, f.Directory, ContainerdHostsFile.FileName)).ToList() ?? [];

    /// <summary>Reads a text file keeping a byte order mark as U+FEFF (the rewriter keeps it byte for byte).</summary>
    private static string ReadText(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new InputException($"values file '{path}' does not exist", ex) { Setting = Setting.ValuesInput, Subject = path };
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"cannot read values file '{path}': {ex.Message}", ex) { Setting = Setting.ValuesInput, Subject = path };
        }

        try
        {
            return new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException ex)
        {
            throw new InputException($"values file '{path}' is not UTF-8 text", ex) { Setting = Setting.ValuesInput, Subject = path };
        }
    }

    /// <summary>Writes through a temporary sibling and a rename; an existing file keeps its permissions.</summary>
    private static void WriteFile(string path, string text)
    {
        UnixFileMode? mode = null;
        if (!OperatingSystem.IsWindows() && File.Exists(path))
        {
            mode = File.GetUnixFileMode(path);
        }

        AtomicFile.WriteAllBytes(path, new UTF8Encoding(false).GetBytes(text));
        if (mode is { } m && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, m);
        }
    }

    private static bool SamePath(string? a, string? b) =>
        a is not null && b is not null &&
        string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
}
