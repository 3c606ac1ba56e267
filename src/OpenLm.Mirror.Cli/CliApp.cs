using System.CommandLine;
using System.CommandLine.Parsing;
using OpenLm.Mirror.Cli.Commands;
using OpenLm.Mirror.Cli.Output;

namespace OpenLm.Mirror.Cli;

/// <summary>Builds the command tree and runs it, mapping failures to the documented exit codes.</summary>
public static class CliApp
{
    public const string Name = "openlm-mirror";

    public static RootCommand BuildRootCommand(CliConsole console)
    {
        var root = new RootCommand(
            "openlm-mirror: mirror OpenLM Platform images into air-gapped registries.\n" +
            "Exit codes: 0 success, 1 runtime or remote failure (network, registry, disk; retry later), 2 usage or input error, " +
            "3 integrity failure (digest, size, signature), 4 ran but the target is incomplete (check; load that skipped images), 130/143 interrupted.");
        foreach (var option in OutputOptions.Create())
        {
            root.Options.Add(option);
        }

        root.Subcommands.Add(CopyCommand.Create(console));
        foreach (var command in ExtraCommands.Create(console))
        {
            root.Subcommands.Add(command);
        }

        return root;
    }

    public static Task<int> RunAsync(string[] args, CliConsole console) => RunAsync(args, console, Interrupt.None);

    /// <summary>
    /// Runs one command line. With --json exactly one JSON document goes to stdout whatever happens (see
    /// <see cref="JsonEnvelope"/>); human-readable errors always go to stderr.
    /// </summary>
    public static async Task<int> RunAsync(string[] args, CliConsole console, Interrupt interrupt)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(interrupt);
        if (JsonLogWriter.Requested(args))
        {
            console = console.WithJsonLog();
        }

        if (!JsonEnvelope.Requested(args))
        {
            return (await RunCoreAsync(args, console, interrupt).ConfigureAwait(false)).ExitCode;
        }

        // serve's document is its ready line, printed while it keeps running: it goes out as it is written.
        var streaming = args.FirstOrDefault(a => !a.StartsWith('-')) == "serve";
        var buffer = new StringWriter();
        var captured = streaming ? console : console.WithOut(buffer);
        var run = await RunCoreAsync(args, captured, interrupt).ConfigureAwait(false);
        if (!streaming || run.ExitCode != ExitCodes.Success)
        {
            var problem = run.Problem ?? captured.Problem;
            await console.Out.WriteLineAsync(JsonEnvelope.Render(run.Command, run.ExitCode, problem, streaming ? string.Empty : buffer.ToString())).ConfigureAwait(false);
        }

        return run.ExitCode;
    }

    /// <summary>A one-line message with the cause chain for unexpected exceptions, and flags for the library's remedies.</summary>
    public static string Describe(Exception exception) => ErrorReporter.Describe(exception);

    private static async Task<RunOutcome> RunCoreAsync(string[] args, CliConsole console, Interrupt interrupt)
    {
        var root = BuildRootCommand(console);
        var parse = root.Parse(UsageErrors.WithoutSecrets(args, out var secretRefused));
        var commandName = CommandPath(parse.CommandResult);
        if (secretRefused is { } refused)
        {
            // Checked before anything else, and the value is never repeated back (it would land in logs and CI output).
            await console.Error.WriteLineAsync($"error: {refused}").ConfigureAwait(false);
            return new RunOutcome(commandName, ExitCodes.Usage, new CommandProblem(ErrorKinds.Usage, "usage", refused, "pipe the password to --password-stdin"));
        }

        if (parse.Errors.Count > 0)
        {
            var messages = UsageErrors.DescribeAll(parse);
            foreach (var message in messages)
            {
                await console.Error.WriteLineAsync($"error: {message}").ConfigureAwait(false);
            }

            var usage = commandName == Name ? Name : $"{Name} {commandName}";
            await console.Error.WriteLineAsync($"Run '{usage} --help' for usage.").ConfigureAwait(false);
            return new RunOutcome(commandName, ExitCodes.Usage, new CommandProblem(ErrorKinds.Usage, "usage", string.Join("; ", messages), $"run '{usage} --help' for usage"));
        }

        var invocation = new InvocationConfiguration
        {
            Output = console.Out,
            Error = console.Error,
            EnableDefaultExceptionHandler = false,
            // Signals are ours (Interrupt): SIGTERM must give 143, not System.CommandLine's 130.
            ProcessTerminationTimeout = null,
        };
        try
        {
            var exit = await parse.InvokeAsync(invocation, interrupt.Token).ConfigureAwait(false);
            return new RunOutcome(commandName, exit, null);
        }
        catch (Exception ex) when (ex is OperationCanceledException && interrupt.Signal is not null)
        {
            var exit = interrupt.ExitCode;
            var kept = Interrupt.Kept(console.KeptOnInterrupt);
            await console.Error.WriteLineAsync($"interrupted ({interrupt.Signal}): {kept}").ConfigureAwait(false);
            return new RunOutcome(commandName, exit, new CommandProblem(ErrorKinds.Interrupted, "interrupted", $"interrupted by {interrupt.Signal}", kept));
        }
        catch (Exception ex)
        {
            await console.Error.WriteLineAsync($"error: {Describe(ex)}").ConfigureAwait(false);
            return new RunOutcome(commandName, ExitCodes.For(ex), ErrorReporter.Problem(ex));
        }
    }

    /// <summary>The command as the user typed it: <c>openlm-mirror</c> for the root, else the subcommand's name.</summary>
    private static string CommandPath(CommandResult result) =>
        result.Command is RootCommand ? Name : result.Command.Name;

    private sealed record RunOutcome(string Command, int ExitCode, CommandProblem? Problem);
}
