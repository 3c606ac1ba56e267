using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.EngineLoad;

/// <summary>One <c>index.json</c> entry of the bundle on its way into the engine.</summary>
internal sealed class LoadCandidate(string referenceName, Descriptor root)
{
    /// <summary>The ref name (full source reference) in the bundle.</summary>
    public string ReferenceName { get; } = referenceName;

    /// <summary>The <c>index.json</c> descriptor (index or manifest).</summary>
    public Descriptor Root { get; } = root;

    /// <summary>The tag it will get in the engine.</summary>
    public string Tag { get; set; } = string.Empty;

    /// <summary>The image manifest chosen (the root itself, or a child of it for the platform).</summary>
    public Descriptor? Manifest { get; set; }

    /// <summary>True when <see cref="Manifest"/> was picked from an index by its platform.</summary>
    public bool FromIndex { get; set; }

    /// <summary>The parsed <see cref="Manifest"/> once it arrived and was found loadable.</summary>
    public ManifestDocument? Document { get; set; }

    public SkippedImage? Skipped { get; set; }

    public bool IsLoadable => Skipped is null && Document is not null;
}

/// <summary>
/// The load's walk over the bundle source: picks each image's manifest for the platform (one graph definition, all
/// manifests verified when the bundle was opened), copies the configs and layers those manifests need to the spool
/// directory through the source's verifying fetch, then verifies the rest of the bundle. Nothing is used until
/// <see cref="Completed"/>.
/// </summary>
internal sealed class BundleSpooler(string spoolDirectory, Platform platform, DockerLoadOptions options)
{
    private const long FreeSpaceMargin = 64L << 20;

    private readonly IMirrorLog _log = options.Log;
    private readonly List<LoadCandidate> _candidates = [];
    private readonly Dictionary<Digest, Descriptor> _needed = [];
    private readonly Dictionary<Digest, string> _spooled = [];

    public BundleHead? Head { get; private set; }

    /// <summary>True once every spooled blob and the rest of the bundle verified.</summary>
    public bool Completed { get; private set; }

    public IReadOnlyList<LoadCandidate> Candidates => _candidates;

    /// <summary>Verified blob files by digest (valid only when <see cref="Completed"/>).</summary>
    public IReadOnlyDictionary<Digest, string> Spooled => _spooled;

    public long SpooledBytes { get; private set; }

    /// <summary>Chooses, spools and verifies: see the type summary.</summary>
    public async Task SpoolAsync(LayeredBundleSource bundle, CancellationToken cancellationToken)
    {
        Plan(bundle.Head);
        foreach (var candidate in _candidates.Where(c => c.Skipped is null))
        {
            Choose(candidate, bundle.Documents);
        }

        CheckFreeSpace();
        foreach (var blob in bundle.Blobs.Where(b => _needed.ContainsKey(b.Digest)))
        {
            await SpoolOneAsync(bundle, blob, cancellationToken).ConfigureAwait(false);
        }

        // Nothing reaches the engine before the whole bundle verified, as with a registry import of every image.
        await bundle.VerifyRemainingAsync(options.ReadProgress, cancellationToken).ConfigureAwait(false);
        Completed = true;
    }

    private async Task SpoolOneAsync(LayeredBundleSource bundle, Descriptor descriptor, CancellationToken cancellationToken)
    {
        var path = Path.Combine(spoolDirectory, descriptor.Digest.Hex);
        var content = await bundle.FetchAsync(descriptor, cancellationToken).ConfigureAwait(false);
        await using (content.ConfigureAwait(false))
        {
            var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await using (file.ConfigureAwait(false))
            {
                // Reading to the end is what checks the digest (IntegrityException on mismatch).
                await content.CopyToAsync(file, 1 << 20, cancellationToken).ConfigureAwait(false);
            }
        }

        _spooled[descriptor.Digest] = path;
        SpooledBytes += descriptor.Size;
    }

    /// <summary>The candidates and their engine tags; name collisions are refused before anything is spooled.</summary>
    private void Plan(BundleHead head)
    {
        Head = head;
        var charts = head.Manifest.Charts.Select(c => c.Reference).ToHashSet(StringComparer.Ordinal);
        var mapper = CreateMapper(head);
        var sources = new List<(LoadCandidate Candidate, Reference Source)>();
        foreach (var descriptor in head.Images)
        {
            var name = descriptor.RefName!;
            var candidate = new LoadCandidate(name, descriptor);
            _candidates.Add(candidate);
            if (charts.Contains(name))
            {
                Skip(candidate, SkipKind.Chart, "a Helm chart, not a container image");
                continue;
            }

            if (!Reference.TryParse(name, out var source, out var error))
            {
                Skip(candidate, SkipKind.Unsupported, $"its name cannot be a Docker tag: {error}");
                continue;
            }

            sources.Add((candidate, source));
        }

        var mapped = mapper?.MapAll(sources.Select(s => s.Source)).ToDictionary(m => m.Source.ToString(), m => m.Target, StringComparer.Ordinal);
        foreach (var (candidate, source) in sources)
        {
            candidate.Tag = DockerTag(mapped is null ? source : mapped[source.ToString()]);
        }
    }

