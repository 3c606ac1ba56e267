using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary><c>openlm-mirror verify BUNDLE --key release.pub</c>: one offline streaming pass over the whole bundle.</summary>
internal static class VerifyCommand
{
    public static Command Create(CliConsole console)
    {
        var bundle = new Argument<string>("BUNDLE") { Description = "The bundle (.tar or .tar.zst)" };
        var key = new Option<string>("--key") { Description = "The release public key (SPKI PEM)", HelpName = "FILE", Required = true };
        var json = new Option<bool>("--json") { Description = "Print a JSON report on stdout" };
        var command = new Command("verify", "Check a bundle offline: signature, index, every manifest and blob digest and size, completeness, nothing unexpected") { bundle, key, json };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var path = parse.GetValue(bundle)!;
            KeyInputs.RequireFile(parse.GetValue(key)!, "--key");
            KeyInputs.RequireFile(path, "BUNDLE");
            using var publicKey = VerificationKey.Load(parse.GetValue(key)!);
            var clock = Stopwatch.StartNew();
            var result = await BundleReader.ReadAsync(path, new BundleReadOptions { Key = publicKey, RequireSignature = true }, cancellationToken).ConfigureAwait(false);
            var head = result.Head;
            if (parse.GetValue(json))
            {
                await console.Out.WriteLineAsync(JsonSerializer.Serialize(new
                {
                    bundle = path,
                    bundleDigest = head.BundleDigest.ToString(),
                    signature = Vocabulary.Signature(head.Signature, head.VerifiedKeyId),
                    platform = Vocabulary.Release(head.Manifest.Platform),
                    images = head.Manifest.Images.Count,
                    charts = head.Manifest.Charts.Count,
                    blobs = result.BlobCount,
                    bytes = result.BlobBytes,
                    parts = head.Manifest.Parts?.Files.Count,
                    delta = head.Manifest.Base is { } delta
                        ? new { bases = delta.Files, omittedBlobs = result.OmittedCount, omittedBytes = result.OmittedBytes, omittedChecked = false }
                        : null,
                    seconds = Math.Round(clock.Elapsed.TotalSeconds, 3),
                }, Format.Json)).ConfigureAwait(false);
            }
            else
            {
                await console.Out.WriteLineAsync(
                    $"OK {path}: {head.Manifest.Platform.Name} {head.Manifest.Platform.Version}, signed by {head.VerifiedKeyId}; {head.Manifest.Images.Count} images, {head.Manifest.Charts.Count} charts, {result.BlobCount} blobs ({Format.Bytes(result.BlobBytes)}) verified in {Format.Seconds(clock.Elapsed)}").ConfigureAwait(false);
                if (head.Manifest.Parts is { } parts)
                {
                    await console.Out.WriteLineAsync($"all {parts.Files.Count} parts match the signed part table (size and sha256 of each)").ConfigureAwait(false);
                }

                if (head.Manifest.Base is { } delta)
                {
                    await console.Out.WriteLineAsync(
                        $"delta bundle: everything it carries is verified; NOT checked: the {result.OmittedCount} blobs ({Format.Bytes(result.OmittedBytes)}) it leaves to its base ({string.Join(", ", delta.Files.Select(f => $"{f.Kind} of {f.Release.Name} {f.Release.Version}"))}); import checks they are in the target first").ConfigureAwait(false);
                }
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
