using System.Text.Json;
using System.Text.Json.Nodes;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.EngineLoad;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;
using ZstdSharp;
using ZstdSharp.Unsafe;

namespace OpenLm.Mirror.NodeArchive;

/// <summary>How the node archive is compressed, chosen by its file name the way k3s/RKE2 choose how to read it.</summary>
public enum NodeArchiveCompression
{
    /// <summary><c>.tar</c>.</summary>
    None,

    /// <summary><c>.tar.zst</c> / <c>.tzst</c>: one zstd stream whose window is at most <see cref="NodeArchiveWriter.MaxWindowBytes"/>.</summary>
    Zstd,
}

public sealed record NodeArchiveRequest
{
    public required string BundlePath { get; init; }

    /// <summary>The release public key; required unless <see cref="RequireSignature"/> is false.</summary>
    public VerificationKey? Key { get; init; }

    public bool RequireSignature { get; init; } = true;

    /// <summary>The archive to write (<c>.tar</c>, <c>.tar.zst</c> or <c>.tzst</c>).</summary>
    public required string OutputPath { get; init; }

    /// <summary>The platforms to keep of multi-platform images; empty keeps every platform the bundle holds.</summary>
    public IReadOnlyList<Platform> Platforms { get; init; } = [];

    public bool Overwrite { get; init; }

    /// <summary>zstd level (1-19).</summary>
    public int ZstdLevel { get; init; } = 3;
}

/// <summary>One image in the archive: its source reference (the name it gets on the node), its digest, the platforms kept.</summary>
public sealed record NodeArchiveImage(Reference Source, Digest Digest, IReadOnlyList<string> Platforms)
{
    /// <summary>The digest reference the archive also names it by (<c>repo@sha256:…</c>), for pods that pin by digest.</summary>
    public string DigestReference => $"{Source.Name}@{Digest}";
}

public sealed record NodeArchiveResult
{
    public required BundleHead Head { get; init; }

    public required string Path { get; init; }

    public required NodeArchiveCompression Compression { get; init; }

    public required IReadOnlyList<NodeArchiveImage> Images { get; init; }

    /// <summary>Roots left out: Helm charts and other non-image artifacts, and images with none of the asked platforms.</summary>
    public required IReadOnlyList<string> Skipped { get; init; }

    public required int BlobCount { get; init; }

    /// <summary>Sum of the blob sizes (before compression).</summary>
    public required long BlobBytes { get; init; }
}

/// <summary>
/// Writes the bundle's container images as one OCI image layout archive that a node's containerd takes with a plain
/// import: k3s and RKE2 import every archive in <c>/var/lib/rancher/{k3s,rke2}/agent/images/</c> at start, and
/// <c>ctr images import</c> unpacks it with its defaults. Only images go in (a Helm chart artifact would stop
/// containerd's unpack with "mismatched image rootfs and manifest layers"), with every blob of the kept platforms, each
/// image named by its source reference and by its digest reference (<c>io.containerd.image.name</c>). Every blob is
/// streamed from the bundle through its verifier; the archive is written to a temporary sibling and renamed only
/// once every digest matched.
/// </summary>
public static class NodeArchiveWriter
{
    /// <summary>The zstd window k3s's decoder accepts at most (32 MiB); the archive uses 8 MiB.</summary>
    public const long MaxWindowBytes = 32L * 1024 * 1024;

    /// <summary>log2 of the window the archive is compressed with (8 MiB).</summary>
    public const int WindowLog = 23;

    /// <summary>The containerd annotation that names an image on import (the OCI ref name holds only the tag).</summary>
    public const string ContainerdImageName = "io.containerd.image.name";

    private const string RefName = "org.opencontainers.image.ref.name";

    /// <summary>The compression a file name asks for, or an <see cref="InputException"/> for a name k3s would not import.</summary>
    public static NodeArchiveCompression CompressionFor(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var name = System.IO.Path.GetFileName(path);
        if (name.EndsWith(".tar", StringComparison.Ordinal))
        {
            return NodeArchiveCompression.None;
        }

        if (name.EndsWith(".tar.zst", StringComparison.Ordinal) || name.EndsWith(".tzst", StringComparison.Ordinal))
        {
            return NodeArchiveCompression.Zstd;
        }

        throw new InputException($"'{path}': the node archive's name must end in .tar, .tar.zst or .tzst (k3s and RKE2 choose how to read an archive by its extension)")
        {
            Setting = Setting.NodeArchiveOutput,
            Subject = path,
        };
    }

