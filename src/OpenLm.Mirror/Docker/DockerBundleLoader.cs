using System.Security.Cryptography;
using System.Text.Json;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.EngineLoad;

/// <summary>
/// Loads the images of a signed bundle into a Docker engine (for hosts with an engine and no registry).
/// <list type="number">
/// <item>The bundle is opened as a content source (<see cref="BundleSource"/>): signature first, then every manifest. For
/// each image the manifest of the wanted platform is picked; the configs and layers it needs are spooled to a private
/// temporary directory through the source's verifying fetch, then the rest of the bundle is verified. Charts and other
/// artifacts are skipped.</item>
/// <item>Only when the whole bundle verified: a <c>docker save</c>-format archive (<see cref="DockerArchive"/>) is
/// streamed from the spooled files into the engine's load endpoint. zstd layers are decompressed first (Docker 20.10
/// reads only plain and gzip layers).</item>
/// <item>Every tag must be reported loaded, and the engine's image must have the config's layers (diff_ids).</item>
/// </list>
/// A delta bundle is loaded together with the earlier bundle files it was made against (<see cref="DockerLoadOptions.Bases"/>,
/// read through a <see cref="LayeredBundleSource"/>); without them it is refused.
/// The temporary directory is removed in every case.
/// </summary>
public static class DockerBundleLoader
{
    public static async Task<DockerLoadResult> LoadAsync(string bundlePath, IImageEngine engine, DockerLoadOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(bundlePath);
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(options);
        if (options.RequireSignature && options.Key is null)
        {
            throw new IntegrityException("refusing to load an unverified bundle: the release public key is needed to check its signature") { Remedy = Remedy.ReleaseKey };
        }

        var platform = PlatformMatcher.Normalize(options.Platform ?? engine.Info.Platform);
        var spoolDirectory = CreateSpoolDirectory(options.TempDirectory);
        try
        {
            var spooler = new BundleSpooler(spoolDirectory, platform, options);
            options.Log.Info($"verifying {bundlePath} and spooling the {platform} images to {spoolDirectory}");
            var openOptions = new BundleOpenOptions { Key = options.Key, RequireSignature = options.RequireSignature, TempDirectory = spoolDirectory };
            if (options.Bases.Count > 0)
            {
                options.Log.Info($"reading the blobs {bundlePath} omits from {string.Join(", ", options.Bases)}");
            }

            var bundle = await LayeredBundleSource.OpenAsync(bundlePath, options.Bases, openOptions, "loaded into a Docker engine", cancellationToken).ConfigureAwait(false);
            await using (bundle.ConfigureAwait(false))
            {
                await spooler.SpoolAsync(bundle, cancellationToken).ConfigureAwait(false);
            }

            if (!spooler.Completed || spooler.Head is null)
            {
                throw new InvalidOperationException("the spool finished without verifying the whole bundle");
            }

            var images = await PrepareAsync(spooler, platform, options.Log, cancellationToken).ConfigureAwait(false);
            var skipped = spooler.Candidates.Where(c => c.Skipped is not null).Select(c => c.Skipped!).ToList();
            skipped.AddRange(images.Where(i => i.Skipped is not null).Select(i => i.Skipped!));
            var loadable = images.Where(i => i.Skipped is null).ToList();
            if (loadable.Count == 0)
            {
                if (skipped.Any(s => s.Kind == SkipKind.Platform))
                {
                    throw new InputException($"no image of the bundle has the platform {platform}; choose another platform") { Remedy = Remedy.Platform };
                }

                options.Log.Info("the bundle holds no container images to load");
                return new DockerLoadResult
                {
                    Head = spooler.Head,
                    Platform = platform,
                    Loaded = [],
                    Skipped = skipped,
                    SpooledBytes = spooler.SpooledBytes,
                };
            }

            var archive = BuildArchive(loadable);
            options.Log.Info($"loading {loadable.Count} image(s) into the Docker engine at {engine.Info.Endpoint} ({archive.Length} bytes)");
            IReadOnlyList<string> reported;
            var stream = archive.OpenRead();
            await using (stream.ConfigureAwait(false))
            {
                reported = await engine.LoadAsync(stream, cancellationToken).ConfigureAwait(false);
            }

            var loaded = await ConfirmAsync(engine, loadable, reported, cancellationToken).ConfigureAwait(false);
            return new DockerLoadResult
            {
                Head = spooler.Head,
                Platform = platform,
                Loaded = loaded,
                Skipped = skipped,
                ArchiveBytes = archive.Length,
                SpooledBytes = spooler.SpooledBytes,
            };
        }
        finally
        {
            DeleteQuietly(spoolDirectory);
        }
    }

    /// <summary>An image ready to go into the archive (or skipped after its config was read).</summary>
    private sealed record PreparedImage(LoadCandidate Candidate)
    {
        public Platform Platform { get; init; } = null!;

