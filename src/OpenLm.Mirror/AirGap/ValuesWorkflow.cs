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

    /// <summary>The registry the bundle was imported into, <c>HOST[:PORT][/PREFIX]</c>.</summary>
    public required string Target { get; init; }

    /// <summary>The import's name-mapping rules, <c>FROM=TO</c>.</summary>
    public IReadOnlyList<string> Maps { get; init; } = [];

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
}

/// <summary>What <see cref="ValuesWorkflow.RunAsync"/> wrote.</summary>
public sealed record ValuesResult
{
    public required AirGapBundle Bundle { get; init; }

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
}

/// <summary>
/// Helm values (an override file, or the customer's values file rewritten) and node mirror configuration for the
/// air-gapped registry, from the bundle's head alone (no network). Everything is built in memory and every refusal
/// (collisions, existing files) comes first: nothing is written unless every piece can be.
/// </summary>
public static class ValuesWorkflow
{
    public static async Task<ValuesResult> RunAsync(ValuesRequest request, IMirrorLog log, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(log);
        Validate(request);
        var bundle = await AirGapBundle.OpenAsync(request.BundlePath, request.Target, request.Maps, request.Key, log, cancellationToken).ConfigureAwait(false);
        var uses = ImageUses(bundle.Head.Manifest, log);
        var outputs = Build(request, bundle, uses);
        RefuseUnsafeOutputs(request, outputs);
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
            ImageUses = uses,
            RewroteInPlace = outputs.InPlace,
            RewriteWarnings = outputs.RewriteWarnings,
            ContainerdHostsFiles = HostsFiles(request, outputs.Hosts),
            NotRedirected = outputs.Hosts?.NotRedirected ?? [],
        };
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
    private sealed record Outputs(string? Values, bool InPlace, IReadOnlyList<string> RewriteWarnings, string? Registries, ContainerdHostsConfig? Hosts);

    private static void Validate(ValuesRequest request)
    {
        if (request.ValuesOutput is null && request.K3sRegistriesOutput is null && request.ContainerdHostsDirectory is null)
        {
            throw new InputException("nothing to write: ask for the Helm values, a k3s/RKE2 registries.yaml or containerd hosts.toml files")
            {
                Setting = Setting.ValuesOutput,
            };
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

    private static Outputs Build(ValuesRequest request, AirGapBundle bundle, IReadOnlyList<HelmImageUse> uses)
    {
        var writer = new HelmValuesWriter(bundle.Mapper, request.Helm);
        var runtimeImages = bundle.Roots.Where(r => !r.IsChart).Select(r => r.Source).ToList();
        string? values = null;
        IReadOnlyList<string> warnings = [];
        var inPlace = false;
        if (request.ValuesOutput is { } output)
        {
            if (request.ValuesInput is { } input)
            {
                var rewrite = writer.Rewrite(ReadText(input), uses, input);
                (values, warnings, inPlace) = (rewrite.Text, rewrite.Warnings, SamePath(input, output));
            }
            else
            {
                values = writer.WriteOverrides(uses);
            }
        }

        var registries = request.K3sRegistriesOutput is null ? null : new K3sRegistriesWriter(bundle.Mapper, request.Nodes).Write(runtimeImages);
        var hosts = request.ContainerdHostsDirectory is null ? null : new ContainerdHostsWriter(bundle.Mapper, request.Nodes).Build(runtimeImages);
        return new Outputs(values, inPlace, warnings, registries, hosts);
    }

    private static void RefuseUnsafeOutputs(ValuesRequest request, Outputs outputs)
    {
        if (!request.Overwrite)
        {
            var existing = new List<string>();
            if (request.ValuesOutput is { } output && !outputs.InPlace && File.Exists(output))
            {
                existing.Add(output);
            }

            if (request.K3sRegistriesOutput is { } k3s && File.Exists(k3s))
            {
                existing.Add(k3s);
            }

            existing.AddRange(HostsFiles(request, outputs.Hosts).Where(File.Exists));
            if (existing.Count > 0)
            {
                var list = string.Join(", ", existing.Select(p => $"'{p}'"));
                throw new InputException($"refusing to overwrite {list}") { Remedy = Remedy.Overwrite, Subject = list };
            }
        }

        foreach (var (path, setting) in new[] { (request.ValuesOutput, Setting.ValuesOutput), (request.K3sRegistriesOutput, Setting.K3sRegistriesOutput) })
        {
            if (path is not null && Directory.Exists(path))
            {
                throw new InputException($"'{path}' is a directory") { Setting = setting, Subject = path };
            }
        }

        if (SamePath(request.ValuesOutput, request.K3sRegistriesOutput))
        {
            throw new InputException("the Helm values and the k3s registries.yaml would be the same file")
            {
                Setting = Setting.K3sRegistriesOutput,
                Subject = request.K3sRegistriesOutput,
            };
        }
    }

    private static void Write(ValuesRequest request, Outputs outputs)
    {
        try
        {
            if (outputs.Values is not null)
            {
                WriteFile(request.ValuesOutput!, outputs.Values);
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
