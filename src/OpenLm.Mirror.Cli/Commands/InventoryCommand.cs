using System.CommandLine;
using System.Text.Json;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Delta;
using OpenLm.Mirror.Export;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary><c>openlm-mirror inventory --to REGISTRY --lock lock.json -o receipt.json</c>: a receipt made by asking the target, for when the import's was lost.</summary>
internal static class InventoryCommand
{
    public static Command Create(CliConsole console)
    {
        var to = new Option<string>("--to") { Description = "The target registry and prefix the release was imported to", HelpName = "HOST[:PORT][/PREFIX]", Required = true };
        var lockOption = new Option<string>("--lock") { Description = "The lock of the release the target should hold (its images are looked up by digest)", HelpName = "LOCK.json", Required = true };
        var map = new Option<string[]>("--map") { Description = "Rename rule FROM_PREFIX=TO_PREFIX, as given to import", HelpName = "FROM=TO", AllowMultipleArgumentsPerToken = false };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the receipt (a --base for the next delta export)", HelpName = "receipt.json", Required = true };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary on stdout" };
        var registry = new RegistryOptionSet();
        var command = new Command("inventory", "Ask a target registry which images, manifests and blobs of a release it holds, and write them as an import receipt");
        command.Options.Add(to);
        command.Options.Add(lockOption);
        command.Options.Add(map);
        var maxPathComponents = BundleTargetOptions.MaxPathComponentsOption();
        command.Options.Add(maxPathComponents);
        command.Options.Add(output);
        registry.AddTo(command);
        command.Options.Add(json);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var lockFile = LockFile.Load(parse.GetValue(lockOption)!);
            var log = OutputOptions.Log(parse, console);
            using var connector = new RegistryConnector(registry.Build(parse, console, log));
            var result = await new TargetInventory(connector).TakeAsync(parse.GetValue(to)!, parse.GetValue(map) ?? [], lockFile, cancellationToken: cancellationToken, maxPathComponents: parse.GetValue(maxPathComponents)).ConfigureAwait(false);
            var path = parse.GetValue(output)!;
            result.Receipt.Write(path);
            foreach (var image in result.Absent)
            {
                await console.Error.WriteLineAsync($"not in the target: {image}").ConfigureAwait(false);
            }

            var receipt = result.Receipt;
            if (parse.GetValue(json))
            {
                await console.Out.WriteLineAsync(JsonSerializer.Serialize(new
                {
                    receipt = path,
                    registry = receipt.Registry,
                    platform = receipt.Platform,
                    images = receipt.Images.Count,
                    absent = result.Absent,
                    incompleteImages = result.BlobsMissing,
                    contents = receipt.Contents.Count,
                    bytes = receipt.Contents.Sum(c => c.Size),
                }, Format.Json)).ConfigureAwait(false);
            }
            else
            {
                await console.Out.WriteLineAsync(
                    $"{path}: {receipt.Images.Count} of {lockFile.Images.Count} images of {lockFile.Name} {lockFile.Version} found in {receipt.Registry} ({result.BlobsMissing} of them incomplete); {receipt.Contents.Count} manifests and blobs, {Format.Bytes(receipt.Contents.Sum(c => c.Size))}").ConfigureAwait(false);
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
