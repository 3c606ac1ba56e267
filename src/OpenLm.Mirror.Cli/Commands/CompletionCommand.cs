using System.CommandLine;
using System.Text;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>
/// <c>openlm-mirror completion bash|zsh|fish|pwsh</c>: a completion script for the shell, generated from the command
/// tree itself (so a new command or flag completes without anyone editing a script).
/// </summary>
internal static class CompletionCommand
{
    public static Command Create(CliConsole console)
    {
        var shell = new Argument<string>("SHELL") { Description = "bash, zsh, fish or pwsh" };
        shell.AcceptOnlyFromAmong("bash", "zsh", "fish", "pwsh");
        var command = new Command("completion", "Print a shell completion script, e.g. source <(openlm-mirror completion bash), or add it to ~/.bashrc") { shell };
        command.SetAction(async (parse, _) =>
        {
            var root = (RootCommand)parse.RootCommandResult.Command;
            var script = parse.GetValue(shell) switch
            {
                "bash" => Bash(root),
                "zsh" => "autoload -U +X bashcompinit && bashcompinit\n" + Bash(root),
                "fish" => Fish(root),
                _ => Pwsh(root),
            };
            await console.Out.WriteAsync(script).ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    private static IEnumerable<Command> Commands(RootCommand root) => root.Subcommands.Where(c => !c.Hidden).OrderBy(c => c.Name, StringComparer.Ordinal);

    private static IEnumerable<string> Flags(Command command) =>
        command.Options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name)).Append("--help").Distinct(StringComparer.Ordinal);

    private static string Bash(RootCommand root)
    {
        var s = new StringBuilder();
        s.Append("# openlm-mirror bash completion: source <(openlm-mirror completion bash)\n");
        s.Append("_openlm_mirror() {\n");
        s.Append("    local cur=\"${COMP_WORDS[COMP_CWORD]}\" opts\n");
        s.Append("    if [ \"$COMP_CWORD\" -eq 1 ]; then\n");
        s.Append($"        COMPREPLY=($(compgen -W \"{string.Join(' ', Commands(root).Select(c => c.Name))} --help --version\" -- \"$cur\"))\n");
        s.Append("        return\n    fi\n");
        s.Append("    case \"${COMP_WORDS[1]}\" in\n");
        foreach (var command in Commands(root))
        {
            s.Append($"        {command.Name}) opts=\"{string.Join(' ', Flags(command))}\" ;;\n");
        }

        s.Append("        *) opts=\"\" ;;\n    esac\n");
        s.Append("    if [[ \"$cur\" == -* ]]; then\n");
        s.Append("        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n");
        s.Append("    else\n");
        s.Append("        COMPREPLY=($(compgen -f -- \"$cur\"))\n");
        s.Append("    fi\n}\n");
        s.Append("complete -o filenames -F _openlm_mirror openlm-mirror\n");
        return s.ToString();
    }

    private static string Fish(RootCommand root)
    {
        var s = new StringBuilder("# openlm-mirror fish completion: openlm-mirror completion fish | source\n");
        s.Append("complete -c openlm-mirror -f\n");
        foreach (var command in Commands(root))
        {
            s.Append($"complete -c openlm-mirror -n __fish_use_subcommand -a {command.Name} -d {Quote(command.Description)}\n");
            foreach (var option in command.Options.Where(o => !o.Hidden))
            {
                var names = option.Aliases.Prepend(option.Name).Select(n => n.StartsWith("--", StringComparison.Ordinal) ? $"-l {n[2..]}" : $"-s {n.TrimStart('-')}");
                s.Append($"complete -c openlm-mirror -n '__fish_seen_subcommand_from {command.Name}' {string.Join(' ', names)} -d {Quote(option.Description)}\n");
            }
        }

        return s.ToString();
    }

    private static string Pwsh(RootCommand root)
    {
        var s = new StringBuilder("# openlm-mirror PowerShell completion: openlm-mirror completion pwsh | Out-String | Invoke-Expression\n");
        s.Append("$openlmMirrorFlags = @{\n");
        foreach (var command in Commands(root))
        {
            s.Append($"    '{command.Name}' = @({string.Join(", ", Flags(command).Select(f => $"'{f}'"))})\n");
        }

        s.Append("}\n");
        s.Append("Register-ArgumentCompleter -Native -CommandName openlm-mirror -ScriptBlock {\n");
        s.Append("    param($wordToComplete, $commandAst, $cursorPosition)\n");
        s.Append("    $words = @($commandAst.CommandElements | ForEach-Object { $_.ToString() })\n");
        s.Append("    if ($words.Count -le 1 -or ($words.Count -eq 2 -and $wordToComplete)) { $candidates = $openlmMirrorFlags.Keys }\n");
        s.Append("    else { $candidates = $openlmMirrorFlags[$words[1]] }\n");
        s.Append("    $candidates | Where-Object { $_ -like \"$wordToComplete*\" } | Sort-Object | ForEach-Object {\n");
        s.Append("        [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)\n    }\n}\n");
        return s.ToString();
    }

    private static string Quote(string? text) => "'" + (text ?? string.Empty).Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";
}
