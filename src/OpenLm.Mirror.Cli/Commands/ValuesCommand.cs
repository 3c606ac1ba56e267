using System.CommandLine;
using System.Text;
using System.Text.Json;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.PlatformSpec;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>
/// <c>openlm-mirror values BUNDLE --to HOST[:PORT][/PREFIX] -o values-airgap.yaml</c>: Helm values (an override file,
/// or the customer's values file rewritten) and node mirror configuration for the air-gapped registry, from the
/// bundle's head alone (no network).
/// </summary>
internal static class ValuesCommand
{
    public static Command Create(CliConsole console)
    {
        var bundle = new BundleTargetOptions();
        var values = new Option<string?>("--values")
        {
            HelpName = "IN.yaml",
            Description = "Rewrite this values file (comments and layout kept) into -o instead of writing an override file; the input is only changed when -o names it",
        };
        var pin = new Option<string>("--pin")
        {
            HelpName = "digest|tag",
            Description = "Name images by digest (immutable, the default) or by tag",
            DefaultValueFactory = _ => "digest",
        };
        pin.AcceptOnlyFromAmong("digest", "tag");
        var pullSecret = new Option<string?>("--pull-secret") { HelpName = "NAME", Description = "Reference this Kubernetes pull secret for the registry (the secret itself is not created)" };
        var output = new Option<string?>("--output", "-o") { HelpName = "FILE", Description = "Where to write the Helm values (e.g. values-airgap.yaml)" };
        var force = new Option<bool>("--force") { Description = "Overwrite existing output files" };
        var k3s = new Option<string?>("--k3s-registries-out") { HelpName = "FILE", Description = "Also write a k3s/RKE2 registries.yaml that redirects pulls to the registry" };
        var containerd = new Option<string?>("--containerd-hosts-dir") { HelpName = "DIR", Description = "Also write containerd hosts.toml files (DIR/<registry>/hosts.toml)" };
        var caPath = new Option<string?>("--ca-path") { HelpName = "PATH-ON-NODES", Description = "Path on the nodes of the CA certificate that signed the registry's TLS certificate (node configs)" };
        var plainHttp = new Option<bool>("--plain-http") { Description = "The registry speaks plain HTTP (node configs use http://)" };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary on stdout" };

        var command = new Command("values", "Write Helm values (and optionally k3s/containerd mirror configuration) that point the platform at the air-gapped registry; offline, from the bundle alone");
        bundle.AddTo(command);
        foreach (var option in new Option[] { values, pin, pullSecret, output, force, k3s, containerd, caPath, plainHttp, json })
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parse, cancellationToken) =>
        {
            var log = new ConsoleLog(console.Error, verbose: false);
            var outputPath = parse.GetValue(output);
            var inputPath = parse.GetValue(values);
            var k3sPath = parse.GetValue(k3s);
            var hostsDir = parse.GetValue(containerd);
            var overwrite = parse.GetValue(force);
            if (outputPath is null && k3sPath is null && hostsDir is null)
            {
                throw new InputException("nothing to write: give -o FILE for the Helm values (and/or --k3s-registries-out, --containerd-hosts-dir)");
            }

            if (inputPath is not null && outputPath is null)
            {
                throw new InputException("--values needs -o: the rewritten file goes to -o (give the same path to rewrite it in place)");
            }

            var head = await bundle.InspectAsync(parse, log, cancellationToken).ConfigureAwait(false);
            var mapper = bundle.Mapper(parse, head.Manifest);
            var roots = BundleTargetOptions.Roots(head);

            // Every name the import creates must be distinct; refuse before anything is written.
            mapper.MapAll(roots.Select(r => r.Source));

            var uses = ImageUses(head.Manifest, log);
            var writer = new HelmValuesWriter(mapper, new HelmValuesOptions
            {
                Pin = parse.GetValue(pin) == "tag" ? ImagePin.Tag : ImagePin.Digest,
                PullSecret = parse.GetValue(pullSecret),
            });
            var nodeOptions = new NodeMirrorOptions { CaFile = parse.GetValue(caPath), PlainHttp = parse.GetValue(plainHttp) };
            var runtimeImages = roots.Where(r => !r.IsChart).Select(r => r.Source).ToList();

            // Build everything in memory first: nothing is written unless every piece can be.
            var warnings = new List<string>();
            string? valuesText = null;
            var inPlace = false;
            if (outputPath is not null)
            {
                if (inputPath is null)
                {
                    valuesText = writer.WriteOverrides(uses);
                }
                else
                {
                    var original = ReadText(inputPath);
                    var rewrite = writer.Rewrite(original, uses, inputPath);
                    warnings.AddRange(rewrite.Warnings);
                    valuesText = rewrite.Text;
                    inPlace = SamePath(inputPath, outputPath);
                }
            }

            var registriesText = k3sPath is null ? null : new K3sRegistriesWriter(mapper, nodeOptions).Write(runtimeImages);
            var hosts = hostsDir is null ? null : new ContainerdHostsWriter(mapper, nodeOptions).Build(runtimeImages);

            if (!overwrite)
            {
                var existing = new List<string>();
                if (outputPath is not null && !inPlace && File.Exists(outputPath))
                {
                    existing.Add(outputPath);
                }

                if (k3sPath is not null && File.Exists(k3sPath))
                {
                    existing.Add(k3sPath);
                }

                if (hosts is not null)
                {
                    existing.AddRange(hosts.Files.Select(f => Path.Combine(hostsDir!, f.Directory, ContainerdHostsFile.FileName)).Where(File.Exists));
                }

                if (existing.Count > 0)
                {
                    throw new InputException($"refusing to overwrite {string.Join(", ", existing.Select(p => $"'{p}'"))} (use --force)");
                }
            }

            foreach (var path in new[] { outputPath, k3sPath }.OfType<string>())
            {
                if (Directory.Exists(path))
                {
                    throw new InputException($"'{path}' is a directory");
                }
            }

            if (SamePath(outputPath, k3sPath))
            {
                throw new InputException("-o and --k3s-registries-out name the same file");
            }

            foreach (var warning in warnings)
            {
                log.Warn(warning);
            }

            try
            {
                if (valuesText is not null)
                {
                    WriteFile(outputPath!, valuesText);
                }

                if (registriesText is not null)
                {
                    WriteFile(k3sPath!, registriesText);
                }

                if (hosts is not null)
                {
                    ContainerdHostsWriter.WriteTo(hosts, hostsDir!);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new OperationException($"cannot write output: {ex.Message}", ex);
            }

            if (hosts is { NotRedirected.Count: > 0 } notRedirected)
            {
                log.Warn($"containerd cannot redirect {notRedirected.NotRedirected.Count} image(s) whose repository the mapping renames; " +
                         "pods must name them by their air-gapped names (the Helm values do), or use k3s/RKE2 rewrites: " +
                         string.Join(", ", notRedirected.NotRedirected.Select(m => m.Source.ToString())));
            }

            var hostsFiles = hosts?.Files.Select(f => Path.Combine(hostsDir!, f.Directory, ContainerdHostsFile.FileName)).ToList() ?? [];
            if (parse.GetValue(json))
            {
                var report = new
                {
                    bundle = parse.GetValue(bundle.Bundle),
                    bundleDigest = head.BundleDigest.ToString(),
                    platform = new { name = head.Manifest.Platform.Name, version = head.Manifest.Platform.Version },
                    signature = SignatureText(head.Signature),
                    keyId = head.VerifiedKeyId,
                    target = mapper.Target.ToString(),
                    platformSource = mapper.PlatformSource,
                    pin = parse.GetValue(pin),
                    imageCount = roots.Count(r => !r.IsChart),
                    chartCount = roots.Count(r => r.IsChart),
                    valuesPaths = uses.Select(u => u.ValuesPath).Distinct(StringComparer.Ordinal).Count(),
                    values = outputPath is null ? null : new { path = Path.GetFullPath(outputPath), mode = inputPath is null ? "override" : "rewrite", input = inputPath is null ? null : Path.GetFullPath(inputPath) },
                    k3sRegistries = k3sPath is null ? null : Path.GetFullPath(k3sPath),
                    containerdHosts = hostsDir is null ? null : hostsFiles.Select(Path.GetFullPath).ToList(),
                    notRedirected = hosts?.NotRedirected.Select(m => m.Source.ToString()).ToList(),
                    imageValues = uses.Select(u => new { path = u.ValuesPath, source = u.Source.ToString(), target = mapper.Map(u.Source).ToString() }).ToList(),
                    warnings,
                };
                await console.Out.WriteLineAsync(JsonSerializer.Serialize(report, Format.Json)).ConfigureAwait(false);
            }
            else
            {
                if (outputPath is not null)
                {
                    var what = inputPath is null ? "override file" : inPlace ? "rewritten in place" : $"rewritten from {inputPath}";
                    await console.Out.WriteLineAsync($"Helm values ({what}, {uses.Count} image paths, pinned by {parse.GetValue(pin)}): {outputPath}").ConfigureAwait(false);
                    if (inputPath is null)
                    {
                        await console.Out.WriteLineAsync($"  use it after your own values: helm upgrade --install RELEASE CHART -f your-values.yaml -f {outputPath}").ConfigureAwait(false);
                    }
                }

                if (k3sPath is not null)
                {
                    await console.Out.WriteLineAsync($"k3s/RKE2 registries.yaml: {k3sPath}").ConfigureAwait(false);
                    await console.Out.WriteLineAsync("  install on every node as /etc/rancher/k3s/registries.yaml (RKE2: /etc/rancher/rke2/registries.yaml), then restart k3s/rke2").ConfigureAwait(false);
                }

                if (hostsDir is not null)
                {
                    await console.Out.WriteLineAsync($"containerd hosts.toml ({hostsFiles.Count} file{(hostsFiles.Count == 1 ? string.Empty : "s")}): {hostsDir}").ConfigureAwait(false);
                    foreach (var file in hostsFiles)
                    {
                        await console.Out.WriteLineAsync($"  {file}").ConfigureAwait(false);
                    }

                    await console.Out.WriteLineAsync("  copy the directories to /etc/containerd/certs.d/ on every node (config_path = \"/etc/containerd/certs.d\")").ConfigureAwait(false);
                }
            }

            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>
    /// One <see cref="HelmImageUse"/> per values path recorded on the bundle's images, with the digest the bundle holds.
    /// The <see cref="PlatformImageList.GlobalImageRegistryPath"/> entry is a marker (the image's split-key chart honours
    /// <c>global.imageRegistry</c>), not a path to write.
    /// </summary>
    internal static List<HelmImageUse> ImageUses(BundleManifest manifest, IMirrorLog log)
    {
        var uses = new List<HelmImageUse>();
        foreach (var image in manifest.Images)
        {
            if (image.Values.Count == 0)
            {
                continue;
            }

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

            var source = reference.WithDigest(digest);
            var usesGlobal = image.Values.Contains(PlatformImageList.GlobalImageRegistryPath, StringComparer.Ordinal);
            foreach (var path in image.Values)
            {
                if (path == PlatformImageList.GlobalImageRegistryPath)
                {
                    continue;
                }

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

    private static string SignatureText(SignatureStatus status) => status switch
    {
        SignatureStatus.Verified => "verified",
        SignatureStatus.NotChecked => "notChecked",
        _ => "absent",
    };

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
            throw new InputException($"--values '{path}' does not exist", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"cannot read --values '{path}': {ex.Message}", ex);
        }

        try
        {
            return new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException ex)
        {
            throw new InputException($"--values '{path}' is not UTF-8 text", ex);
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