    public static async Task<NodeArchiveResult> WriteAsync(NodeArchiveRequest request, IMirrorLog log, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(log);
        var compression = CompressionFor(request.OutputPath);
        if (request.ZstdLevel is < 1 or > 19)
        {
            throw new InputException($"zstd level {request.ZstdLevel} is out of range (1-19)");
        }

        if (request.RequireSignature && request.Key is null)
        {
            throw new IntegrityException("refusing to use an unverified bundle: the release public key is needed to check its signature") { Remedy = Remedy.ReleaseKey };
        }

        if (Directory.Exists(request.OutputPath))
        {
            throw new InputException($"'{request.OutputPath}' is a directory") { Setting = Setting.NodeArchiveOutput, Subject = request.OutputPath };
        }

        if (File.Exists(request.OutputPath) && !request.Overwrite)
        {
            throw new InputException($"refusing to overwrite '{request.OutputPath}'") { Remedy = Remedy.Overwrite, Subject = request.OutputPath };
        }

        var bundle = await BundleSource.OpenAsync(
            request.BundlePath, new BundleOpenOptions { Key = request.Key, RequireSignature = request.RequireSignature }, cancellationToken).ConfigureAwait(false);
        await using (bundle.ConfigureAwait(false))
        {
            var plan = await PlanAsync(bundle, request.Platforms, cancellationToken).ConfigureAwait(false);
            foreach (var skipped in plan.Skipped)
            {
                log.Info($"not in the node archive: {skipped}");
            }

            if (plan.Images.Count == 0)
            {
                var wanted = string.Join(", ", request.Platforms.Select(p => p.ToString()));
                throw request.Platforms.Count > 0
                    ? new InputException($"no image of the bundle has the platform {wanted}") { Remedy = Remedy.Platform }
                    : new InputException("the bundle holds no container images");
            }

            await WriteArchiveAsync(bundle, plan, request, compression, cancellationToken).ConfigureAwait(false);
            return new NodeArchiveResult
            {
                Head = bundle.Head,
                Path = request.OutputPath,
                Compression = compression,
                Images = plan.Images.Select(i => i.Image).ToList(),
                Skipped = plan.Skipped,
                BlobCount = plan.Blobs.Count,
                BlobBytes = plan.Blobs.Sum(b => b.Size),
            };
        }
    }

    private sealed record PlannedImage(NodeArchiveImage Image, Descriptor Root);

    private sealed record ArchivePlan(List<PlannedImage> Images, List<Descriptor> Blobs, List<string> Skipped);

    /// <summary>Which roots go in, and the distinct blobs (manifests included) they need, in digest order.</summary>
    private static async Task<ArchivePlan> PlanAsync(BundleSource bundle, IReadOnlyList<Platform> platforms, CancellationToken cancellationToken)
    {
        var images = new List<PlannedImage>();
        var skipped = new List<string>();
        var blobs = new SortedDictionary<string, Descriptor>(StringComparer.Ordinal);
        foreach (var root in AirGapBundle.RootsOf(bundle.Head))
        {
            if (root.IsChart)
            {
                skipped.Add($"{root.Source} (a Helm chart; import puts charts in a registry)");
                continue;
            }

            var document = bundle.Documents[root.Descriptor.Digest];
            var manifests = new List<Descriptor>();
            var kept = new List<string>();
            if (document.IsIndex)
            {
                // No platform asked for: everything the bundle holds of the index (attestations included), so an
                // importer that walks all platforms finds every child. Platforms asked for: their image manifests only.
                foreach (var child in document.Manifests.Where(c => MediaTypes.IsImageManifest(c.MediaType) && bundle.Documents.ContainsKey(c.Digest)))
                {
                    if (platforms.Count == 0 || (IsImage(bundle.Documents[child.Digest]) && platforms.Any(p => PlatformMatcher.Matches(p, child.Platform))))
                    {
                        manifests.Add(child);
                        if (child.Platform is { Os: not "unknown" } platform)
                        {
                            kept.Add(platform.ToString());
                        }
                    }
                }

                if (manifests.Count == 0 || (platforms.Count == 0 && kept.Count == 0))
                {
                    skipped.Add($"{root.Source} (none of its manifests is an image of {(platforms.Count == 0 ? "a known platform" : string.Join(", ", platforms.Select(p => p.ToString())))}; it has {PlatformMatcher.Describe(document.Manifests)})");
                    continue;
                }
            }
            else if (IsImage(document))
            {
                var own = await ConfigPlatformAsync(bundle, document.Config!, cancellationToken).ConfigureAwait(false);
                if (platforms.Count > 0 && !platforms.Any(p => PlatformMatcher.Matches(p, own)))
                {
                    skipped.Add($"{root.Source} (a single-platform {own?.ToString() ?? "unknown"} image)");
                    continue;
                }

                manifests.Add(root.Descriptor);
                kept.Add(own?.ToString() ?? "unknown");
            }
            else
            {
                skipped.Add($"{root.Source} (not a container image: config {document.Config?.MediaType ?? "none"})");
                continue;
            }

            blobs[root.Descriptor.Digest.ToString()] = Plain(root.Descriptor);
            foreach (var manifest in manifests)
            {
                blobs[manifest.Digest.ToString()] = Plain(manifest);
                foreach (var edge in ImageGraph.Dependencies(bundle.Documents[manifest.Digest]))
                {
                    blobs[edge.Descriptor.Digest.ToString()] = Plain(edge.Descriptor);
                }
            }

            images.Add(new PlannedImage(new NodeArchiveImage(root.Source, root.Descriptor.Digest, kept), root.Descriptor));
        }

        return new ArchivePlan(images, blobs.Values.ToList(), skipped);
    }

