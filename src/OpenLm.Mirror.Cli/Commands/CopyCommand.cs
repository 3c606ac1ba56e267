using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary><c>openlm-mirror copy SRC DST</c>.</summary>
internal static class CopyCommand
{
    public static Command Create(CliConsole console)
    {
        var locations = new Argument<string[]>("SRC... DST")
        {
            Description = "Each SRC is a registry reference (host/path:tag or @digest) or oci:DIR[:REF]; DST is a registry reference or oci:DIR[:REF] " +
                "(REF defaults to the full source reference). With several sources DST is oci:DIR or a registry host[:port][/prefix].",
            Arity = ArgumentArity.OneOrMore,
        };
        var json = new Option<bool>("--json") { Description = "Print a JSON report on stdout" };
        var imagesFrom = new Option<string?>("--images-from") { HelpName = "FILE", Description = "Read more source references from FILE, one per line ('#' comments allowed)" };
        var parallelImages = new Option<int>("--parallel-images") { HelpName = "N", Description = "With several sources, how many images are copied at once", DefaultValueFactory = _ => 4 };
        var registry = new RegistryOptionSet();
        var copy = new CopyOptionSet();
        var sideCredentials = new SideCredentials();
        // An unknown option would otherwise be taken as SRC or DST and the error would name some other token.
        locations.Validators.Add(RejectOptionLikeValues);
        var command = new Command("copy", "Copy an image (with every platform, or those named by --platform) between registries and OCI layouts, preserving digests");
        command.Arguments.Add(locations);
        registry.AddTo(command);
        copy.AddTo(command);
        command.Options.Add(imagesFrom);
        command.Options.Add(parallelImages);
        sideCredentials.AddTo(command);
        command.Options.Add(json);

        command.SetAction(async (parse, cancellationToken) =>
        {
            var log = OutputOptions.Log(parse, console);
            var given = parse.GetValue(locations) ?? [];
            var sourceTexts = given.SkipLast(1).ToList();
            if (parse.GetValue(imagesFrom) is { } listFile)
            {
                sourceTexts.AddRange(ReadImageList(listFile));
            }

            if (sourceTexts.Count == 0)
            {
                throw new InputException("copy needs at least one SRC (argument or --images-from)");
            }

            var sources = sourceTexts.Select(text => ImageLocation.Parse(WithoutTransport(text), "SRC")).ToList();
            var destinationText = WithoutTransport(given[^1]);
            var images = parse.GetValue(parallelImages);
            if (images is < 1 or > 64)
            {
                throw new InputException($"--parallel-images must be between 1 and 64 (got {images})");
            }

            var registryOptions = registry.Build(parse, console, log);
            sideCredentials.Apply(parse, registryOptions, sources, destinationText, console, log);
            if (sources.Count > 1)
            {
                return await CopyManyAsync(parse, console, log, registryOptions, copy, sources, destinationText, images, parse.GetValue(json), cancellationToken).ConfigureAwait(false);
            }

            var src = sources[0];
            var dst = ImageLocation.Parse(destinationText, "DST");
            using var connector = new RegistryConnector(registryOptions);
            var clock = Stopwatch.StartNew();
            var result = await ProgressDisplay.RunAsync(console, OutputOptions.Progress(parse, console, parse.GetValue(json)), async observer =>
            {
                RunObserver.PhaseStarted(observer, RunPhase.Copy, 1, 0);
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
                // One shape whatever the number of sources: the destination and a list of images.
                await console.Out.WriteLineAsync(JsonSerializer.Serialize(Document(destinationText, [result], clock.Elapsed), Format.Json)).ConfigureAwait(false);
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

    private static async Task<int> CopyManyAsync(ParseResult parse, CliConsole console, ConsoleLog log, RegistryOptions registryOptions, CopyOptionSet copy, IReadOnlyList<ImageLocation> sources, string destination, int parallelImages, bool json, CancellationToken cancellationToken)
    {
        using var connector = new RegistryConnector(registryOptions);
        var clock = Stopwatch.StartNew();
        var results = await ProgressDisplay.RunAsync(console, OutputOptions.Progress(parse, console, json), async observer =>
        {
            RunObserver.PhaseStarted(observer, RunPhase.Copy, sources.Count, 0);
            var options = new CopyOptions
            {
                Concurrency = copy.GetConcurrency(parse),
                Platforms = copy.Platforms(parse),
                Observer = observer,
                Retry = new RetryPolicy(registryOptions.Retries, log),
            };
            return await new ImageCopier(connector, options).CopyManyAsync(sources, destination, parallelImages, cancellationToken).ConfigureAwait(false);
        }).ConfigureAwait(false);

        var bytes = results.Sum(r => r.BytesCopied);
        if (json)
        {
            await console.Out.WriteLineAsync(JsonSerializer.Serialize(Document(destination, results, clock.Elapsed), Format.Json)).ConfigureAwait(false);
        }
        else
        {
            foreach (var r in results)
            {
                await console.Out.WriteLineAsync($"{r.Destination} {r.Root.Digest}").ConfigureAwait(false);
            }

            await console.Out.WriteLineAsync($"{results.Count} images, {Format.Bytes(bytes)} copied in {Format.Seconds(clock.Elapsed)} ({Format.Rate(bytes, clock.Elapsed)})").ConfigureAwait(false);
        }

        return ExitCodes.Success;
    }

    private static object Document(string destination, IReadOnlyList<CopyResult> results, TimeSpan elapsed) => new
    {
        destination,
        images = results.Select(Report).ToList(),
        bytesCopied = results.Sum(r => r.BytesCopied),
        seconds = Math.Round(elapsed.TotalSeconds, 3),
    };

    private static CopyReport Report(CopyResult r) => new(
        r.Source,
        r.Destination,
        r.Root.Digest.ToString(),
        r.SourceRoot.Digest.ToString(),
        r.Root.MediaType,
        r.PlatformsKept.Select(Vocabulary.ImagePlatform).ToList(),
        r.BytesCopied,
        r.BlobsCopied,
        r.BlobsSkipped,
        r.BlobsMounted);

    /// <summary>One image in the --json report (the contract runbooks read).</summary>
    private sealed record CopyReport(
        string Source,
        string Destination,
        string Digest,
        string SourceDigest,
        string MediaType,
        IReadOnlyList<object> ImagePlatforms,
        long BytesCopied,
        int BlobsCopied,
        int BlobsSkipped,
        int BlobsMounted);

    /// <summary>skopeo's and crane's <c>docker://</c> transport prefix names a registry reference, which is what a plain reference is here.</summary>
    internal static string WithoutTransport(string location) =>
        location.StartsWith("docker://", StringComparison.OrdinalIgnoreCase) ? location["docker://".Length..] : location;

    private static IEnumerable<string> ReadImageList(string path)
    {
        if (!File.Exists(path))
        {
            throw new InputException($"--images-from '{path}' does not exist");
        }

        var lineNumber = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNumber++;
            var line = raw.Split('#')[0].Trim();
            if (line.Length == 0)
            {
                continue;
            }

            if (line.Any(char.IsWhiteSpace))
            {
                throw new InputException($"{path}:{lineNumber}: expected one image reference per line, got '{line}'");
            }

            yield return line;
        }
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
