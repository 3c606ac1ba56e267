using System.CommandLine;
using OpenLm.Mirror.Cli.Commands;

namespace OpenLm.Mirror.Cli;

/// <summary>Builds the command tree and runs it, mapping failures to the documented exit codes.</summary>
public static class CliApp
{
    public static RootCommand BuildRootCommand(CliConsole console)
    {
        var root = new RootCommand(
            "openlm-mirror: mirror OpenLM Platform images into air-gapped registries.\n" +
            "Exit codes: 0 success, 1 operational failure (network, registry, disk), 2 usage or input error, 3 integrity failure (digest, size, signature).");
        root.Subcommands.Add(CopyCommand.Create(console));
        foreach (var command in ExtraCommands.Create(console))
        {
            root.Subcommands.Add(command);
        }

        return root;
    }

    public static async Task<int> RunAsync(string[] args, CliConsole console)
    {
        var root = BuildRootCommand(console);
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                await console.Error.WriteLineAsync($"error: {error.Message}").ConfigureAwait(false);
            }

            await console.Error.WriteLineAsync($"Run '{string.Join(' ', parse.CommandResult.Command.Name == root.Name ? "openlm-mirror" : "openlm-mirror " + parse.CommandResult.Command.Name)} --help' for usage.").ConfigureAwait(false);
            return ExitCodes.Usage;
        }

        var invocation = new InvocationConfiguration
        {
            Output = console.Out,
            Error = console.Error,
            EnableDefaultExceptionHandler = false,
        };
        try
        {
            return await parse.InvokeAsync(invocation).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            await console.Error.WriteLineAsync($"error: {Describe(ex)}").ConfigureAwait(false);
            return ExitCodes.For(ex);
        }
    }

    /// <summary>A one-line message with the cause chain for unexpected exceptions, and flags for the library's remedies.</summary>
    public static string Describe(Exception exception) => ErrorReporter.Describe(exception);
}