    /// <summary>The platform an image config declares (<c>os</c>, <c>architecture</c>, <c>variant</c>), read through the bundle's verifier.</summary>
    private static async Task<Platform?> ConfigPlatformAsync(BundleSource bundle, Descriptor config, CancellationToken cancellationToken)
    {
        if (config.Size > ManifestDocument.MaxManifestBytes)
        {
            throw new InputException($"image config {config.Digest} is {config.Size} bytes, more than the {ManifestDocument.MaxManifestBytes} a config may be");
        }

        using var buffer = new MemoryStream((int)config.Size);
        var stream = await bundle.FetchAsync(config, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            await stream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            using var json = JsonDocument.Parse(buffer.ToArray());
            var root = json.RootElement;
            string? Text(string name) => root.ValueKind == JsonValueKind.Object && root.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
            return Text("os") is { } os && Text("architecture") is { } architecture
                ? new Platform { Os = os, Architecture = architecture, Variant = Text("variant") }
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static bool IsImage(ManifestDocument manifest) =>
        manifest.Config?.MediaType is MediaTypes.OciConfig or MediaTypes.DockerConfig;

    private static Descriptor Plain(Descriptor descriptor) => new() { MediaType = descriptor.MediaType, Digest = descriptor.Digest, Size = descriptor.Size };

    /// <summary>index.json: each image under its source name and under its digest name.</summary>
    private static byte[] IndexJson(IEnumerable<PlannedImage> images)
    {
        var manifests = new JsonArray();
        foreach (var (image, root) in images)
        {
            var names = new List<(string Name, string? Ref)>();
            if (image.Source.Tag is { } tag)
            {
                names.Add((image.Source.ToString(), tag));
            }

            names.Add((image.DigestReference, null));
            foreach (var (name, refName) in names.DistinctBy(n => n.Name))
            {
                var annotations = new JsonObject { [ContainerdImageName] = name };
                if (refName is not null)
                {
                    annotations[RefName] = refName;
                }

                manifests.Add(new JsonObject
                {
                    ["mediaType"] = root.MediaType,
                    ["digest"] = root.Digest.ToString(),
                    ["size"] = root.Size,
                    ["annotations"] = annotations,
                });
            }
        }

        var index = new JsonObject { ["schemaVersion"] = 2, ["mediaType"] = MediaTypes.OciIndex, ["manifests"] = manifests };
        return JsonSerializer.SerializeToUtf8Bytes(index);
    }

    private static async Task WriteArchiveAsync(BundleSource bundle, ArchivePlan plan, NodeArchiveRequest request, NodeArchiveCompression compression, CancellationToken cancellationToken)
    {
        var output = System.IO.Path.GetFullPath(request.OutputPath);
        var temporary = output + ".partial-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.Asynchronous);
            await using (file.ConfigureAwait(false))
            {
                Stream sink = file;
                CompressionStream? zstd = null;
                if (compression == NodeArchiveCompression.Zstd)
                {
                    zstd = new CompressionStream(file, request.ZstdLevel, leaveOpen: true);
                    zstd.SetParameter(ZSTD_cParameter.ZSTD_c_windowLog, WindowLog);
                    zstd.SetParameter(ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
                    sink = zstd;
                }

                try
                {
                    await WriteEntryAsync(sink, "oci-layout", """{"imageLayoutVersion":"1.0.0"}"""u8.ToArray(), cancellationToken).ConfigureAwait(false);
                    await WriteEntryAsync(sink, "index.json", IndexJson(plan.Images), cancellationToken).ConfigureAwait(false);
                    foreach (var blob in plan.Blobs)
                    {
                        var name = $"blobs/{blob.Digest.Algorithm}/{blob.Digest.Hex}";
                        await sink.WriteAsync(TarHeaders.RegularFile(name, blob.Size, 0), cancellationToken).ConfigureAwait(false);
                        var source = await bundle.FetchAsync(blob, cancellationToken).ConfigureAwait(false);
                        await using (source.ConfigureAwait(false))
                        {
                            // The bundle's verifying stream fails at its end on a size or digest mismatch.
                            await source.CopyToAsync(sink, 1 << 20, cancellationToken).ConfigureAwait(false);
                        }

                        await sink.WriteAsync(new byte[TarHeaders.Padding(blob.Size)], cancellationToken).ConfigureAwait(false);
                    }

                    await sink.WriteAsync(TarHeaders.EndOfArchive, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    if (zstd is not null)
                    {
                        await zstd.DisposeAsync().ConfigureAwait(false);
                    }
                }

                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            File.Move(temporary, output, overwrite: request.Overwrite);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OperationException($"cannot write the node archive '{request.OutputPath}': {ex.Message}", ex);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    private static async Task WriteEntryAsync(Stream sink, string name, byte[] content, CancellationToken cancellationToken)
    {
        await sink.WriteAsync(TarHeaders.RegularFile(name, content.Length, 0), cancellationToken).ConfigureAwait(false);
        await sink.WriteAsync(content, cancellationToken).ConfigureAwait(false);
        await sink.WriteAsync(new byte[TarHeaders.Padding(content.Length)], cancellationToken).ConfigureAwait(false);
    }
}