        public Digest Config { get; init; }

        public IReadOnlyList<string> DiffIds { get; init; } = [];

        public DockerArchiveFile ConfigFile { get; init; } = null!;

        public IReadOnlyList<DockerArchiveFile> LayerFiles { get; init; } = [];

        public SkippedImage? Skipped { get; init; }
    }

    /// <summary>Reads each chosen image's (verified) config, checks it against its manifest, and readies the layer files.</summary>
    private static async Task<List<PreparedImage>> PrepareAsync(BundleSpooler spooler, Platform platform, IMirrorLog log, CancellationToken ct)
    {
        var prepared = new List<PreparedImage>();
        var layerFiles = new Dictionary<Digest, DockerArchiveFile>();
        foreach (var candidate in spooler.Candidates.Where(c => c.IsLoadable))
        {
            var manifest = candidate.Document!;
            var configDescriptor = manifest.Config!;
            var configPath = spooler.Spooled[configDescriptor.Digest];
            var config = ReadConfig(await File.ReadAllBytesAsync(configPath, ct).ConfigureAwait(false), configDescriptor.Digest);
            if (config.Error is not null || config.DiffIds.Count != manifest.Layers.Count)
            {
                var why = config.Error ?? $"its config lists {config.DiffIds.Count} layer diff_ids, but its manifest has {manifest.Layers.Count} layers";
                var skip = new SkippedImage(candidate.ReferenceName, candidate.Root.Digest, SkipKind.Unsupported, why);
                log.Warn($"skipping {candidate.ReferenceName}: {why}");
                prepared.Add(new PreparedImage(candidate) { Skipped = skip });
                continue;
            }

            Platform imagePlatform;
            if (candidate.FromIndex)
            {
                imagePlatform = candidate.Manifest!.Platform!;
            }
            else
            {
                imagePlatform = config.Platform ?? new Platform { Os = "unknown", Architecture = "unknown" };
                if (!PlatformMatcher.Matches(platform, imagePlatform))
                {
                    log.Warn($"{candidate.ReferenceName} is a single-platform {imagePlatform} image; loading it although {platform} was asked for");
                }
            }

            var files = new List<DockerArchiveFile>();
            for (var i = 0; i < manifest.Layers.Count; i++)
            {
                var layer = manifest.Layers[i];
                if (!layerFiles.TryGetValue(layer.Digest, out var file))
                {
                    var path = spooler.Spooled[layer.Digest];
                    var size = layer.Size;
                    if (LayerFiles.IsZstd(path))
                    {
                        var tar = path + ".tar";
                        size = await LayerFiles.DecompressZstdAsync(path, tar, layer.Digest, config.DiffIds[i], ct).ConfigureAwait(false);
                        File.Delete(path);
                        path = tar;
                    }

                    file = new DockerArchiveFile(DockerArchive.LayerName(layer.Digest), path, size);
                    layerFiles[layer.Digest] = file;
                }

                files.Add(file);
            }

            prepared.Add(new PreparedImage(candidate)
            {
                Platform = imagePlatform,
                Config = configDescriptor.Digest,
                DiffIds = config.DiffIds,
                ConfigFile = new DockerArchiveFile(DockerArchive.ConfigName(configDescriptor.Digest), configPath, configDescriptor.Size),
                LayerFiles = files,
            });
        }

        CheckTagCollisions(prepared.Where(p => p.Skipped is null));
        return prepared;
    }

    /// <summary>Two different images must not end up under one tag (e.g. <c>a:1</c> and <c>a:1@sha256:…</c> in one bundle).</summary>
    private static void CheckTagCollisions(IEnumerable<PreparedImage> images)
    {
        var clashes = images
            .GroupBy(i => i.Candidate.Tag, StringComparer.Ordinal)
            .Where(g => g.Select(i => i.Candidate.Manifest!.Digest).Distinct().Count() > 1)
            .Select(g => $"{g.Key} <- {string.Join(", ", g.Select(i => i.Candidate.ReferenceName))}")
            .ToList();
        if (clashes.Count > 0)
        {
            throw new InputException($"different images would get the same tag: {string.Join("; ", clashes)}");
        }
    }

    /// <summary>One <c>manifest.json</c> entry per distinct image (config and layers), with all of its tags.</summary>
    private static DockerArchive BuildArchive(IReadOnlyList<PreparedImage> images)
    {
        var entries = images
            .GroupBy(i => string.Join('\n', i.LayerFiles.Select(l => l.Name).Prepend(i.ConfigFile.Name)), StringComparer.Ordinal)
            .Select(g => new DockerArchiveImage(
                g.First().ConfigFile,
                g.Select(i => i.Candidate.Tag).Distinct(StringComparer.Ordinal).ToList(),
                g.First().LayerFiles))
            .ToList();
        return new DockerArchive(entries);
    }

