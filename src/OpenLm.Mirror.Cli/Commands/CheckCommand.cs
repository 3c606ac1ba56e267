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
/// <c>openlm-mirror check BUNDLE --to HOST[:PORT][/PREFIX]</c>: audits an import with <see cref="CheckWorkflow"/> and
/// prints the report. Exit 0 when everything is there, 4 when something is missing, 1 when it could not be checked.
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
        var kind = BundleTargetOptions.RegistryKindOption();

        var command = new Command("check", "Check that every image and chart of a bundle is in the air-gapped registry, complete and with the bundle's digests (exit 0 when complete, 4 when something is missing, 1 when the registry could not be checked)");
        bundle.AddTo(command);
        registry.AddTo(command);
        command.Options.Add(kind);
        command.Options.Add(parallelImages);
        command.Options.Add(concurrency);
        command.Options.Add(report);
        command.Options.Add(json);

        command.SetAction(async (parse, cancellationToken) =>
        {
            var log = OutputOptions.Log(parse, console);
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
            OutputPaths.Check(reportPath, "-o");

            var opened = await bundle.OpenAsync(parse, log, cancellationToken).ConfigureAwait(false);
            using var connector = new RegistryConnector(registry.Build(parse, console, log));
            var check = await CheckWorkflow.RunAsync(opened, connector, new ImportCheckOptions { ParallelImages = images, Concurrency = requests, RegistryKind = BundleTargetOptions.ParseKind(parse.GetValue(kind)) }, cancellationToken).ConfigureAwait(false);
            var reportJson = JsonSerializer.Serialize(Document(check), Format.Json);
            if (reportPath is not null)
            {
                WriteReport(reportPath, reportJson);
            }

            await PrintAsync(console, check, parse.GetValue(json) ? reportJson : null, reportPath).ConfigureAwait(false);
            return Outcome(console, check);
        });
        return command;
    }

    /// <summary>0 complete; 1 when some image could not be checked (registry unreachable: retry later); 4 when the registry answered and something is missing (re-import).</summary>
    private static int Outcome(CliConsole console, CheckReport check)
    {
        if (check.Complete)
        {
            return ExitCodes.Success;
        }

        var unchecked_ = check.Count(ImportCheckStatus.Error);
        if (unchecked_ > 0)
        {
            return console.Fail(ExitCodes.Operational, "check-failed", $"{unchecked_} of {check.Results.Count} images and charts could not be checked in {check.Bundle.Mapper.Target}", "check that the registry is reachable, then run check again");
        }

        var bad = check.Results.Count - check.Count(ImportCheckStatus.Ok);
        return console.Fail(ExitCodes.Incomplete, "target-incomplete", $"{bad} of {check.Results.Count} images and charts are missing, wrong or incomplete in {check.Bundle.Mapper.Target}", "import the bundle again (it uploads only what is missing)");
    }

    private static void WriteReport(string path, string reportJson)
    {
        try
        {
            AtomicFile.WriteAllBytes(path, Encoding.UTF8.GetBytes(reportJson + "\n"));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OperationException($"cannot write report '{path}': {ex.Message}", ex);
        }
    }

    /// <summary>Problems on stderr; on stdout the JSON report when asked for, else one line per root and a verdict.</summary>
    private static async Task PrintAsync(CliConsole console, CheckReport check, string? reportJson, string? reportPath)
    {
        var results = check.Results;
        foreach (var result in results.Where(r => r.Status != ImportCheckStatus.Ok))
        {
            await console.Error.WriteLineAsync(Problem(result)).ConfigureAwait(false);
        }

        if (reportJson is not null)
        {
            await console.Out.WriteLineAsync(reportJson).ConfigureAwait(false);
            return;
        }

        foreach (var finding in check.Probe?.Findings() ?? [])
        {
            await console.Out.WriteLineAsync($"probe        {finding}").ConfigureAwait(false);
        }

        foreach (var result in results)
        {
            await console.Out.WriteLineAsync($"{StatusText(result.Status),-12} {result.Item.Target} {result.FoundDigest?.ToString() ?? "-"}").ConfigureAwait(false);
        }

        var platform = check.Bundle.Head.Manifest.Platform;
        var target = check.Bundle.Mapper.Target;
        var bad = results.Count - check.Count(ImportCheckStatus.Ok);
        await console.Out.WriteLineAsync(check.Complete
            ? $"complete: all {results.Count} images and charts of {platform.Name} {platform.Version} are in {target} with the bundle's digests"
            : $"INCOMPLETE: {bad} of {results.Count} images and charts are missing, wrong or incomplete in {target}").ConfigureAwait(false);
        if (reportPath is not null)
        {
            await console.Out.WriteLineAsync($"report: {reportPath}").ConfigureAwait(false);
        }
    }

    /// <summary>The JSON report (evidence for auditors; its shape is a contract).</summary>
    private static object Document(CheckReport check)
    {
        var head = check.Bundle.Head;
        return new
        {
            registry = check.Bundle.Mapper.Target.ToString(),
            checkedAt = check.Started.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            seconds = Math.Round(check.Elapsed.TotalSeconds, 3),
            complete = check.Complete,
            bundle = new
            {
                path = Path.GetFullPath(check.Bundle.Path),
                digest = head.BundleDigest.ToString(),
                platform = new { name = head.Manifest.Platform.Name, version = head.Manifest.Platform.Version },
                created = head.Manifest.Created?.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                signature = Vocabulary.Signature(head.Signature, head.VerifiedKeyId),
            },
            summary = new
            {
                images = check.Results.Count,
                ok = check.Count(ImportCheckStatus.Ok),
                missing = check.Count(ImportCheckStatus.Missing),
                wrongDigest = check.Count(ImportCheckStatus.WrongDigest),
                incomplete = check.Count(ImportCheckStatus.Incomplete),
                error = check.Count(ImportCheckStatus.Error),
            },
            images = check.Results.Select(r => new
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
    }

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
