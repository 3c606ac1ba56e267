using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.EngineLoad;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary><c>openlm-mirror load BUNDLE</c>: load a signed bundle's images into a Docker engine (no registry needed).</summary>
internal static class LoadCommand
{
    public static Command Create(CliConsole console)
    {
        var bundle = new Argument<string>("BUNDLE") { Description = "The bundle file (.tar or .tar.zst)" };
        var key = new Option<string?>("--key") { HelpName = "FILE", Description = "The release public key (PEM) the bundle must be signed with" };
        var skipSignature = new Option<bool>("--insecure-skip-signature")
        {
            Description = "Load without checking the bundle signature (DANGEROUS: whoever can alter the file chooses what is loaded; digests are still checked)",
        };
        var dockerHost = new Option<string?>("--docker-host")
        {
            HelpName = "URL",
            Description = $"The Docker engine, e.g. unix:///var/run/docker.sock or tcp://127.0.0.1:2375 (default: DOCKER_HOST, else {DockerHost.DefaultUnixSocket})",
        };
        var platform = new Option<string?>("--platform") { HelpName = "os/arch[/variant]", Description = "The platform to load of multi-platform images (default: the engine's own)" };
        var to = new Option<string?>("--to")
        {
            HelpName = "HOST[:PORT][/PREFIX]",
            Description = "Tag the images with their air-gap registry names (as import would push them) instead of their source references",
        };
        var maps = new Option<string[]>("--map")
        {
            HelpName = "FROM=TO",
            Description = "With --to: put images under FROM (registry[/path]) at TO below the target; repeatable",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var tempDir = new Option<string?>("--temp-dir") { HelpName = "DIR", Description = "Where the selected images' blobs are spooled before loading (default: the system temp directory)" };
        var bases = new Option<string[]>("--base")
        {
            HelpName = "EARLIER-BUNDLE",
            Description = "For a delta bundle: an earlier bundle file it was made against (full, split parts, or a delta whose own bases are given too), which supplies the blobs the delta omits; signed with the same key; repeatable",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var json = new Option<bool>("--json") { Description = "Print a JSON report on stdout" };
        var maxPathComponents = BundleTargetOptions.MaxPathComponentsOption();

        var command = new Command("load", "Verify a signed bundle and load its container images (one platform) into a Docker engine");
        command.Arguments.Add(bundle);
        foreach (var option in new Option[] { key, skipSignature, dockerHost, platform, to, maps, maxPathComponents, bases, tempDir, json })
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parse, cancellationToken) =>
        {
            var log = OutputOptions.Log(parse, console);
            var bundlePath = parse.GetValue(bundle)!;
            var keyPath = parse.GetValue(key);
            var insecure = KeyInputs.SkipsSignature(keyPath, parse.GetValue(skipSignature), "refusing to load an unverified bundle", "loading whatever the file contains");

            var mapTexts = parse.GetValue(maps) ?? [];
            var targetText = parse.GetValue(to);
            if (mapTexts.Length > 0 && targetText is null)
            {
                throw new InputException("--map needs --to (the rules place images below the --to target)");
            }

            if (parse.GetValue(maxPathComponents) is not null && targetText is null)
            {
                throw new InputException("--max-path-components needs --to (it flattens the names under the --to target)");
            }

            var options = new DockerLoadOptions
            {
                RequireSignature = !insecure,
                Platform = parse.GetValue(platform) is { } p ? PlatformMatcher.Normalize(Platform.Parse(p)) : null,
                Target = targetText is null ? null : MirrorTarget.Parse(targetText),
                Maps = mapTexts.Select(NameMapRule.Parse).ToList(),
                MaxPathComponents = parse.GetValue(maxPathComponents),
                TempDirectory = parse.GetValue(tempDir),
                Bases = parse.GetValue(bases) ?? [],
                Log = log,
            };
            if (options.Target is not null)
            {
                // Refuse bad or duplicate rules now, not after the bundle's head was read.
                _ = new TargetNameMapper(options.Target, TargetNameMapper.DefaultPlatformSource, options.Maps, options.MaxPathComponents);
            }

            if (options.TempDirectory is { } temp && !Directory.Exists(temp))
            {
                throw new InputException($"--temp-dir '{temp}' does not exist");
            }

            KeyInputs.RequireBundleFile(bundlePath);

            var endpoint = DockerHost.Parse(parse.GetValue(dockerHost) ?? DockerHost.Default());
            using var verificationKey = keyPath is null ? null : VerificationKey.Load(keyPath);
            if (insecure)
            {
                log.Warn("--insecure-skip-signature: the bundle signature is NOT checked. Whoever could alter the bundle file chooses which images get loaded; digests are only checked against the bundle's own, unsigned index.");
            }

            // The signature first (and cheaply: only the head is read), before the engine is even contacted.
            var checkedHead = (await BundleReader.ReadAsync(bundlePath, new BundleReadOptions { Key = verificationKey, RequireSignature = !insecure, HeadOnly = true }, cancellationToken).ConfigureAwait(false)).Head;
            log.Info($"bundle {checkedHead.Manifest.Platform.Name} {checkedHead.Manifest.Platform.Version} ({checkedHead.BundleDigest.Short}): " +
                     (checkedHead.SignatureChecked ? $"signature verified with key {checkedHead.VerifiedKeyId}" : "signature NOT checked"));

            if (options.Bases.Count == 0)
            {
                BundleSource.RequireFull(checkedHead, bundlePath, "loaded into a Docker engine", baseAccepted: true);
            }

            using var engine = await DockerEngine.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            log.Info($"Docker engine {engine.Info.Version} at {engine.Info.Endpoint}: {engine.Info.Platform}, API {ApiVersionNegotiation.Format(engine.Info.ApiVersion)} (engine {engine.Info.EngineApiVersion}{(string.IsNullOrEmpty(engine.Info.MinApiVersion) ? string.Empty : ", min " + engine.Info.MinApiVersion)})");

            console.KeptOnInterrupt = "images the engine had finished loading stay in it, nothing else was changed; the spool directory was removed";
            var clock = Stopwatch.StartNew();
            var bundleBytes = checkedHead.Manifest.Blobs?.TotalBytes ?? 0;
            var mode = OutputOptions.Progress(parse, console, parse.GetValue(json));
            var result = await ProgressDisplay.RunAsync(console, mode, observer =>
            {
                // The display shows the spool's bytes; without one, a log line at every tenth of a large bundle.
                RunObserver.PhaseStarted(observer, RunPhase.Spool, 0, bundleBytes);
                var progress = RunObserver.PhaseBytes(observer, mode == ProgressMode.None ? new ReadProgressLog(log, bundleBytes) : null);
                return DockerBundleLoader.LoadAsync(bundlePath, new ObservedEngine(engine, observer), options with { Key = verificationKey, ReadProgress = progress }, cancellationToken);
            }).ConfigureAwait(false);
            clock.Stop();

            if (parse.GetValue(json))
            {
                await console.Out.WriteLineAsync(JsonSerializer.Serialize(Report(bundlePath, engine.Info, result, clock.Elapsed), Format.Json)).ConfigureAwait(false);
            }
            else
            {
                foreach (var image in result.Loaded)
                {
                    await console.Out.WriteLineAsync($"{image.Tag} {image.ImageId} ({image.Platform})").ConfigureAwait(false);
                }

                var head = result.Head.Manifest;
                await console.Out.WriteLineAsync(
                    $"{result.Loaded.Count} image(s) of {head.Platform.Name} {head.Platform.Version} loaded for {result.Platform} " +
                    $"({Format.Bytes(result.ArchiveBytes)} in {Format.Seconds(clock.Elapsed)}); {result.Skipped.Count} skipped").ConfigureAwait(false);
            }

            // An image the user asked for that could not be loaded (not a chart or artifact) leaves the engine incomplete.
            var missed = result.Skipped.Count(s => Requested(s.Kind));
            return missed == 0
                ? ExitCodes.Success
                : console.Fail(ExitCodes.Incomplete, "images-skipped", $"{missed} of {missed + result.Loaded.Count} images were not loaded for {result.Platform} (see skipped)", "choose the platform the images exist for with --platform os/arch");
        });
        return command;
    }

