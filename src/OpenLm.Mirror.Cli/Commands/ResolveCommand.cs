using System.CommandLine;
using System.Text.Json;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary><c>openlm-mirror resolve --manifest FILE -o LOCK.json</c>: pin every image of a release to its digest.</summary>
internal static class ResolveCommand
{
    public static Command Create(CliConsole console)
    {
        var inputs = new ReleaseInputs();
        var registry = new RegistryOptionSet();
        var output = new Option<string>("--output", "-o") { Description = "Where to write the lock file", HelpName = "LOCK.json", Required = true };
        var json = new Option<bool>("--json") { Description = "Print the lock file on stdout too" };
        var cache = new Option<string?>("--cache") { Description = "Export cache to keep the fetched manifests in, so export reads them from disk instead of asking the registry again [default: ~/.cache/openlm-mirror/export, as export]", HelpName = "DIR" };
        var noCache = new Option<bool>("--no-cache") { Description = "Keep no manifests for export (resolve writes nothing but the lock)" };
        var command = new Command("resolve", "Resolve a platform manifest (image list and Helm chart scan) to digests at the source and write a lock file");
        inputs.AddTo(command);
        registry.AddTo(command);
        command.Options.Add(output);
        command.Options.Add(json);
        command.Options.Add(cache);
        command.Options.Add(noCache);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var manifestPath = parse.GetValue(inputs.Manifest);
            ReleaseInputs.Require(manifestPath is not null, "resolve needs --manifest FILE");
            OutputPaths.Check(parse.GetValue(output), "-o");
            var log = OutputOptions.Log(parse, console);
            using var connector = new RegistryConnector(inputs.WithMirrors(parse, registry.Build(parse, console, log)));
            ReleaseInputs.Require(!(parse.GetValue(noCache) && parse.GetValue(cache) is not null), "resolve takes --cache DIR or --no-cache, not both");
            var cacheDir = parse.GetValue(noCache) ? null : parse.GetValue(cache) ?? Export.Release.DefaultCacheDirectory();
            var lockFile = await inputs.ResolveAsync(parse, manifestPath!, cacheDir, connector, log, cancellationToken).ConfigureAwait(false);
            var path = parse.GetValue(output)!;
            lockFile.Save(path);
            if (parse.GetValue(json))
            {
                // The lock as written (its own format, documented with the lock) under "lock", beside a summary.
                var lockDocument = System.Text.Json.Nodes.JsonNode.Parse(JsonSerializer.Serialize(lockFile, Export.LockFile.Json));
                await console.Out.WriteLineAsync(JsonSerializer.Serialize(new
                {
                    lockFile = path,
                    images = lockFile.Images.Count,
                    charts = lockFile.Charts.Count,
                    blobs = lockFile.Blobs.Count,
                    totalBytes = lockFile.TotalBytes,
                    @lock = lockDocument,
                }, Format.Json)).ConfigureAwait(false);
            }
            else
            {
                await console.Out.WriteLineAsync($"{path}: {lockFile.Images.Count} images, {lockFile.Charts.Count} charts, {lockFile.Blobs.Count} unique blobs ({Format.Bytes(lockFile.TotalBytes)})").ConfigureAwait(false);
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
