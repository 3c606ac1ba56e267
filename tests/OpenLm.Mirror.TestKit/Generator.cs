using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace OpenLm.Mirror.TestKit;

/// <summary>Turns a <see cref="SamplePlatform"/> into blobs + an OCI layout.</summary>
internal static partial class Generator
{
    private const string Created = "2024-01-01T00:00:00Z";
    public const string RefNameAnnotation = "org.opencontainers.image.ref.name";

    public static GeneratedPlatform Generate(SamplePlatform spec, string directory, GenerateOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxParallelism, 1);
        var store = new BlobStore(directory);
        var sizes = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);

        // 1. Plan the distinct layers (shared base layers have the same key → generated once).
        var jobs = new Dictionary<string, LayerJob>(StringComparer.Ordinal);
        LayerJob Plan(LayerJob job) => jobs.TryAdd(job.Key, job) ? job : jobs[job.Key];
        var plans = spec.Images.Select(image => PlanImage(spec, image, Plan)).ToArray();

        // 2. Generate them in parallel, largest first.
        var layers = new ConcurrentDictionary<string, LayerBlob>(StringComparer.Ordinal);
        try
        {
            Parallel.ForEach(
                jobs.Values.OrderByDescending(j => j.Size),
                new ParallelOptions { MaxDegreeOfParallelism = options.MaxParallelism },
                job =>
                {
                    var blob = LayerWriter.Write(job, store, options.LayerCompression);
                    layers[job.Key] = blob;
                    sizes[blob.Digest] = blob.Size;
                });

            // 3. Configs, manifests, indexes.
            var images = plans.Select(p => BuildImage(spec, p, layers, store, sizes)).ToArray();

            // 4. Layout metadata.
            File.WriteAllText(Path.Combine(store.Root, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
            File.WriteAllBytes(Path.Combine(store.Root, "index.json"), LayoutIndex(images));
            return new GeneratedPlatform(spec, store.Root, images, new Dictionary<string, long>(sizes, StringComparer.Ordinal));
        }
        finally
        {
            store.DeleteTemp();
        }
    }

    private sealed record ImagePlan(SampleImageSpec Image, IReadOnlyList<(ImagePlatform? Platform, IReadOnlyList<LayerJob> Layers)> Manifests);

    private static ImagePlan PlanImage(SamplePlatform spec, SampleImageSpec image, Func<LayerJob, LayerJob> plan)
    {
        switch (image.Kind)
        {
            case SampleImageKind.Artifact:
            {
                var payloads = image.LayerSizes.Select((size, i) =>
                {
                    var key = $"artifact|{image.Reference}|{i}";
                    return plan(new LayerJob(key, LayerJobKind.Raw, size, Label(image.Repository, i), Digests.DeriveSeed(spec.Seed, key)));
                }).ToArray();
                return new ImagePlan(image, [(null, payloads)]);
            }
            case SampleImageKind.HelmChart:
            {
                var key = $"chart|{image.Reference}";
                var chartName = image.Repository[(image.Repository.LastIndexOf('/') + 1)..];
                var job = plan(new LayerJob(key, LayerJobKind.HelmChart, image.LayerSizes.Count > 0 ? image.LayerSizes[0] : 0,
                    chartName, Digests.DeriveSeed(spec.Seed, key))
                {
                    ChartName = chartName,
                    ChartVersion = image.Tag,
                    AppVersion = "1.0.0",
                });
                return new ImagePlan(image, [(null, [job])]);
            }
            default:
            {
                var manifests = new List<(ImagePlatform?, IReadOnlyList<LayerJob>)>();
                foreach (var platform in image.EffectivePlatforms)
                {
                    var list = new List<LayerJob>();
                    if (image.BaseName is not null)
                    {
                        var baseSpec = spec.Bases.First(b => b.Name == image.BaseName);
                        for (var i = 0; i < baseSpec.LayerSizes.Count; i++)
                        {
                            var key = $"base|{baseSpec.Name}|{platform}|{i}";
                            list.Add(plan(new LayerJob(key, LayerJobKind.TarGz, baseSpec.LayerSizes[i],
                                Label($"{baseSpec.Name}-{platform}", i), Digests.DeriveSeed(spec.Seed, key))));
                        }
                    }
                    for (var i = 0; i < image.LayerSizes.Count; i++)
                    {
                        var key = $"image|{image.Reference}|{platform}|{i}";
                        list.Add(plan(new LayerJob(key, LayerJobKind.TarGz, image.LayerSizes[i],
                            Label($"{image.Repository}-{image.Tag}-{platform}", i), Digests.DeriveSeed(spec.Seed, key))));
                    }
                    manifests.Add((platform, list));
                }
                return new ImagePlan(image, manifests);
            }
        }
    }

    private static GeneratedImage BuildImage(SamplePlatform spec, ImagePlan plan, IReadOnlyDictionary<string, LayerBlob> layers,
        BlobStore store, ConcurrentDictionary<string, long> sizes)
    {
        var image = plan.Image;
        (string Digest, long Size) Put(byte[] bytes)
        {
            var result = store.Write(bytes);
            sizes[result.Digest] = result.Size;
            return result;
        }

        var docker = image.Kind is SampleImageKind.DockerImage or SampleImageKind.DockerList;
        var manifests = new List<GeneratedManifest>();
        foreach (var (platform, jobs) in plan.Manifests)
        {
            var blobs = jobs.Select(j => layers[j.Key]).ToArray();
            manifests.Add(image.Kind switch
            {
                SampleImageKind.Artifact => BuildArtifact(image, blobs, Put),
                SampleImageKind.HelmChart => BuildChart(image, jobs[0], blobs[0], Put),
                _ => BuildImageManifest(spec, image, platform!, blobs, docker, Put),
            });
        }

        string digest, mediaType;
        long manifestSize;
        string? artifactType = image.Kind == SampleImageKind.Artifact ? MediaTypes.TestArtifact : null;
        if (image.IsMultiArch)
        {
            mediaType = docker ? MediaTypes.DockerManifestList : MediaTypes.OciIndex;
            var bytes = Json.Build(w =>
            {
                w.WriteStartObject();
                w.WriteNumber("schemaVersion", 2);
                w.WriteString("mediaType", mediaType);
                w.WriteStartArray("manifests");
                foreach (var m in manifests) Json.Descriptor(w, m.MediaType, m.Digest, m.Size, m.Platform);
                w.WriteEndArray();
                w.WriteEndObject();
            });
            (digest, manifestSize) = Put(bytes);
        }
        else
        {
            var only = manifests[0];
            (digest, mediaType, manifestSize) = (only.Digest, only.MediaType, only.Size);
        }

        var blobDigests = manifests.SelectMany(m => new[] { m.ConfigDigest }.Concat(m.Layers.Select(l => l.Digest)))
            .Distinct(StringComparer.Ordinal).ToArray();
        var children = image.IsMultiArch ? manifests.Select(m => m.Digest).ToArray() : [];
        var total = manifestSize + children.Distinct().Sum(d => sizes[d]) + blobDigests.Sum(d => sizes[d]);
        return new GeneratedImage(image.Repository, image.Tag, image.Kind, digest, mediaType, manifestSize, total,
            blobDigests, children, manifests, artifactType);
    }

    private static GeneratedManifest BuildImageManifest(SamplePlatform spec, SampleImageSpec image, ImagePlatform platform,
        IReadOnlyList<LayerBlob> blobs, bool docker, Func<byte[], (string Digest, long Size)> put)
    {
        var config = Json.Build(w =>
        {
            w.WriteStartObject();
            w.WriteString("architecture", platform.Architecture);
            w.WriteString("os", platform.Os);
            if (platform.Variant is not null) w.WriteString("variant", platform.Variant);
            w.WriteString("created", Created);
            w.WriteString("author", "OpenLm.Mirror.TestKit");
            w.WriteStartObject("config");
            w.WriteStartArray("Env");
            w.WriteStringValue("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
            w.WriteEndArray();
            w.WriteStartArray("Cmd");
            w.WriteStringValue("/bin/sh");
            w.WriteEndArray();
            w.WriteString("WorkingDir", "/");
            w.WriteStartObject("Labels");
            w.WriteString("org.openlm.test.reference", image.Reference);
            w.WriteString("org.openlm.test.seed", spec.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteStartObject("rootfs");
            w.WriteString("type", "layers");
            w.WriteStartArray("diff_ids");
            foreach (var b in blobs) w.WriteStringValue(b.DiffId);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteStartArray("history");
            for (var i = 0; i < blobs.Count; i++)
            {
                w.WriteStartObject();
                w.WriteString("created", Created);
                w.WriteString("created_by", $"OpenLm.Mirror.TestKit layer {i}");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
        var configMediaType = docker ? MediaTypes.DockerConfig : MediaTypes.OciConfig;
        var layerMediaType = docker ? MediaTypes.DockerLayer : MediaTypes.OciLayer;
        var manifestMediaType = docker ? MediaTypes.DockerManifest : MediaTypes.OciManifest;
        var (configDigest, configSize) = put(config);
        var layers = blobs.Select(b => new GeneratedLayer(b.Digest, layerMediaType, b.Size, b.DiffId)).ToArray();
        var manifest = ManifestJson(manifestMediaType, null, configMediaType, configDigest, configSize, layers, null);
        var (digest, size) = put(manifest);
        return new GeneratedManifest(digest, manifestMediaType, size, platform, configDigest, configMediaType, configSize, layers);
    }

    private static GeneratedManifest BuildArtifact(SampleImageSpec image, IReadOnlyList<LayerBlob> blobs, Func<byte[], (string Digest, long Size)> put)
    {
        var (configDigest, configSize) = put("{}"u8.ToArray());
        var layers = blobs.Select(b => new GeneratedLayer(b.Digest, MediaTypes.TestArtifactPayload, b.Size, null)).ToArray();
        var titles = layers.Select((_, i) => (IReadOnlyDictionary<string, string>)new Dictionary<string, string>
        {
            ["org.opencontainers.image.title"] = $"payload-{i}.bin",
        }).ToArray();
        var manifest = ManifestJson(MediaTypes.OciManifest, MediaTypes.TestArtifact, MediaTypes.OciEmpty, configDigest, configSize, layers, titles,
            new Dictionary<string, string>
            {
                ["org.opencontainers.image.created"] = Created,
                ["org.openlm.test.reference"] = image.Reference,
            });
        var (digest, size) = put(manifest);
        return new GeneratedManifest(digest, MediaTypes.OciManifest, size, null, configDigest, MediaTypes.OciEmpty, configSize, layers);
    }

    private static GeneratedManifest BuildChart(SampleImageSpec image, LayerJob job, LayerBlob blob, Func<byte[], (string Digest, long Size)> put)
    {
        var config = Json.Build(w =>
        {
            w.WriteStartObject();
            w.WriteString("name", job.ChartName);
            w.WriteString("version", image.Tag);
            w.WriteString("description", "Synthetic chart generated by OpenLm.Mirror.TestKit");
            w.WriteString("apiVersion", "v2");
            w.WriteString("appVersion", job.AppVersion);
            w.WriteString("type", "application");
            w.WriteEndObject();
        });
        var (configDigest, configSize) = put(config);
        GeneratedLayer[] layers = [new(blob.Digest, MediaTypes.HelmChartContent, blob.Size, blob.DiffId)];
        var manifest = ManifestJson(MediaTypes.OciManifest, null, MediaTypes.HelmConfig, configDigest, configSize, layers, null,
            new Dictionary<string, string>
            {
                ["org.opencontainers.image.created"] = Created,
                ["org.opencontainers.image.title"] = job.ChartName!,
                ["org.opencontainers.image.version"] = image.Tag,
            });
        var (digest, size) = put(manifest);
        return new GeneratedManifest(digest, MediaTypes.OciManifest, size, null, configDigest, MediaTypes.HelmConfig, configSize, layers);
    }

    private static byte[] ManifestJson(string mediaType, string? artifactType, string configMediaType, string configDigest, long configSize,
        IReadOnlyList<GeneratedLayer> layers, IReadOnlyList<IReadOnlyDictionary<string, string>>? layerAnnotations,
        IReadOnlyDictionary<string, string>? annotations = null) =>
        Json.Build(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("schemaVersion", 2);
            w.WriteString("mediaType", mediaType);
            if (artifactType is not null) w.WriteString("artifactType", artifactType);
            w.WritePropertyName("config");
            Json.Descriptor(w, configMediaType, configDigest, configSize);
            w.WriteStartArray("layers");
            for (var i = 0; i < layers.Count; i++)
                Json.Descriptor(w, layers[i].MediaType, layers[i].Digest, layers[i].Size, annotations: layerAnnotations?[i]);
            w.WriteEndArray();
            if (annotations is not null) Json.Annotations(w, annotations);
            w.WriteEndObject();
        });

    private static byte[] LayoutIndex(IReadOnlyList<GeneratedImage> images) =>
        Json.Build(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("schemaVersion", 2);
            w.WriteString("mediaType", MediaTypes.OciIndex);
            w.WriteStartArray("manifests");
            foreach (var image in images)
            {
                Json.Descriptor(w, image.MediaType, image.Digest, image.ManifestSize, artifactType: image.ArtifactType,
                    annotations: new Dictionary<string, string> { [RefNameAnnotation] = image.Reference });
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });

    /// <summary>Short, tar-safe directory name for a layer.</summary>
    private static string Label(string name, int index)
    {
        var clean = LabelRegex().Replace(name.ToLowerInvariant(), "-").Trim('-');
        if (clean.Length > 48) clean = clean[^48..].TrimStart('-');
        return $"{clean}-{index}";
    }

    [GeneratedRegex("[^a-z0-9.]+")]
    private static partial Regex LabelRegex();
}
