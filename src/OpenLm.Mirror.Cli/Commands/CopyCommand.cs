using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary><c>openlm-mirror copy SRC DST</c>.</summary>
internal static class CopyCommand
{
    public static Command Create(CliConsole console)
    {
        var source = new Argument<string>("SRC") { Description = "Source: a registry reference (host/path:tag or @digest) or oci:DIR[:REF]" };
        var destination = new Argument<string>("DST") { Description = "Destination: a registry reference or oci:DIR[:REF] (REF defaults to the full source reference)" };
        var json = new Option<bool>("--json") { Description = "Print a JSON report on stdout" };
        var registry = new RegistryOptionSet();
        var copy = new CopyOptionSet();
        // An unknown option would otherwise be taken as SRC or DST and the error would name some other token.
        source.Validators.Add(RejectOptionLikeValues);
        destination.Validators.Add(RejectOptionLikeValues);
        var command = new Command("copy", "Copy an image (with every platform, or those named by --platform) between registries and OCI layouts, preserving digests");
        command.Arguments.Add(source);
        command.Arguments.Add(destination);
        registry.AddTo(command);
        copy.AddTo(command);
        command.Options.Add(json);

        command.SetAction(async (parse, cancellationToken) =>
        {
            var log = new ConsoleLog(console.Error, verbose: false);
            var src = ImageLocation.Parse(parse.GetValue(source)!, "SRC");
            var dst = ImageLocation.Parse(parse.GetValue(destination)!, "DST");
            var registryOptions = registry.Build(parse, console, log);
            using var connector = new RegistryConnector(registryOptions);
            var clock = Stopwatch.StartNew();
            var result = await CopyProgress.RunAsync(console, log, parse.GetValue(json), async observer =>
            {
                var options = new CopyOptions
                {
                    Concurrency = copy.GetConcurrency(parse),
                    Platforms = copy.Platforms(parse),
                    Observer = observer,
                    Retry = new RetryPolicy(registryOptions.Retries, log),
                };
                return await new ImageCopier(connector, options).CopyAsync(src, dst, cancellationToken).ConfigureAwait(false);
            }).ConfigureAwait(false);

            if (parse.GetValue(json))
            {
                var report = new
                {
                    source = src.ToString(),
                    destination = dst.ToString(),
                    digest = result.Root.Digest.ToString(),
                    sourceDigest = result.SourceRoot.Digest.ToString(),
                    mediaType = result.Root.MediaType,
                    platforms = result.PlatformsKept.Select(p => p.ToString()).ToList(),
                    bytesCopied = result.BytesCopied,
                    blobsCopied = result.BlobsCopied,
                    blobsSkipped = result.BlobsSkipped,
                    blobsMounted = result.BlobsMounted,
                    seconds = Math.Round(clock.Elapsed.TotalSeconds, 3),
                };
                await console.Out.WriteLineAsync(JsonSerializer.Serialize(report, Format.Json)).ConfigureAwait(false);
            }
            else
            {
                await console.Out.WriteLineAsync(
                    $"{result.Destination} {result.Root.Digest} ({result.BlobsCopied} blobs copied, {Format.Bytes(result.BytesCopied)}; {result.BlobsSkipped} present; {result.BlobsMounted} mounted; {Format.Seconds(clock.Elapsed)}, {Format.Rate(result.BytesCopied, clock.Elapsed)})").ConfigureAwait(false);
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private static void RejectOptionLikeValues(System.CommandLine.Parsing.ArgumentResult result)
    {
        foreach (var token in result.Tokens)
        {
            if (token.Value.Length > 1 && token.Value[0] == '-')
            {
                result.AddError($"Unrecognized option '{token.Value}'.");
            }
        }
    }
}
