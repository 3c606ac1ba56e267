using System.CommandLine;
using System.Text.Json;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.EngineLoad;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.NodeArchive;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>
/// <c>openlm-mirror node-archive BUNDLE --key PUB -o openlm-images.tar.zst</c>: the bundle's images as one archive for
/// k3s/RKE2 auto-import or <c>ctr images import</c> on sites with no registry; parses options for
/// <see cref="NodeArchiveWriter"/> and prints what it wrote.
/// </summary>
internal static class NodeArchiveCommand
{
    public static Command Create(CliConsole console)
    {
        var bundle = new Argument<string>("BUNDLE") { Description = "The bundle file (.tar or .tar.zst)" };
        var key = new Option<string?>("--key") { HelpName = "FILE", Description = "The release public key (PEM) the bundle must be signed with" };
        var skipSignature = new Option<bool>("--insecure-skip-signature")
        {
            Description = "Write the archive without checking the bundle signature (DANGEROUS: whoever can alter the file chooses what the nodes run; digests are still checked)",
        };
        var output = new Option<string>("--output", "-o") { HelpName = "FILE", Description = "The archive to write: .tar.zst (or .tzst) for zstd, .tar for none", Required = true };
        var platform = new Option<string[]>("--platform")
        {
            HelpName = "os/arch[/variant]",
            Description = "Keep only these platforms of multi-platform images (repeatable or comma-separated; default: every platform the bundle holds)",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var force = new Option<bool>("--force") { Description = "Overwrite an existing archive" };
        var json = new Option<bool>("--json") { Description = "Print a JSON report on stdout" };

        var command = new Command("node-archive", "Write the bundle's container images as one archive that k3s/RKE2 import at start and ctr images import accepts (no registry needed)");
        command.Arguments.Add(bundle);
        foreach (var option in new Option[] { key, skipSignature, output, platform, force, json })
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parse, cancellationToken) =>
        {
            var log = OutputOptions.Log(parse, console);
            var keyPath = parse.GetValue(key);
            var insecure = KeyInputs.SkipsSignature(keyPath, parse.GetValue(skipSignature), "refusing to use an unverified bundle", "whatever the file contains");
            var bundlePath = parse.GetValue(bundle)!;
            KeyInputs.RequireBundleFile(bundlePath);

            var platforms = (parse.GetValue(platform) ?? []).SelectMany(Platform.ParseList).Select(PlatformMatcher.Normalize).ToList();
            var outputPath = parse.GetValue(output)!;
            NodeArchiveWriter.CompressionFor(outputPath);
            using var verificationKey = keyPath is null ? null : VerificationKey.Load(keyPath);
            if (insecure)
            {
                log.Warn("--insecure-skip-signature: the bundle signature is NOT checked; digests are only checked against the bundle's own, unsigned index.");
            }

            var result = await NodeArchiveWriter.WriteAsync(
                new NodeArchiveRequest
                {
                    BundlePath = bundlePath,
                    Key = verificationKey,
                    RequireSignature = !insecure,
                    OutputPath = outputPath,
                    Platforms = platforms,
                    Overwrite = parse.GetValue(force),
                },
                log,
                cancellationToken).ConfigureAwait(false);

            if (parse.GetValue(json))
            {
                await console.Out.WriteLineAsync(JsonSerializer.Serialize(Report(result), Format.Json)).ConfigureAwait(false);
            }
            else
            {
                await PrintAsync(console.Out, result).ConfigureAwait(false);
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private static object Report(NodeArchiveResult result) => new
    {
        path = Path.GetFullPath(result.Path),
        compression = result.Compression == NodeArchiveCompression.Zstd ? "zstd" : "none",
        bundleDigest = result.Head.BundleDigest.ToString(),
        platform = Vocabulary.Release(result.Head.Manifest.Platform),
        signature = Vocabulary.Signature(result.Head.Signature, result.Head.VerifiedKeyId),
        blobCount = result.BlobCount,
        blobBytes = result.BlobBytes,
        images = result.Images.Select(i => new { source = i.Source.ToString(), digest = i.Digest.ToString(), digestReference = i.DigestReference, platforms = i.Platforms }).ToList(),
        skipped = result.Skipped,
    };

    private static async Task PrintAsync(TextWriter o, NodeArchiveResult result)
    {
        var file = Path.GetFileName(result.Path);
        await o.WriteLineAsync($"Node archive ({result.Images.Count} images, {result.BlobCount} blobs, {result.BlobBytes} bytes before compression): {result.Path}").ConfigureAwait(false);
        await o.WriteLineAsync("  put it on every node, then (re)start k3s/rke2, which import it at start:").ConfigureAwait(false);
        await o.WriteLineAsync($"    k3s:  /var/lib/rancher/k3s/agent/images/{file}").ConfigureAwait(false);
        await o.WriteLineAsync($"    RKE2: /var/lib/rancher/rke2/agent/images/{file}").ConfigureAwait(false);
        var tar = file.EndsWith(".tzst", StringComparison.Ordinal) ? file[..^".tzst".Length] + ".tar" : Path.GetFileNameWithoutExtension(file);
        var plain = result.Compression == NodeArchiveCompression.Zstd ? $"zstd -d {file} -o {tar} && ctr -n k8s.io images import {tar}" : $"ctr -n k8s.io images import {file}";
        await o.WriteLineAsync($"  or on plain containerd: {plain}").ConfigureAwait(false);
        await o.WriteLineAsync("  Helm values naming these images: openlm-mirror values BUNDLE --no-registry -o values-airgap.yaml").ConfigureAwait(false);
    }
}