    private TargetNameMapper? CreateMapper(BundleHead head)
    {
        if (options.Target is null)
        {
            return null;
        }

        // The bundle's source (e.g. public.ecr.aws/r3q3q2f4) is the platform prefix that --to replaces.
        var source = head.Manifest.Source;
        if (!string.IsNullOrWhiteSpace(source))
        {
            try
            {
                return new TargetNameMapper(options.Target, source, options.Maps, options.MaxPathComponents);
            }
            catch (InputException ex) when (ex.Message.StartsWith("invalid platform source", StringComparison.Ordinal))
            {
                _log.Warn($"the bundle's source '{source}' is not a registry path ({ex.Message}); using {TargetNameMapper.DefaultPlatformSource}");
            }
        }

        return new TargetNameMapper(options.Target, TargetNameMapper.DefaultPlatformSource, options.Maps, options.MaxPathComponents);
    }

    /// <summary><c>repository:tag</c> for the engine; a digest-only reference gets <see cref="TargetNameMapper.DigestTag"/>.</summary>
    internal static string DockerTag(Reference reference)
    {
        var tag = reference.Tag ?? TargetNameMapper.DigestTag(reference.Digest ?? throw new ArgumentException($"'{reference}' has neither tag nor digest", nameof(reference)));
        return $"{reference.Name}:{tag}";
    }

    /// <summary>Uses the root (a manifest) or picks its child for the platform (an index).</summary>
    private void Choose(LoadCandidate candidate, IReadOnlyDictionary<Digest, ManifestDocument> documents)
    {
        var root = documents[candidate.Root.Digest];
        if (!root.IsIndex)
        {
            candidate.Manifest = candidate.Root;
            Accept(candidate, root);
            return;
        }

        var platformChildren = ImageGraph.Dependencies(root).Where(e => e.IsManifest).Select(e => e.Descriptor).ToList();
        var child = PlatformMatcher.SelectManifest(platformChildren, platform);
        if (child is null)
        {
            Skip(candidate, SkipKind.Platform, $"no {platform} image (it has {PlatformMatcher.Describe(platformChildren)})");
            return;
        }

        candidate.Manifest = child;
        candidate.FromIndex = true;
        Accept(candidate, documents[child.Digest]);
    }

    /// <summary>The chosen manifest: load it if it is a container image, and note the blobs it needs.</summary>
    private void Accept(LoadCandidate candidate, ManifestDocument manifest)
    {
        if (manifest.IsIndex || manifest.Config is null)
        {
            Skip(candidate, SkipKind.Unsupported, "its platform entry is itself an index (nested indexes are not supported)");
            return;
        }

        var config = manifest.Config;
        if (config.MediaType == MediaTypes.HelmConfig)
        {
            Skip(candidate, SkipKind.Chart, "a Helm chart, not a container image");
            return;
        }

        if (config.MediaType is not (MediaTypes.OciConfig or MediaTypes.DockerConfig))
        {
            var type = manifest.ArtifactType is { } artifactType ? $"artifact type {artifactType}" : $"config type {config.MediaType}";
            Skip(candidate, SkipKind.Artifact, $"an OCI artifact, not a container image ({type})");
            return;
        }

        var odd = manifest.Layers.FirstOrDefault(l => !LayerFiles.IsFilesystemLayer(l.MediaType));
        if (odd is not null)
        {
            Skip(candidate, SkipKind.Artifact, $"layer {odd.Digest.Short} has media type {odd.MediaType}, which is not a container filesystem layer");
            return;
        }

        candidate.Document = manifest;
        foreach (var blob in manifest.Layers.Prepend(config))
        {
            _needed.TryAdd(blob.Digest, blob);
        }
    }

    private void Skip(LoadCandidate candidate, SkipKind kind, string reason)
    {
        candidate.Skipped = new SkippedImage(candidate.ReferenceName, candidate.Root.Digest, kind, reason);
        var message = $"skipping {candidate.ReferenceName}: {reason}";
        if (kind is SkipKind.Platform or SkipKind.Unsupported)
        {
            _log.Warn(message);
        }
        else
        {
            _log.Info(message);
        }
    }

    /// <summary>Refuses early (before hours of spooling) when the spool directory's file system cannot hold the blobs.</summary>
    private void CheckFreeSpace()
    {
        var needed = _needed.Values.Sum(d => d.Size);
        long available;
        try
        {
            available = new DriveInfo(spoolDirectory).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return;
        }

        if (available < needed + FreeSpaceMargin)
        {
            throw new OperationException(
                $"not enough free space in '{spoolDirectory}' to spool the images for loading: {needed} bytes needed (plus a margin), {available} available; use a temporary directory on a larger file system") { Remedy = Remedy.TempDirectory, Subject = spoolDirectory };
        }
    }
}
