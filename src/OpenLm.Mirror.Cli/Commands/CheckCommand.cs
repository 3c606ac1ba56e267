using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>
/// <c>openlm-mirror check BUNDLE --to HOST[:PORT][/PREFIX]</c>: audits an import. Every image and chart of the bundle
/// must be tagged in the target with the bundle's digest, and its whole graph must be present there.
/// Exit 0 when everything is there, 1 otherwise.
/// </summary>
internal static class CheckCommand
{
    public static Command Create(CliConsole console)
    {
        var bundle = new BundleTargetOptions();
        var registry = new RegistryOptionSet();
        var json = new Option<bool>("--json") { Description = "Print the JSON report on stdout" };
        var report = new Option<string?>("--output", "-o") { HelpName = "report.json", Description = "Also write the JSON report to this file (evidence for auditors)" };
        var parallelImages = new Option<int>("--parallel-images") { HelpName = "N", Description = "Images checked at once", DefaultValueFactory = _ => 4 };
        var concurrency = new Option<int>("--concurrency") { HelpName = "N", Description = "Registry requests in flight", DefaultValueFactory = _ => 8 };

        var command = new Command("check", "Check that every image and chart of a bundle is in the air-gapped registry, complete and with the bundle's digests (exit 0 when complete, 1 otherwise)");
        bundle.AddTo(command);
        registry.AddTo(command);
        command.Options.Add(parallelImages);
        command.Options.Add(concurrency);
        command.Options.Add(report);
        command.Options.Add(json);

        command.SetAction(async (parse, cancellationToken) =>
        {
            var log = new ConsoleLog(console.Error, verbose: false);
            var images = parse.GetValue(parallelImages);
            if (images is < 1 or > 64)
            {
                throw new InputException($"--parallel-images must be between 1 and 64 (got {images})");
            }

            var requests = parse.GetValue(concurrency);
            if (requests is < 1 or > 256)
            {
                throw new InputException($"--concurrency must be between 1 and 256 (got {requests})");
            }

            var reportPath = parse.GetValue(report);
            if (reportPath is not null && Directory.Exists(reportPath))
            {
                throw new InputException($"-o '{reportPath}' is a directory");
            }

            var head = await bundle.InspectAsync(parse, log, cancellationToken).ConfigureAwait(false);
            var mapper = bundle.Mapper(parse, head.Manifest);
            var roots = BundleTargetOptions.Roots(head);
            var targets = mapper.MapAll(roots.Select(r => r.Source)).ToDictionary(m => m.Source.ToString(), m => m.Target, StringComparer.Ordinal);
            var items = roots
                .Select(r => new ImportCheckItem(r.Source, targets[r.Source.ToString()], r.Descriptor, r.IsChart))
                .ToList();

            var registryOptions = registry.Build(parse, console, log);
            using var connector = new RegistryConnector(registryOptions);
            var started = DateTimeOffset.UtcNow;
            var results = await new ImportChecker(connector, new ImportCheckOptions { ParallelImages = images, Concurrency = requests })
                .CheckAsync(items, null, cancellationToken).ConfigureAwait(false);
            var finished = DateTimeOffset.UtcNow;
            var complete = results.All(r => r.Status == ImportCheckStatus.Ok);

            var document = new
            {
                registry = mapper.Target.ToString(),
                checkedAt = started.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                seconds = Math.Round((finished - started).TotalSeconds, 3),
                complete,
                bundle = new
                {
                    path = Path.GetFullPath(parse.GetValue(bundle.Bundle)!),
                    digest = head.BundleDigest.ToString(),
                    platform = new { name = head.Manifest.Platform.Name, version = head.Manifest.Platform.Version },
                    created = head.Manifest.Created?.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                    signature = head.Signature switch
                    {
                        SignatureStatus.Verified => "verified",
                        SignatureStatus.NotChecked => "notChecked",
                        _ => "absent",
                    },
                    keyId = head.VerifiedKeyId,
                },
                summary = new
                {
                    images = results.Count,
                    ok = Count(results, ImportCheckStatus.Ok),
                    missing = Count(results, ImportCheckStatus.Missing),
                    wrongDigest = Count(results, ImportCheckStatus.WrongDigest),
                    incomplete = Count(results, ImportCheckStatus.Incomplete),
                    error = Count(results, ImportCheckStatus.Error),
                },
                images = results.Select(r => new
                {
                    kind = r.Item.IsChart ? "chart" : "image",
                    source = r.Item.Source.ToString(),
                    target = r.Item.Target.ToString(),
                    expectedDigest = r.Item.Expected.Digest.ToString(),
                    foundDigest = r.FoundDigest?.ToString(),
                    status = StatusText(r.Status),
                    blobsChecked = r.DescendantsChecked,
                    missingBlobs = r.MissingBlobs.Select(b => new { digest = b.Digest.ToString(), mediaType = b.MediaType, size = b.Size }).ToList(),
                    error = r.Error,
                }).ToList(),
            };
            var reportJson = JsonSerializer.Serialize(document, Format.Json);
            if (reportPath is not null)
            {
                try
                {
                    AtomicFile.WriteAllBytes(reportPath, Encoding.UTF8.GetBytes(reportJson + "\n"));
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    throw new OperationException($"cannot write report '{reportPath}': {ex.Message}", ex);
                }
            }

            foreach (var result in results.Where(r => r.Status != ImportCheckStatus.Ok))
            {
                await console.Error.WriteLineAsync(Problem(result)).ConfigureAwait(false);
            }

            if (parse.GetValue(json))
            {
                await console.Out.WriteLineAsync(reportJson).ConfigureAwait(false);
            }
            else
            {
                foreach (var result in results)
                {
                    await console.Out.WriteLineAsync($"{StatusText(result.Status),-12} {result.Item.Target} {result.FoundDigest?.ToString() ?? "-"}").ConfigureAwait(false);
                }

                var bad = results.Count - Count(results, ImportCheckStatus.Ok);
                await console.Out.WriteLineAsync(complete
                    ? $"complete: all {results.Count} images and charts of {head.Manifest.Platform.Name} {head.Manifest.Platform.Version} are in {mapper.Target} with the bundle's digests"
                    : $"INCOMPLETE: {bad} of {results.Count} images and charts are missing, wrong or incomplete in {mapper.Target}").ConfigureAwait(false);
                if (reportPath is not null)
                {
                    await console.Out.WriteLineAsync($"report: {reportPath}").ConfigureAwait(false);
                }
            }

            return complete ? ExitCodes.Success : ExitCodes.Operational;
        });
        return command;
    }

