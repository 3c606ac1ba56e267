using System.CommandLine;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>Commands beyond copy, registered in one place so each command file stays independent.</summary>
internal static class ExtraCommands
{
    public static IEnumerable<Command> Create(CliConsole console)
    {
        yield return ResolveCommand.Create(console);
        yield return ExportCommand.Create(console);
        yield return KeygenCommand.Create(console);
        yield return VerifyCommand.Create(console);
        yield return InspectCommand.Create(console);
        yield return ImportCommand.Create(console);
        yield return LoadCommand.Create(console);
        yield return ValuesCommand.Create(console);
        yield return CheckCommand.Create(console);
        yield return PreflightCommand.Create(console);
        yield return ServeCommand.Create(console);
        yield return NodeArchiveCommand.Create(console);
        yield return DiffCommand.Create(console);
        yield return InventoryCommand.Create(console);
        yield return SplitCommand.Create(console);
        yield return SplitCommand.CreateJoin(console);
        yield return CompletionCommand.Create(console);
        yield return LoginCommand.CreateLogin(console);
        yield return LoginCommand.CreateLogout(console);
    }
}