    /// <summary>Every tag must be reported loaded, and must now name an image with the config's layers.</summary>
    private static async Task<List<LoadedImage>> ConfirmAsync(IImageEngine engine, IReadOnlyList<PreparedImage> images, IReadOnlyList<string> reported, CancellationToken ct)
    {
        var reportedNames = reported.Select(Normalize).ToHashSet(StringComparer.Ordinal);
        var missing = images.Select(i => i.Candidate.Tag).Distinct(StringComparer.Ordinal).Where(t => !reportedNames.Contains(Normalize(t))).ToList();
        if (missing.Count > 0)
        {
            throw new OperationException(
                $"the Docker engine did not report loading {string.Join(", ", missing)} (it reported: {(reported.Count == 0 ? "nothing" : string.Join(", ", reported))})");
        }

        var loaded = new List<LoadedImage>();
        foreach (var image in images)
        {
            var tag = image.Candidate.Tag;
            var held = await engine.InspectAsync(tag, ct).ConfigureAwait(false)
                ?? throw new OperationException($"the Docker engine reported loading {tag}, but has no such image now");
            if (!held.DiffIds.SequenceEqual(image.DiffIds, StringComparer.Ordinal))
            {
                throw new OperationException(
                    $"{tag} in the Docker engine has layers [{string.Join(", ", held.DiffIds)}], not the loaded image's [{string.Join(", ", image.DiffIds)}] (was it re-tagged meanwhile?)");
            }

            var manifest = image.Candidate.Document!;
            loaded.Add(new LoadedImage
            {
                Reference = image.Candidate.ReferenceName,
                Tag = tag,
                Digest = image.Candidate.Root.Digest,
                Manifest = image.Candidate.Manifest!.Digest,
                Platform = image.Platform,
                Config = image.Config,
                ImageId = held.Id,
                Layers = manifest.Layers.Count,
                Size = manifest.Config!.Size + manifest.Layers.Sum(l => l.Size),
            });
        }

        return loaded;
    }

    /// <summary><c>name:tag</c> as a comparable, fully qualified string (the engine prints familiar names such as <c>mongo:7</c>).</summary>
    private static string Normalize(string reference) =>
        Reference.TryParse(reference, out var parsed) ? $"{parsed.Name}:{parsed.Tag}" : reference;

    private sealed record ImageConfig(Platform? Platform, IReadOnlyList<string> DiffIds, string? Error);

    /// <summary>The parts of an image config the loader checks: platform and <c>rootfs.diff_ids</c>.</summary>
    private static ImageConfig ReadConfig(byte[] bytes, Digest digest)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return new ImageConfig(null, [], $"its config {digest.Short} is not a JSON object");
            }

            string? Text(string name) => root.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
            var os = Text("os");
            var architecture = Text("architecture");
            var platform = string.IsNullOrEmpty(os) || string.IsNullOrEmpty(architecture)
                ? null
                : new Platform { Os = os, Architecture = architecture, Variant = string.IsNullOrEmpty(Text("variant")) ? null : Text("variant") };

            var diffIds = new List<string>();
            if (root.TryGetProperty("rootfs", out var rootfs) && rootfs.ValueKind == JsonValueKind.Object
                && rootfs.TryGetProperty("diff_ids", out var ids) && ids.ValueKind == JsonValueKind.Array)
            {
                foreach (var id in ids.EnumerateArray())
                {
                    if (id.ValueKind != JsonValueKind.String || !Digest.TryParse(id.GetString(), out _))
                    {
                        return new ImageConfig(platform, [], $"its config {digest.Short} has a malformed rootfs.diff_ids entry");
                    }

                    diffIds.Add(id.GetString()!);
                }
            }
            else
            {
                return new ImageConfig(platform, [], $"its config {digest.Short} has no rootfs.diff_ids");
            }

            return new ImageConfig(platform, diffIds, null);
        }
        catch (JsonException ex)
        {
            return new ImageConfig(null, [], $"its config {digest.Short} is not valid JSON: {ex.Message}");
        }
    }

    /// <summary>A new directory only this user can read (<c>openlm-load-&lt;random&gt;</c>).</summary>
    private static string CreateSpoolDirectory(string? parent)
    {
        var root = string.IsNullOrEmpty(parent) ? Path.GetTempPath() : Path.GetFullPath(parent);
        if (!Directory.Exists(root))
        {
            throw new InputException($"temporary directory '{parent}' does not exist");
        }

        var path = Path.Combine(root, "openlm-load-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)));
        try
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(path);
            }
            else
            {
                Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OperationException($"cannot create a temporary directory in '{root}': {ex.Message}", ex);
        }

        return path;
    }

    private static void DeleteQuietly(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }
}