    /// <summary>Whether a skipped entry is an image the user asked for (charts and artifacts are never loaded).</summary>
    private static bool Requested(SkipKind kind) => kind is SkipKind.Platform or SkipKind.Unsupported;

    /// <summary>A log line at every tenth of a large bundle read (called synchronously by the reader).</summary>
    private sealed class ReadProgressLog(IMirrorLog log, long total) : IProgress<long>
    {
        /// <summary>Smaller bundles are read in seconds; no progress lines for them.</summary>
        private const long MinimumTotal = 256L << 20;

        private int _reported;

        public void Report(long value)
        {
            if (total < MinimumTotal)
            {
                return;
            }

            var tenth = (int)Math.Min(10, value * 10 / total);
            if (tenth > _reported && tenth < 10)
            {
                _reported = tenth;
                log.Info($"verified {tenth * 10}% of the bundle ({Format.Bytes(value)} of about {Format.Bytes(total)})");
            }
        }
    }

    private static object Report(string bundlePath, EngineInfo engine, DockerLoadResult result, TimeSpan elapsed) => new
    {
        bundle = bundlePath,
        bundleDigest = result.Head.BundleDigest.ToString(),
        platform = Vocabulary.Release(result.Head.Manifest.Platform),
        signature = Vocabulary.Signature(result.Head.Signature, result.Head.VerifiedKeyId),
        engine = new
        {
            host = engine.Endpoint,
            version = engine.Version,
            apiVersion = ApiVersionNegotiation.Format(engine.ApiVersion),
            engineApiVersion = engine.EngineApiVersion,
            imagePlatform = Vocabulary.ImagePlatform(engine.Platform),
        },
        imagePlatform = Vocabulary.ImagePlatform(result.Platform),
        images = result.Loaded.Select(i => new
        {
            reference = i.Reference,
            tag = i.Tag,
            digest = i.Digest.ToString(),
            manifest = i.Manifest.ToString(),
            imagePlatform = Vocabulary.ImagePlatform(i.Platform),
            config = i.Config.ToString(),
            imageId = i.ImageId,
            layers = i.Layers,
            size = i.Size,
        }).ToList(),
        skipped = result.Skipped.Select(s => new
        {
            reference = s.Reference,
            digest = s.Digest.ToString(),
            kind = s.Kind,
            requested = Requested(s.Kind),
            reason = s.Reason,
        }).ToList(),
        bytesLoaded = result.ArchiveBytes,
        bytesSpooled = result.SpooledBytes,
        seconds = Math.Round(elapsed.TotalSeconds, 3),
    };
}