    private static int Count(IReadOnlyList<ImportCheckResult> results, ImportCheckStatus status) => results.Count(r => r.Status == status);

    private static string StatusText(ImportCheckStatus status) => status switch
    {
        ImportCheckStatus.Ok => "ok",
        ImportCheckStatus.Missing => "missing",
        ImportCheckStatus.WrongDigest => "wrong-digest",
        ImportCheckStatus.Incomplete => "incomplete",
        _ => "error",
    };

    private static string Problem(ImportCheckResult result)
    {
        var item = result.Item;
        return result.Status switch
        {
            ImportCheckStatus.Missing => $"missing: {item.Target} (from {item.Source}) is not in the registry; expected {item.Expected.Digest}",
            ImportCheckStatus.WrongDigest => $"wrong-digest: {item.Target} (from {item.Source}) is {result.FoundDigest}, expected {item.Expected.Digest}",
            ImportCheckStatus.Incomplete => $"incomplete: {item.Target} (from {item.Source}) lacks {result.MissingBlobs.Count} of its manifests/blobs:" +
                string.Concat(result.MissingBlobs.Select(b => $"\n  {b.Digest} {b.MediaType} ({Format.Bytes(b.Size)})")),
            _ => $"error: {item.Target} (from {item.Source}) could not be checked: {result.Error}",
        };
    }
}
