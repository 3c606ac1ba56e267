using System.CommandLine;
using System.Text.Json;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Import;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Registry.Kinds;
using OpenLm.Mirror.Registry.Upload;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary><c>openlm-mirror import BUNDLE --key release.pub --to HOST[:PORT][/PREFIX]</c>.</summary>
internal static class ImportCommand
{
    public static Command Create(CliConsole console)
    {
        var bundle = new Argument<string>("BUNDLE") { Description = "The signed bundle (.tar or .tar.zst)" };
        var key = new Option<string?>("--key") { Description = "The release public key (SPKI PEM); the signature is checked before anything is pushed", HelpName = "FILE" };
        var skipSignature = new Option<bool>("--insecure-skip-signature") { Description = "Import without checking the signature (digests are still verified). Dangerous." };
        var to = new Option<string>("--to") { Description = "Target registry and optional prefix, e.g. registry.local:5000/openlm", HelpName = "HOST[:PORT][/PREFIX]", Required = true };
        var map = new Option<string[]>("--map") { Description = "Rename rule FROM_PREFIX=TO_PREFIX (longest FROM wins), e.g. docker.io/library=thirdparty", HelpName = "FROM=TO", AllowMultipleArgumentsPerToken = false };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the plan (images, target references, blobs to upload vs present) and write nothing" };
        var receipt = new Option<string?>("--receipt") { Description = "Write what the target now holds (registry, images, digests, time) to FILE", HelpName = "FILE" };
        var json = new Option<bool>("--json") { Description = "Print a JSON report on stdout" };
        var kind = BundleTargetOptions.RegistryKindOption();
        var chunkSize = new Option<string?>("--chunk-size") { HelpName = "SIZE", Description = "Upload blobs as chunked PATCH requests of SIZE (e.g. 8MiB, 512KiB; at least 256KiB) instead of one PUT each; without it chunks are used only after a 413" };
        var maxPathComponents = BundleTargetOptions.MaxPathComponentsOption();
        var createRepositories = new Option<bool>("--create-repositories") { Description = "Create missing target repositories first (ECR: CreateRepository with the standard AWS credential chain; Harbor: the project, private, with the registry credentials)" };
        var registry = new RegistryOptionSet();
        var copy = new CopyOptionSet();
        var command = new Command("import", "Verify a bundle and push it into a private registry in one streaming pass; tags are set only after the whole bundle verified");
        command.Arguments.Add(bundle);
        command.Options.Add(key);
        command.Options.Add(skipSignature);
        command.Options.Add(to);
        command.Options.Add(map);
        command.Options.Add(maxPathComponents);
        command.Options.Add(dryRun);
        command.Options.Add(receipt);
        command.Options.Add(copy.Concurrency);
        command.Options.Add(kind);
        command.Options.Add(createRepositories);
        command.Options.Add(chunkSize);
        registry.AddTo(command);
        command.Options.Add(json);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var path = parse.GetValue(bundle)!;
            KeyInputs.RequireFile(path, "BUNDLE");
            var keyPath = parse.GetValue(key);
            if (keyPath is null && !parse.GetValue(skipSignature))
            {
                throw new IntegrityException("import refuses to run without --key (the release public key); --insecure-skip-signature is the explicit opt-out");
            }

            if (keyPath is not null && parse.GetValue(skipSignature))
            {
                throw new InputException("--key and --insecure-skip-signature cannot be combined");
            }

            if (keyPath is not null)
            {
                KeyInputs.RequireFile(keyPath, "--key");
            }

            OutputPaths.Check(parse.GetValue(dryRun) ? null : parse.GetValue(receipt), "--receipt");
            using var publicKey = keyPath is null ? null : VerificationKey.Load(keyPath);
            var log = OutputOptions.Log(parse, console);
            var registryOptions = registry.Build(parse, console, log);
            var targetHost = parse.GetValue(to)!.Split('/', 2)[0];
            if ((BundleTargetOptions.ParseKind(parse.GetValue(kind)) == RegistryKind.Ecr || RegistryKinds.FromHost(targetHost) == RegistryKind.Ecr)
                && (EcrRegistryAddress.TryParse(targetHost, out var ecrAddress) ? ecrAddress.Region : Mirror.Aws.EcrApiOptions.DefaultRegion()) is { } region)
            {
                // No docker login needed for ECR: a missing credential comes from GetAuthorizationToken.
                registryOptions.Credentials = new Mirror.Registry.Auth.EcrAuthorizationTokenProvider(
                    registryOptions.Credentials, new HashSet<string>([targetHost], StringComparer.OrdinalIgnoreCase), () => new Mirror.Aws.EcrApi(new Mirror.Aws.EcrApiOptions { Region = region }), ecrAddress?.RegistryId);
            }

            using var connector = new RegistryConnector(registryOptions);
            var progress = parse.GetValue(dryRun) ? ProgressMode.None : OutputOptions.Progress(parse, console, parse.GetValue(json));
            var result = await ProgressDisplay.RunAsync(console, progress, observer => new BundleImporter(connector, log).ImportAsync(
                new ImportRequest { Observer = observer, BundlePath = path, Key = publicKey, AllowUnsigned = publicKey is null, Target = parse.GetValue(to)!, Maps = parse.GetValue(map) ?? [], MaxPathComponents = parse.GetValue(maxPathComponents), DryRun = parse.GetValue(dryRun), Concurrency = copy.GetConcurrency(parse),
                    Precheck = new PrecheckOptions { Kind = BundleTargetOptions.ParseKind(parse.GetValue(kind)), CreateRepositories = parse.GetValue(createRepositories), ChunkBytes = ParseSize(parse.GetValue(chunkSize)), MaxPathComponents = parse.GetValue(maxPathComponents) } },
                cancellationToken: cancellationToken)).ConfigureAwait(false);

            if (parse.GetValue(receipt) is { } receiptPath && !result.DryRun)
            {
                ImportReceipt.From(result, DateTimeOffset.UtcNow).Write(receiptPath);
            }

            var exit = result.Problems.Count > 0 ? ExitCodes.Operational : ExitCodes.Success;
            if (parse.GetValue(json))
            {
                await console.Out.WriteLineAsync(JsonSerializer.Serialize(Report(result, publicKey), Format.Json)).ConfigureAwait(false);
                return exit;
            }

            var o = console.Out;
            if (result.DryRun)
            {
                foreach (var finding in result.Findings)
                {
                    await o.WriteLineAsync($"probe      {finding}").ConfigureAwait(false);
                }

                foreach (var problem in result.Problems)
                {
                    await o.WriteLineAsync($"PROBLEM    {problem.Message}").ConfigureAwait(false);
                    if (TargetProblemFormat.Fix(problem) is { } fix)
                    {
                        await o.WriteLineAsync($"  fix:     {fix}").ConfigureAwait(false);
                    }
                }
            }

            foreach (var image in result.Images)
            {
                await o.WriteLineAsync($"{(result.DryRun ? "would push" : image.Tag.ToString().ToLowerInvariant()),-10} {image.Target} {image.Digest}  <- {image.Source}").ConfigureAwait(false);
            }

            var summary = result.DryRun
                ? $"dry run: {result.Images.Count} images; {result.BlobsUploaded} blobs to upload ({Format.Bytes(result.BytesUploaded)}), {result.BlobsPresent} already present ({Format.Bytes(result.BytesPresent)}); nothing written"
                : result.BlobsUploaded == 0 && result.BlobsMounted == 0
                    ? $"{result.Images.Count} images in {result.Registry}: every blob was already present, nothing uploaded"
                    : $"{result.Images.Count} images in {result.Registry}: {result.BlobsUploaded} blobs uploaded ({Format.Bytes(result.BytesUploaded)}), {result.BlobsMounted} mounted, {result.BlobsPresent} already present, {result.ManifestsPushed} manifests";
            await o.WriteLineAsync(summary).ConfigureAwait(false);
            if (result.Problems.Count > 0)
            {
                await console.Error.WriteLineAsync($"error: the import would stop before pushing anything: {result.Problems.Count} problem(s) above").ConfigureAwait(false);
            }

            return exit;
        });
        return command;
    }

    private static long? ParseSize(string? text)
    {
        if (text is null)
        {
            return null;
        }

        var match = System.Text.RegularExpressions.Regex.Match(text.Trim(), @"^(\d+)\s*(|b|k|kb|kib|m|mb|mib)$", System.Text.RegularExpressions.RegexOptions.IgnoreCase);
        if (!match.Success || !long.TryParse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture, out var number))
        {
            throw new InputException($"--chunk-size '{text}' is not a size (e.g. 8MiB, 512KiB, 1048576)");
        }

        var unit = match.Groups[2].Value.ToLowerInvariant();
        var size = unit.StartsWith('k') ? number << 10 : unit.StartsWith('m') ? number << 20 : number;
        return size >= UploadTuning.FloorChunkBytes ? size : throw new InputException($"--chunk-size must be at least 256KiB (got {text})");
    }

    /// <summary>The --json report (the contract runbooks read; shared vocabulary in docs/json-output.md).</summary>
    private static object Report(ImportResult result, VerificationKey? key) => new
    {
        registry = result.Registry,
        bundleDigest = result.BundleDigest,
        platform = new { name = result.Platform, version = result.Version },
        signature = new { status = result.SignatureVerified ? "verified" : "notChecked", keyId = result.SignatureVerified ? key?.KeyId : null },
        dryRun = result.DryRun,
        images = result.Images.Select(i => new
        {
            source = i.Source,
            target = i.Target,
            digest = i.Digest,
            mediaType = i.MediaType,
            status = JsonNamingPolicy.CamelCase.ConvertName(i.Tag.ToString()),
        }).ToList(),
        blobsUploaded = result.BlobsUploaded,
        bytesUploaded = result.BytesUploaded,
        blobsMounted = result.BlobsMounted,
        blobsPresent = result.BlobsPresent,
        bytesPresent = result.BytesPresent,
        manifestsPushed = result.ManifestsPushed,
        passes = result.Passes,
        findings = result.Findings,
        problems = result.Problems,
    };
}
