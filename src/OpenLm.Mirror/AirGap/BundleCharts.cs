using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.AirGap;

/// <summary>A top-level chart of a bundle: how the bundle lists it, its defaults, and its chart archive's descriptor.</summary>
public sealed record BundleChartDefaults(BundleChart Listed, ChartDefaults Defaults, Descriptor Archive)
{
    /// <summary>The file name <c>helm package</c> gives the chart: <c>&lt;name&gt;-&lt;version&gt;.tgz</c>.</summary>
    public string ArchiveFileName => $"{Listed.Name}-{Listed.Version}.tgz";
}

/// <summary>
/// Reads the Helm charts a bundle holds (each an OCI artifact whose one layer is the chart's <c>.tgz</c>, unchanged)
/// through <see cref="BundleSource"/>: every byte is verified against its digest before the chart is parsed or copied out.
/// </summary>
public static class BundleCharts
{
    /// <summary>The bundle opened for its charts (signature checked when a key is given); read and write through it.</summary>
    public static Task<BundleSource> OpenAsync(string bundlePath, VerificationKey? key, CancellationToken cancellationToken = default) =>
        BundleSource.OpenAsync(bundlePath, new BundleOpenOptions { Key = key, RequireSignature = key is not null }, cancellationToken);

    /// <summary>Each chart the bundle lists, with its defaults.</summary>
    public static async Task<IReadOnlyList<BundleChartDefaults>> ReadAsync(BundleSource bundle, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        var charts = new List<BundleChartDefaults>();
        foreach (var listed in bundle.Head.Manifest.Charts)
        {
            charts.Add(await ReadOneAsync(bundle, listed, cancellationToken).ConfigureAwait(false));
        }

        return charts;
    }

    /// <summary>Where <see cref="WriteArchivesAsync"/> puts each chart, and what stops it (a file in the way, existing archives without <paramref name="overwrite"/>).</summary>
    public static IReadOnlyList<string> ArchivePaths(IReadOnlyList<BundleChartDefaults> charts, string directory, bool overwrite)
    {
        ArgumentNullException.ThrowIfNull(charts);
        if (File.Exists(directory))
        {
            throw new InputException($"'{directory}' is a file, not a directory for the chart archives") { Setting = Setting.ChartOutputDirectory, Subject = directory };
        }

        var paths = charts.Select(c => Path.Combine(directory, c.ArchiveFileName)).ToList();
        var existing = paths.Where(File.Exists).Select(p => $"'{p}'").ToList();
        if (existing.Count > 0 && !overwrite)
        {
            var list = string.Join(", ", existing);
            throw new InputException($"refusing to overwrite {list}") { Remedy = Remedy.Overwrite, Subject = list };
        }

        return paths;
    }

    /// <summary>Writes each chart's <c>.tgz</c> into <paramref name="directory"/> (temporary file, then rename once its digest matched).</summary>
    public static async Task WriteArchivesAsync(
        BundleSource bundle, IReadOnlyList<BundleChartDefaults> charts, string directory, bool overwrite, CancellationToken cancellationToken = default)
    {
        ArchivePaths(charts, directory, overwrite);
        await WriteArchivesAsync(bundle, charts, directory, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<BundleChartDefaults> ReadOneAsync(BundleSource bundle, BundleChart listed, CancellationToken cancellationToken)
    {
        var (descriptor, bytes) = await bundle.FetchManifestAsync(listed.Reference, cancellationToken).ConfigureAwait(false);
        var manifest = ManifestDocument.Parse(bytes, descriptor.MediaType, listed.Reference);
        var layers = manifest.Layers.Where(l => l.MediaType == MediaTypes.HelmChart).ToList();
        if (manifest.Config?.MediaType != MediaTypes.HelmConfig || layers.Count != 1)
        {
            throw new InputException(
                $"bundle chart '{listed.Reference}' is not a Helm chart artifact: expected config {MediaTypes.HelmConfig} and one layer {MediaTypes.HelmChart}");
        }

        var archive = layers[0];
        var limit = ChartScanOptions.Default.MaxArchiveBytes;
        if (archive.Size > limit)
        {
            throw new InputException($"bundle chart '{listed.Reference}': its archive is {archive.Size} bytes, more than the {limit} a chart may be");
        }

        // The scanner needs a seekable archive: spool the verified bytes to a temporary file, never to memory.
        var spool = SpoolFile();
        await using (spool.ConfigureAwait(false))
        {
            await CopyVerifiedAsync(bundle, archive, spool, cancellationToken).ConfigureAwait(false);
            spool.Position = 0;
            var defaults = ChartDefaults.Read(spool, $"{listed.Name}-{listed.Version}.tgz");
            return new BundleChartDefaults(listed, defaults, archive);
        }
    }

    private static async Task WriteArchivesAsync(BundleSource bundle, IReadOnlyList<BundleChartDefaults> charts, string directory, CancellationToken cancellationToken)
    {
        var targets = charts.Select(c => (Chart: c, Path: Path.Combine(directory, c.ArchiveFileName))).ToList();
        try
        {
            Directory.CreateDirectory(directory);
            foreach (var (chart, path) in targets)
            {
                var temporary = path + ".partial-" + Guid.NewGuid().ToString("N")[..8];
                try
                {
                    var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, FileOptions.Asynchronous);
                    await using (file.ConfigureAwait(false))
                    {
                        await CopyVerifiedAsync(bundle, chart.Archive, file, cancellationToken).ConfigureAwait(false);
                        await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                    }

                    // Renamed only once every byte matched the digest.
                    File.Move(temporary, path, overwrite: true);
                }
                finally
                {
                    File.Delete(temporary);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OperationException($"cannot write the chart archives to '{directory}': {ex.Message}", ex);
        }
    }

    /// <summary>Copies a blob through the bundle's verifying stream; the copy fails at the end on a size or digest mismatch.</summary>
    private static async Task CopyVerifiedAsync(BundleSource bundle, Descriptor blob, Stream destination, CancellationToken cancellationToken)
    {
        var source = await bundle.FetchAsync(blob, cancellationToken).ConfigureAwait(false);
        await using (source.ConfigureAwait(false))
        {
            await source.CopyToAsync(destination, cancellationToken).ConfigureAwait(false);
        }
    }

    private static FileStream SpoolFile() => new(
        Path.Combine(Path.GetTempPath(), "openlm-chart-" + Guid.NewGuid().ToString("N") + ".tgz"),
        FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 81920, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
}
