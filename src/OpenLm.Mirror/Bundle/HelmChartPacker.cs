using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace OpenLm.Mirror.Bundle;

/// <summary>A Helm chart stored in an OCI layout as an OCI artifact.</summary>
public sealed record HelmChartArtifact(string Name, string Version, string Reference, Descriptor Manifest);

/// <summary>
/// Packs a Helm chart archive (<c>.tgz</c>) into the OCI form <c>helm push</c> uses: an image manifest whose
/// config (<c>application/vnd.cncf.helm.config.v1+json</c>) is the JSON of the Chart.yaml metadata and whose
/// single layer (<c>application/vnd.cncf.helm.chart.content.v1.tar+gzip</c>) is the .tgz bytes unchanged.
/// </summary>
public static class HelmChartPacker
{
    /// <summary>Largest Chart.yaml read.</summary>
    public const int MaxChartYamlBytes = 1024 * 1024;

    /// <summary>
    /// Stores the chart in <paramref name="layout"/> and tags it <c>&lt;source&gt;/charts/&lt;name&gt;:&lt;version&gt;</c>
    /// (a <c>+</c> in the version becomes <c>_</c>, as Helm does for OCI tags).
    /// </summary>
    public static async Task<HelmChartArtifact> PackAsync(OciLayoutStore layout, string chartArchivePath, string source, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(layout);
        var metadata = await ReadMetadataAsync(chartArchivePath, cancellationToken).ConfigureAwait(false);
        var name = metadata.Name;
        var version = metadata.Version;
        var reference = $"{source.TrimEnd('/')}/charts/{name}:{version.Replace('+', '_')}";
        if (!Reference.TryParse(reference, out _, out var error))
        {
            throw new InputException($"chart '{chartArchivePath}': cannot name it '{reference}': {error}");
        }

        var configBytes = ConfigJson(metadata);
        var config = Descriptor.For(MediaTypes.HelmConfig, configBytes);

        Descriptor layer;
        var archive = OpenArchive(chartArchivePath);
        await using (archive.ConfigureAwait(false))
        {
            layer = new Descriptor
            {
                MediaType = MediaTypes.HelmChart,
                Digest = await Digest.Sha256Async(archive, cancellationToken).ConfigureAwait(false),
                Size = archive.Length,
            };
            archive.Position = 0;
            await layout.PushAsync(layer, archive, cancellationToken).ConfigureAwait(false);
        }

        await layout.PushBytesAsync(config, configBytes, cancellationToken).ConfigureAwait(false);

        var annotations = new JsonObject
        {
            ["org.opencontainers.image.title"] = name,
            ["org.opencontainers.image.version"] = version,
        };
        if (!string.IsNullOrEmpty(metadata.Description))
        {
            annotations["org.opencontainers.image.description"] = metadata.Description;
        }

        var manifestJson = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.OciManifest,
            ["config"] = JsonSerializer.SerializeToNode(config),
            ["layers"] = new JsonArray(JsonSerializer.SerializeToNode(layer)),
            ["annotations"] = annotations,
        };
        var manifestBytes = JsonSerializer.SerializeToUtf8Bytes(manifestJson);
        var manifest = Descriptor.For(MediaTypes.OciManifest, manifestBytes);
        await layout.PushBytesAsync(manifest, manifestBytes, cancellationToken).ConfigureAwait(false);
        await layout.TagAsync(manifest, reference, cancellationToken).ConfigureAwait(false);
        return new HelmChartArtifact(name, version, reference, manifest);
    }

    /// <summary>Chart.yaml metadata (name, version, apiVersion, appVersion, description) from a chart archive.</summary>
    public static async Task<HelmChartMetadata> ReadMetadataAsync(string chartArchivePath, CancellationToken cancellationToken = default)
    {
        var file = OpenArchive(chartArchivePath);
        await using (file.ConfigureAwait(false))
        {
            string? yaml = null;
            try
            {
                var gzip = new GZipStream(file, CompressionMode.Decompress, leaveOpen: true);
                await using (gzip.ConfigureAwait(false))
                {
                    var tar = new TarReader(gzip, leaveOpen: true);
                    await using (tar.ConfigureAwait(false))
                    {
                        while (await tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false) is { } entry)
                        {
                            var parts = entry.Name.TrimStart('.', '/').Split('/');
                            if (parts.Length == 2 && parts[1] == "Chart.yaml" && entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile)
                            {
                                if (entry.Length > MaxChartYamlBytes || entry.DataStream is null)
                                {
                                    throw new InputException($"chart '{chartArchivePath}': {entry.Name} is larger than {MaxChartYamlBytes} bytes");
                                }

                                using var reader = new StreamReader(entry.DataStream, Encoding.UTF8);
                                yaml = await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
                                break;
                            }
                        }
                    }
                }
            }
            catch (InvalidDataException ex)
            {
                throw new InputException($"chart '{chartArchivePath}' is not a gzip-compressed tar (.tgz): {ex.Message}", ex);
            }

            if (yaml is null)
            {
                throw new InputException($"chart '{chartArchivePath}' has no <chart>/Chart.yaml");
            }

            return ParseChartYaml(yaml, chartArchivePath);
        }
    }

    internal static HelmChartMetadata ParseChartYaml(string yaml, string source)
    {
        YamlMappingNode root;
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(yaml));
            root = stream.Documents.Count > 0 && stream.Documents[0].RootNode is YamlMappingNode m
                ? m
                : throw new InputException($"chart '{source}': Chart.yaml is not a mapping");
        }
        catch (YamlException ex)
        {
            throw new InputException($"chart '{source}': Chart.yaml is not valid YAML: {ex.Message}", ex);
        }

        string? Scalar(string key) =>
            root.Children.TryGetValue(new YamlScalarNode(key), out var node) && node is YamlScalarNode s ? s.Value : null;

        var name = Scalar("name");
        var version = Scalar("version");
        if (string.IsNullOrWhiteSpace(name) || string.IsNullOrWhiteSpace(version))
        {
            throw new InputException($"chart '{source}': Chart.yaml needs name and version");
        }

        return new HelmChartMetadata(name, version, Scalar("apiVersion"), Scalar("appVersion"), Scalar("description"));
    }

    /// <summary>The config blob: the metadata as JSON, in the field order Helm writes (name, version, description, apiVersion, appVersion).</summary>
    internal static byte[] ConfigJson(HelmChartMetadata m)
    {
        var o = new JsonObject { ["name"] = m.Name, ["version"] = m.Version };
        if (!string.IsNullOrEmpty(m.Description))
        {
            o["description"] = m.Description;
        }

        if (!string.IsNullOrEmpty(m.ApiVersion))
        {
            o["apiVersion"] = m.ApiVersion;
        }

        if (!string.IsNullOrEmpty(m.AppVersion))
        {
            o["appVersion"] = m.AppVersion;
        }

        return JsonSerializer.SerializeToUtf8Bytes(o);
    }

    private static FileStream OpenArchive(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new InputException($"chart archive '{path}' does not exist", ex);
        }
    }
}

/// <summary>The Chart.yaml fields stored in a chart's OCI config.</summary>
public sealed record HelmChartMetadata(string Name, string Version, string? ApiVersion, string? AppVersion, string? Description);
