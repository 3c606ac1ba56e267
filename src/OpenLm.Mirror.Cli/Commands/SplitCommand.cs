using System.CommandLine;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>
/// <c>openlm-mirror split BUNDLE --size 4G --key release.key [-o NAME]</c> and <c>openlm-mirror join NAME.001 --key release.key -o BUNDLE</c>:
/// an existing bundle written again in parts, or parts written again as one file; both verify everything first and re-sign the head.
/// </summary>
internal static class SplitCommand
{
    public static Command Create(CliConsole console) => Build(console, split: true);

    public static Command CreateJoin(CliConsole console) => Build(console, split: false);

    private static Command Build(CliConsole console, bool split)
    {
        var bundle = new Argument<string>("BUNDLE") { Description = split ? "The bundle to split (a single .tar or .tar.zst file)" : "The first part (NAME.001) or the base name of the set" };
        var size = new Option<string>("--size") { Description = "Largest part, e.g. 4095M (FAT32), 4G; at least 64M", HelpName = "SIZE", Required = split };
        var key = new Option<string>("--key") { Description = "The release signing key the bundle was signed with (its head is signed again, now listing the parts)", HelpName = "FILE", Required = true };
        var keyPasswordEnv = new Option<string?>("--key-password-env") { Description = "Environment variable holding the signing key's passphrase", HelpName = "VAR" };
        var output = new Option<string?>("--output", "-o") { Description = split ? "Base name of the parts (NAME.001, …) [default: BUNDLE]" : "The single bundle file to write", HelpName = split ? "NAME" : "BUNDLE", Required = !split };
        var force = new Option<bool>("--force") { Description = "Replace existing files" };
        var command = split
            ? new Command("split", "Write an existing bundle again as parts NAME.001, NAME.002, … each at most --size, listed in its re-signed head")
            : new Command("join", "Write a set of parts again as one bundle file, its head re-signed without the part table");
        command.Arguments.Add(bundle);
        if (split)
        {
            command.Options.Add(size);
        }

        command.Options.Add(key);
        command.Options.Add(keyPasswordEnv);
        command.Options.Add(output);
        command.Options.Add(force);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var path = parse.GetValue(bundle)!;
            var partSize = split ? SplitSize.Parse(parse.GetValue(size)!) : (long?)null;
            KeyInputs.RequireFile(path, "BUNDLE");
            var keyPath = parse.GetValue(key)!;
            KeyInputs.RequireFile(keyPath, "--key");
            var passphrase = KeyInputs.Passphrase(parse.GetValue(keyPasswordEnv), fromStdin: false, console, "--key-password");
            using var signingKey = SigningKey.Load(keyPath, () => passphrase);
            var target = parse.GetValue(output) ?? path;
            var result = await BundleSplitter.RewriteAsync(path, signingKey, target, partSize, parse.GetValue(force), cancellationToken).ConfigureAwait(false);
            await console.Out.WriteLineAsync(result.PartPaths.Count > 0
                ? $"{result.PartPaths.Count} parts of at most {Format.Bytes(partSize!.Value)}: {string.Join(", ", result.PartPaths)} (bundle digest {result.BundleDigest})"
                : $"{result.OutputPath}: {Format.Bytes(result.FileBytes)} (bundle digest {result.BundleDigest})").ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }
}
