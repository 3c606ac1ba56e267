using System.CommandLine;
using System.Text.Json;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary><c>openlm-mirror inspect BUNDLE</c>: what a bundle holds, read from its head only.</summary>
internal static class InspectCommand
{
    public static Command Create(CliConsole console)
    {
        var bundle = new Argument<string>("BUNDLE") { Description = "The bundle (.tar or .tar.zst)" };
        var key = new Option<string?>("--key") { Description = "Also check the signature with this public key", HelpName = "FILE" };
        var json = new Option<bool>("--json") { Description = "Print a JSON report on stdout" };
        var command = new Command("inspect", "Show a bundle's platform, version, signer, images and charts (reads only the head; blobs are not verified)") { bundle, key, json };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var path = parse.GetValue(bundle)!;
            KeyInputs.RequireFile(path, "BUNDLE");
            using var publicKey = parse.GetValue(key) is { } keyPath ? LoadKey(keyPath) : null;
            var head = await BundleInspector.InspectAsync(path, publicKey, cancellationToken).ConfigureAwait(false);
            var m = head.Manifest;
            var signature = head.Signature switch
            {
                SignatureStatus.Verified => $"verified ({head.VerifiedKeyId})",
                SignatureStatus.Absent => "ABSENT: the bundle is not signed",
                _ => "not checked (pass --key to check it)",
            };
            if (parse.GetValue(json))
            {
                await console.Out.WriteLineAsync(JsonSerializer.Serialize(new
                {
                    bundle = path,
                    bundleDigest = head.BundleDigest.ToString(),
                    // keyId: the key that verified it, else the key the bundle names as its signer (not checked).
                    signature = Vocabulary.Signature(head.Signature, head.VerifiedKeyId ?? m.Signer?.KeyId),
                    platform = Vocabulary.Release(m.Platform),
                    created = m.Created,
                    tool = m.Tool,
                    source = m.Source,
                    images = m.Images,
                    charts = m.Charts,
                    blobs = m.Blobs,
                    compressed = head.Compressed,
                }, Format.Json)).ConfigureAwait(false);
                return ExitCodes.Success;
            }

            var o = console.Out;
            await o.WriteLineAsync($"bundle:    {path}{(head.Compressed ? " (zstd)" : string.Empty)}").ConfigureAwait(false);
            await o.WriteLineAsync($"platform:  {m.Platform.Name} {m.Platform.Version}").ConfigureAwait(false);
            await o.WriteLineAsync($"created:   {m.Created:u} by {m.Tool.Name} {m.Tool.Version}").ConfigureAwait(false);
            await o.WriteLineAsync($"source:    {m.Source}").ConfigureAwait(false);
            await o.WriteLineAsync($"signer:    {m.Signer?.KeyId}").ConfigureAwait(false);
            await o.WriteLineAsync($"signature: {signature}").ConfigureAwait(false);
            await o.WriteLineAsync($"images ({m.Images.Count}):").ConfigureAwait(false);
            foreach (var image in m.Images)
            {
                var platforms = image.Platforms.Count == 0 ? string.Empty : $" [{string.Join(", ", image.Platforms)}]";
                await o.WriteLineAsync($"  {image.Reference}  {image.Digest}  {Format.Bytes(image.Size)}{platforms}").ConfigureAwait(false);
            }

            await o.WriteLineAsync($"charts ({m.Charts.Count}):").ConfigureAwait(false);
            foreach (var chart in m.Charts)
            {
                await o.WriteLineAsync($"  {chart.Name} {chart.Version}  {chart.Reference}  {chart.Digest}").ConfigureAwait(false);
            }

            await o.WriteLineAsync($"blobs:     {m.Blobs?.Count} unique, {Format.Bytes(m.Blobs?.TotalBytes ?? 0)}").ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    private static VerificationKey LoadKey(string path)
    {
        KeyInputs.RequireFile(path, "--key");
        return VerificationKey.Load(path);
    }
}
