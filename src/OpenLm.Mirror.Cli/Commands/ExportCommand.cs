using System.CommandLine;
using System.Text.Json;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Export;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary><c>openlm-mirror export (--lock LOCK | --manifest FILE) --key release.key -o BUNDLE.tar</c>.</summary>
internal static class ExportCommand
{
    public static Command Create(CliConsole console)
    {
        var inputs = new ReleaseInputs();
        var registry = new RegistryOptionSet();
        var lockOption = new Option<string?>("--lock") { Description = "Lock file from resolve (pinned digests, no re-resolution)", HelpName = "LOCK.json" };
        var key = new Option<string>("--key") { Description = "Release signing key (PKCS#8 PEM, from keygen)", HelpName = "FILE", Required = true };
        var keyPasswordEnv = new Option<string?>("--key-password-env") { Description = "Environment variable holding the signing key's passphrase", HelpName = "VAR" };
        var keyPasswordStdin = new Option<bool>("--key-password-stdin") { Description = "Read the signing key's passphrase from standard input (as keygen --password-stdin)" };
        var output = new Option<string>("--output", "-o") { Description = "The bundle to write (.tar, or .tar.zst with --compress zstd)", HelpName = "BUNDLE", Required = true };
        var cache = new Option<string?>("--cache") { Description = "Cache directory (an OCI layout) reused across runs; an interrupted export resumes from it [default: ~/.cache/openlm-mirror/export]", HelpName = "DIR" };
        var compress = new Option<string>("--compress") { Description = "none (default: layers are already compressed) or zstd", HelpName = "none|zstd", DefaultValueFactory = _ => "none" };
        var bases = new Option<string[]>("--base") { Description = "Write a delta: leave out the configs and layers this previous bundle, lock or import receipt holds (repeatable)", HelpName = "FILE", AllowMultipleArgumentsPerToken = false };
        var splitSize = new Option<string?>("--split-size") { Description = "Write the bundle as parts NAME.001, NAME.002, … of at most SIZE each (e.g. 4095M for FAT32 media; at least 64M)", HelpName = "SIZE" };
        var force = new Option<bool>("--force") { Description = "Replace an existing bundle file" };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary on stdout" };
        var copy = new CopyOptionSet();
        var command = new Command("export", "Pull a release into the cache (verified as it streams) and write one signed, deterministic bundle");
        command.Options.Add(lockOption);
        inputs.AddTo(command);
        command.Options.Add(key);
        command.Options.Add(keyPasswordEnv);
        command.Options.Add(keyPasswordStdin);
        command.Options.Add(output);
        command.Options.Add(cache);
        command.Options.Add(compress);
        command.Options.Add(bases);
        command.Options.Add(splitSize);
        command.Options.Add(force);
        command.Options.Add(copy.Concurrency);
        registry.AddTo(command);
        command.Options.Add(json);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var lockPath = parse.GetValue(lockOption);
            var manifestPath = parse.GetValue(inputs.Manifest);
            ReleaseInputs.Require(lockPath is null != manifestPath is null, "export needs exactly one of --lock LOCK.json or --manifest FILE");
            ReleaseInputs.Require(lockPath is null || parse.GetValue(inputs.Platform) is null, "--platform applies when resolving; with --lock the lock's platforms are used");
            var compression = parse.GetValue(compress) switch
            {
                "none" => BundleCompression.None,
                "zstd" => BundleCompression.Zstd,
                var other => throw new InputException($"--compress must be none or zstd (got '{other}')"),
            };
            var parts = parse.GetValue(splitSize) is { } sizeText ? SplitSize.Parse(sizeText) : (long?)null;
            OutputPaths.CheckBundleName(parse.GetValue(output)!, compression == BundleCompression.Zstd);
            OutputPaths.Check(parse.GetValue(output), "-o");
            var log = OutputOptions.Log(parse, console);
            StalePartials.Remove(parse.GetValue(output)!, log);
            var keyPath = parse.GetValue(key)!;
            KeyInputs.RequireFile(keyPath, "--key");
            var passphrase = KeyInputs.Passphrase(parse.GetValue(keyPasswordEnv), parse.GetValue(keyPasswordStdin), console, "--key-password");
            using var signingKey = SigningKey.Load(keyPath, () => passphrase);

            var registryOptions = inputs.WithMirrors(parse, registry.Build(parse, console, log));
            using var connector = new RegistryConnector(registryOptions);
            var quiet = parse.GetValue(json);
            var cacheDir = parse.GetValue(cache) ?? Release.DefaultCacheDirectory();
            var lockFile = lockPath is not null
                ? LockFile.Load(lockPath)
                : await ProgressDisplay.RunAsync(console, OutputOptions.Progress(parse, console, quiet), observer =>
                {
                    RunObserver.PhaseStarted(observer, RunPhase.Resolve, 0, 0);
                    return inputs.ResolveAsync(parse, manifestPath!, cacheDir, connector, log, cancellationToken);
                }).ConfigureAwait(false);
            console.KeptOnInterrupt = $"every blob verified so far is kept in the cache {cacheDir}; no bundle was written";
            var outputPath = parse.GetValue(output)!;
            if (!parse.GetValue(force) && File.Exists(outputPath) && parts is null && (parse.GetValue(bases) ?? []).Length == 0)
            {
                // A rerun of a finished export (runbooks rerun) succeeds without rewriting; any other file needs --force.
                log.Info($"{outputPath} exists: checking whether it already is this export");
                var existing = await ExistingExport.CheckAsync(outputPath, lockFile, signingKey, cancellationToken).ConfigureAwait(false);
                if (!existing.Matches)
                {
                    throw new InputException($"'{outputPath}' already exists and is not this export ({existing.Difference}); remove it or allow overwriting") { Remedy = Remedy.Overwrite, Subject = outputPath };
                }

                await PrintAlreadyExportedAsync(console.Out, outputPath, existing, quiet).ConfigureAwait(false);
                return ExitCodes.Success;
            }

            var result = await ProgressDisplay.RunAsync(console, OutputOptions.Progress(parse, console, quiet), async observer =>
            {
                var exporter = new BundleExporter(connector, new CopyOptions { Concurrency = copy.GetConcurrency(parse), Observer = observer, Retry = new RetryPolicy(registryOptions.Retries, log) }, log);
                return await exporter.ExportAsync(
                    new ExportRequest
                    {
                        Lock = lockFile,
                        OutputPath = parse.GetValue(output)!,
                        CacheDirectory = cacheDir,
                        WriteOptions = new BundleWriteOptions { Compression = compression, SourceDateEpoch = BundleFormat.SourceDateEpochFromEnvironment(), Overwrite = parse.GetValue(force), SplitSize = parts },
                        ToolVersion = ReleaseInputs.ToolVersion,
                        Bases = parse.GetValue(bases) ?? [],
                    },
                    signingKey,
                    cancellationToken: cancellationToken).ConfigureAwait(false);
            }).ConfigureAwait(false);

            await PrintAsync(console.Out, result, signingKey.KeyId, quiet).ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    private static string DeltaNote(BundleManifest manifest) => manifest.Base is { } delta
        ? $" (delta: {delta.Omitted.Count} blobs, {Format.Bytes(delta.Omitted.Sum(o => o.Size))}, left to {string.Join(", ", delta.Files.Select(f => $"{f.Kind} of {f.Release.Name} {f.Release.Version}"))})"
        : string.Empty;

    private static async Task PrintAsync(TextWriter o, ExportResult result, string keyId, bool json)
    {
        var bundle = result.Bundle;
        if (json)
        {
            await o.WriteLineAsync(JsonSerializer.Serialize(new
            {
                status = "written",
                bundle = bundle.OutputPath,
                bundleDigest = bundle.BundleDigest.ToString(),
                signature = Vocabulary.Signed(keyId),
                platform = Vocabulary.Release(bundle.Manifest.Platform),
                images = bundle.Manifest.Images.Count,
                charts = bundle.Manifest.Charts.Count,
                blobs = bundle.Manifest.Blobs,
                delta = bundle.Manifest.Base is { } delta
                    ? new { bases = delta.Files, omittedBlobs = delta.Omitted.Count, omittedBytes = delta.Omitted.Sum(o => o.Size) }
                    : null,
                fileBytes = bundle.FileBytes,
                parts = bundle.PartPaths.Count == 0 ? null : bundle.PartPaths,
                bytesDownloaded = result.BytesDownloaded,
                blobsDownloaded = result.BlobsDownloaded,
                blobsReused = result.BlobsReused,
                pullSeconds = Math.Round(result.PullTime.TotalSeconds, 3),
                writeSeconds = Math.Round(result.WriteTime.TotalSeconds, 3),
            }, Format.Json)).ConfigureAwait(false);
        }
        else
        {
            await o.WriteLineAsync(
                $"{bundle.OutputPath}: {bundle.Manifest.Platform.Name} {bundle.Manifest.Platform.Version}, {bundle.Manifest.Images.Count} images, {bundle.Manifest.Charts.Count} charts, " +
                $"{bundle.Manifest.Blobs?.Count} blobs, {Format.Bytes(bundle.FileBytes)}{DeltaNote(bundle.Manifest)}{(bundle.PartPaths.Count > 0 ? $" in {bundle.PartPaths.Count} parts" : string.Empty)}; downloaded {Format.Bytes(result.BytesDownloaded)} ({result.BlobsReused} blobs reused from the cache); signed by {keyId}").ConfigureAwait(false);
        }
    }

    private static async Task PrintAlreadyExportedAsync(TextWriter o, string path, ExistingExport existing, bool json)
    {
        var head = existing.Head!;
        var manifest = head.Manifest;
        if (json)
        {
            await o.WriteLineAsync(JsonSerializer.Serialize(new
            {
                status = "alreadyExported",
                bundle = path,
                bundleDigest = head.BundleDigest.ToString(),
                signature = Vocabulary.Signature(head.Signature, head.VerifiedKeyId),
                platform = Vocabulary.Release(manifest.Platform),
                images = manifest.Images.Count,
                charts = manifest.Charts.Count,
                blobs = manifest.Blobs,
                fileBytes = existing.FileBytes,
                bytesDownloaded = 0,
                blobsDownloaded = 0,
                blobsReused = 0,
                pullSeconds = 0,
                writeSeconds = 0,
            }, Format.Json)).ConfigureAwait(false);
        }
        else
        {
            await o.WriteLineAsync(
                $"{path}: already exported: {manifest.Platform.Name} {manifest.Platform.Version}, {manifest.Images.Count} images, {manifest.Charts.Count} charts, " +
                $"{Format.Bytes(existing.FileBytes)}, verified and signed by {head.VerifiedKeyId}; nothing rewritten").ConfigureAwait(false);
        }
    }
}
