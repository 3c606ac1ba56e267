using System.CommandLine;
using System.Text.Json;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Preflight;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>
/// <c>openlm-mirror preflight --manifest FILE | --lock FILE | --to REGISTRY</c>: runs <see cref="PreflightRunner"/> and
/// prints a verdict per check and the allow-list. Exit 0 when everything is reachable, 1 when a check failed, 2 for bad input.
/// </summary>
internal static class PreflightCommand
{
    public static Command Create(CliConsole console)
    {
        var release = new ReleaseInputs();
        var registry = new RegistryOptionSet();
        var lockPath = new Option<string?>("--lock") { HelpName = "lock.json", Description = "Check the registries and chart sources of a lock file (written by resolve)" };
        var target = new Option<string?>("--to") { HelpName = "HOST[:PORT][/PREFIX]", Description = "Check the air-gapped registry (its API and credentials; it may be empty)" };
        var json = new Option<bool>("--json") { Description = "Print the report as one JSON document" };
        var command = new Command(
            "preflight",
            "Check that every endpoint a release needs is reachable from here (DNS, TCP, proxy, TLS, credentials, one manifest, where blobs are redirected, chart registries and Helm repositories) and print the exact allow-list (exit 0 reachable, 1 not, 2 bad input)");
        command.Options.Add(release.Manifest);
        command.Options.Add(lockPath);
        command.Options.Add(target);
        command.Options.Add(release.RegistryMirror);
        registry.AddTo(command);
        command.Options.Add(json);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var manifest = parse.GetValue(release.Manifest);
            var lockFile = parse.GetValue(lockPath);
            var to = parse.GetValue(target);
            var given = new[] { manifest, lockFile, to }.Count(v => v is not null);
            ReleaseInputs.Require(given == 1, given == 0
                ? "preflight needs what to check: --manifest platform.yaml or --lock lock.json (the release side), or --to REGISTRY (the air-gapped side)"
                : "preflight checks one thing at a time: give only one of --manifest, --lock and --to");
            var request = manifest is not null ? PreflightRequest.FromManifest(manifest)
                : lockFile is not null ? PreflightRequest.FromLock(lockFile)
                : PreflightRequest.ForTarget(to!);
            var log = OutputOptions.Log(parse, console);
            using var connector = new RegistryConnector(release.WithMirrors(parse, registry.Build(parse, console, log)));
            var report = await PreflightRunner.RunAsync(request, connector, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await console.Out.WriteLineAsync(JsonSerializer.Serialize(Document(report), Format.Json)).ConfigureAwait(false);
            }
            else
            {
                var table = OutputOptions.Progress(parse, console, json: false) == ProgressMode.Tty;
                await console.Out.WriteAsync(table ? Table(report) : Plain(report)).ConfigureAwait(false);
            }

            return await OutcomeAsync(console, report).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> OutcomeAsync(CliConsole console, PreflightReport report)
    {
        var failures = report.Failures;
        if (failures.Count == 0)
        {
            return ExitCodes.Success;
        }

        // Each failed check on stderr too (as check lists its problems), so a log without stdout still says what to fix.
        foreach (var failure in failures)
        {
            var hint = Hint(failure);
            await console.Error.WriteLineAsync($"error: {Name(failure.Kind)} {failure.Endpoint}: {failure.Detail}{(hint is null ? string.Empty : $" ({hint})")}").ConfigureAwait(false);
        }

        var first = failures[0];
        return console.Fail(
            ExitCodes.Operational,
            "preflight-failed",
            $"{failures.Count} of {report.Checks.Count} checks failed; first: {Name(first.Kind)} {first.Endpoint}: {first.Detail}",
            Hint(first) ?? "allow the endpoints listed under allowList (host:port) through the firewall and proxy, then run preflight again");
    }

    private static string? Hint(PreflightCheck check) => check.Remedy == Remedy.None ? null : ErrorReporter.Hint(check.Remedy, check.Endpoint);

    /// <summary>The JSON report (docs/schemas/preflight.schema.json).</summary>
    private static object Document(PreflightReport report) => new
    {
        input = report.Input,
        proxy = report.Proxy,
        reachable = report.Reachable,
        allowList = report.AllowList,
        endpoints = report.Endpoints.Select(e => new { address = e.Address, host = e.Host, port = e.Port, scheme = e.Scheme, role = Name(e.Role), via = e.Via }).ToList(),
        checks = report.Checks.Select(c => new { endpoint = c.Endpoint, check = Name(c.Kind), status = Name(c.Status), detail = c.Detail, hint = Hint(c) }).ToList(),
        summary = new
        {
            checks = report.Checks.Count,
            ok = report.Checks.Count(c => c.Status == PreflightStatus.Ok),
            skipped = report.Checks.Count(c => c.Status == PreflightStatus.Skipped),
            failed = report.Checks.Count(c => c.Status == PreflightStatus.Failed),
        },
    };

    /// <summary>One line per check (<c>STATUS CHECK ENDPOINT DETAIL</c>), then the allow-list and the verdict.</summary>
    private static string Plain(PreflightReport report)
    {
        var text = new System.Text.StringBuilder();
        foreach (var check in report.Checks)
        {
            text.Append($"{Name(check.Status),-8} {Name(check.Kind),-9} {check.Endpoint} {check.Detail}");
            text.AppendLine(Hint(check) is { } hint ? $" ({hint})" : string.Empty);
        }

        return text.Append(Footer(report)).ToString();
    }

    /// <summary>The checks as an aligned table with a header (a terminal), then the allow-list and the verdict.</summary>
    private static string Table(PreflightReport report)
    {
        var roles = report.Endpoints.GroupBy(e => e.Address).ToDictionary(g => g.Key, g => Name(g.First().Role));
        string[] header = ["ENDPOINT", "ROLE", "CHECK", "VERDICT", "DETAIL"];
        var rows = report.Checks
            .Select(c => new[] { c.Endpoint, roles.GetValueOrDefault(c.Endpoint, "-"), Name(c.Kind), c.Status == PreflightStatus.Failed ? "FAILED" : Name(c.Status), c.Detail + (Hint(c) is { } hint ? $" ({hint})" : string.Empty) })
            .ToList();
        var widths = Enumerable.Range(0, header.Length - 1).Select(i => rows.Select(r => r[i].Length).Append(header[i].Length).Max()).ToArray();
        var text = new System.Text.StringBuilder();
        foreach (var row in rows.Prepend(header))
        {
            text.AppendLine(string.Join("  ", row.Take(widths.Length).Select((cell, i) => cell.PadRight(widths[i])).Append(row[^1])));
        }

        return text.AppendLine().Append(Footer(report)).ToString();
    }

    private static string Footer(PreflightReport report)
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine($"allow-list ({report.AllowList.Count} host:port, proxy {report.Proxy}):");
        foreach (var line in report.AllowList)
        {
            text.AppendLine(line);
        }

        var failed = report.Failures.Count;
        return text.AppendLine(failed == 0
            ? $"reachable: every endpoint of {report.Input} answered ({report.Checks.Count} checks)"
            : $"NOT REACHABLE: {failed} of {report.Checks.Count} checks failed for {report.Input}").ToString();
    }

    private static string Name(PreflightCheckKind kind) => kind.ToString().ToLowerInvariant();

    private static string Name(PreflightStatus status) => status.ToString().ToLowerInvariant();

    private static string Name(PreflightRole role) => role switch
    {
        PreflightRole.TokenRealm => "token-realm",
        PreflightRole.ChartRepository => "chart-repository",
        PreflightRole.ChartArchive => "chart-archive",
        _ => role.ToString().ToLowerInvariant(),
    };
}
