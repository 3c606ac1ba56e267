using System.CommandLine;
using System.Text.Json;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>
/// <c>openlm-mirror values BUNDLE --to HOST[:PORT][/PREFIX] -o values-airgap.yaml</c>: parses the options for
/// <see cref="ValuesWorkflow"/> and prints what it wrote.
/// </summary>
internal static class ValuesCommand
{
    public static Command Create(CliConsole console)
    {
        var bundle = new BundleTargetOptions(targetRequired: false);
        var noRegistry = new Option<bool>("--no-registry")
        {
            Description = "There is no registry: the images are imported on every node (node-archive), so the values keep the source names, pinned by digest, with IfNotPresent pull policies",
        };
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
        var output = new Option<string?>("--output", "-o")
        {
            HelpName = "FILE|DIR",
            Description = "Where to write the Helm values (e.g. values-airgap.yaml); a directory gets <chart>.values-airgap.yaml for each chart of the bundle (each its own Helm release)",
        };
        var chart = new Option<string?>("--chart") { HelpName = "NAME", Description = "The bundle's chart (Helm release) the values are for, when the bundle holds several" };
        var chartOut = new Option<string?>("--chart-out") { HelpName = "DIR", Description = "Also write each chart of the bundle as DIR/<name>-<version>.tgz (verified)" };
        var force = new Option<bool>("--force") { Description = "Overwrite existing output files" };
        var k3s = new Option<string?>("--k3s-registries-out") { HelpName = "FILE", Description = "Also write a k3s/RKE2 registries.yaml that redirects pulls to the registry" };
        var containerd = new Option<string?>("--containerd-hosts-dir") { HelpName = "DIR", Description = "Also write containerd hosts.toml files (DIR/<registry>/hosts.toml)" };
        var caPath = new Option<string?>("--ca-path") { HelpName = "PATH-ON-NODES", Description = "Path on the nodes of the CA certificate that signed the registry's TLS certificate (node configs)" };
        var plainHttp = new Option<bool>("--plain-http") { Description = "The registry speaks plain HTTP (node configs use http://)" };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary on stdout" };

        var command = new Command("values", "Write Helm values (and optionally k3s/containerd mirror configuration) that point the platform at the air-gapped registry; offline, from the bundle alone");
        bundle.AddTo(command);
        foreach (var option in new Option[] { values, pin, pullSecret, output, chart, chartOut, noRegistry, force, k3s, containerd, caPath, plainHttp, json })
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parse, cancellationToken) =>
        {
            var log = OutputOptions.Log(parse, console);
            var outputPath = parse.GetValue(output);
            var inputPath = parse.GetValue(values);
            if (outputPath is null && parse.GetValue(k3s) is null && parse.GetValue(containerd) is null && parse.GetValue(chartOut) is null)
            {
                throw new InputException("nothing to write: give -o FILE for the Helm values (and/or --chart-out, --k3s-registries-out, --containerd-hosts-dir)");
            }

            if (inputPath is not null && outputPath is null)
            {
                throw new InputException("--values needs -o: the rewritten file goes to -o (give the same path to rewrite it in place)");
            }

            if (outputPath is not null && !Directory.Exists(outputPath) && !Path.EndsInDirectorySeparator(outputPath))
            {
                // A directory gets one values file per chart; the workflow checks each of those paths.
                OutputPaths.Check(outputPath, "-o");
            }

            OutputPaths.Check(parse.GetValue(k3s), "--k3s-registries-out");

            var target = bundle.OptionalTarget(parse);

            // Only the chart archives: no registry is involved.
            var chartsOnly = outputPath is null && parse.GetValue(k3s) is null && parse.GetValue(containerd) is null && target is null;
            if (parse.GetValue(noRegistry) || chartsOnly)
            {
                if (target is not null || bundle.Maps(parse).Count > 0 || parse.GetValue(k3s) is not null || parse.GetValue(containerd) is not null)
                {
                    throw new InputException("--no-registry keeps the source names: drop --to, --map, --k3s-registries-out and --containerd-hosts-dir");
                }
            }
            else if (target is null)
            {
                throw new InputException("--to is required: the registry the bundle was imported into (or --no-registry when the nodes hold the images themselves)");
            }

            using var key = bundle.LoadKey(parse);
            var request = new ValuesRequest
            {
                BundlePath = bundle.BundlePath(parse),
                Target = target,
                Maps = bundle.Maps(parse),
                MaxPathComponents = bundle.MaxPathComponents(parse),
                Key = key,
                ValuesOutput = outputPath,
                ValuesInput = inputPath,
                Helm = new HelmValuesOptions
                {
                    Pin = parse.GetValue(pin) == "tag" ? ImagePin.Tag : ImagePin.Digest,
                    PullSecret = parse.GetValue(pullSecret),
                    NoRegistry = parse.GetValue(noRegistry) || chartsOnly,
                },
                K3sRegistriesOutput = parse.GetValue(k3s),
                ContainerdHostsDirectory = parse.GetValue(containerd),
                Nodes = new NodeMirrorOptions { CaFile = parse.GetValue(caPath), PlainHttp = parse.GetValue(plainHttp) },
                Overwrite = parse.GetValue(force),
                Chart = parse.GetValue(chart),
                ChartOutputDirectory = parse.GetValue(chartOut),
            };
            var result = await ValuesWorkflow.RunAsync(request, log, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await console.Out.WriteLineAsync(JsonSerializer.Serialize(Report(request, result, parse.GetValue(pin)!), Format.Json)).ConfigureAwait(false);
            }
            else
            {
                await PrintAsync(console.Out, request, result, parse.GetValue(pin)!).ConfigureAwait(false);
            }

            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>The --json summary (the contract scripts read).</summary>
    private static object Report(ValuesRequest request, ValuesResult result, string pin)
    {
        var head = result.Head;
        var mapper = result.Bundle?.Mapper;
        var roots = result.Roots;
        return new
        {
            bundle = request.BundlePath,
            bundleDigest = head.BundleDigest.ToString(),
            platform = Vocabulary.Release(head.Manifest.Platform),
            signature = Vocabulary.Signature(head.Signature, head.VerifiedKeyId),
            target = mapper?.Target.ToString(),
            platformSource = mapper?.PlatformSource,
            noRegistry = mapper is null,
            pin,
            imageCount = roots.Count(r => !r.IsChart),
            chartCount = roots.Count(r => r.IsChart),
            valuesPaths = result.ImageUses.Select(u => u.ValuesPath).Distinct(StringComparer.Ordinal).Count(),
            values = result.ValuesFiles.Count != 1
                ? null
                : new { path = Path.GetFullPath(result.ValuesFiles[0].Path), mode = request.ValuesInput is null ? "override" : "rewrite", input = request.ValuesInput is null ? null : Path.GetFullPath(request.ValuesInput) },
            valuesFiles = result.ValuesFiles.Select(v => new
            {
                chart = v.Chart,
                chartVersion = v.ChartVersion,
                path = Path.GetFullPath(v.Path),
                imagePaths = v.ImagePaths,
                chartReference = v.ChartTarget?.ToString(),
            }).ToList(),
            chartArchives = result.ChartArchives.Select(Path.GetFullPath).ToList(),
            k3sRegistries = request.K3sRegistriesOutput is null ? null : Path.GetFullPath(request.K3sRegistriesOutput),
            containerdHosts = request.ContainerdHostsDirectory is null ? null : result.ContainerdHostsFiles.Select(Path.GetFullPath).ToList(),
            notRedirected = request.ContainerdHostsDirectory is null ? null : result.NotRedirected.Select(m => m.Source.ToString()).ToList(),
            imageValues = result.ImageUses.Select(u => new { path = u.ValuesPath, source = u.Source.ToString(), target = (mapper?.Map(u.Source) ?? u.Source).ToString() }).ToList(),
            warnings = result.RewriteWarnings,
        };
    }

    private static async Task PrintAsync(TextWriter o, ValuesRequest request, ValuesResult result, string pin)
    {
        foreach (var file in result.ValuesFiles)
        {
            var what = request.ValuesInput is null ? "override file" : result.RewroteInPlace ? "rewritten in place" : $"rewritten from {request.ValuesInput}";
            var forChart = file.Chart is null ? string.Empty : $"chart {file.Chart} {file.ChartVersion}, ";
            await o.WriteLineAsync($"Helm values ({forChart}{what}, {file.ImagePaths} image paths, pinned by {pin}): {file.Path}").ConfigureAwait(false);
            if (request.ValuesInput is null)
            {
                var install = file.ChartTarget is { } target
                    ? ValuesWorkflow.InstallCommand(file.Chart!, target, file.ChartVersion!, file.Path)
                    : file.Chart is { } name
                        ? $"helm upgrade --install {name} {name}-{file.ChartVersion}.tgz -f your-values.yaml -f {file.Path} (the .tgz: --chart-out DIR)"
                        : $"helm upgrade --install RELEASE CHART -f your-values.yaml -f {file.Path}";
                await o.WriteLineAsync($"  use it after your own values: {install}").ConfigureAwait(false);
            }
        }

        if (request.Helm.NoRegistry && result.ValuesFiles.Count > 0)
        {
            await o.WriteLineAsync("  no registry: the nodes must hold the images; write them with openlm-mirror node-archive BUNDLE --key release.pub -o openlm-images.tar.zst").ConfigureAwait(false);
            await o.WriteLineAsync("  and put the archive on every node: /var/lib/rancher/k3s/agent/images/ (RKE2: /var/lib/rancher/rke2/agent/images/), then (re)start k3s/rke2").ConfigureAwait(false);
        }

        foreach (var archive in result.ChartArchives)
        {
            await o.WriteLineAsync($"Helm chart: {archive}").ConfigureAwait(false);
        }

        if (request.K3sRegistriesOutput is { } k3sPath)
        {
            await o.WriteLineAsync($"k3s/RKE2 registries.yaml: {k3sPath}").ConfigureAwait(false);
            await o.WriteLineAsync("  install on every node as /etc/rancher/k3s/registries.yaml (RKE2: /etc/rancher/rke2/registries.yaml), then restart k3s/rke2").ConfigureAwait(false);
        }

        if (request.ContainerdHostsDirectory is { } hostsDir)
        {
            var files = result.ContainerdHostsFiles;
            await o.WriteLineAsync($"containerd hosts.toml ({files.Count} file{(files.Count == 1 ? string.Empty : "s")}): {hostsDir}").ConfigureAwait(false);
            foreach (var file in files)
            {
                await o.WriteLineAsync($"  {file}").ConfigureAwait(false);
            }

            await o.WriteLineAsync("  copy the directories to /etc/containerd/certs.d/ on every node (config_path = \"/etc/containerd/certs.d\")").ConfigureAwait(false);
        }
    }
}
