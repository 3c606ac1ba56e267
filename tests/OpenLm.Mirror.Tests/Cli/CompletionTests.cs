using System.Diagnostics;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Tests.Values;
using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary><c>completion SHELL</c>: the bash script is run by a real bash and completes commands and flags.</summary>
public sealed class CompletionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("openlm-completion-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("exp", 1, "export")]
    [InlineData("--concu", 2, "--concurrency")]
    [InlineData("--plain", 2, "--plain-http")]
    public async Task Bash_Script_CompletesCommandsAndTheirFlags(string word, int position, string expected)
    {
        var (exit, script, stderr) = await ValuesBundleFixture.RunAsync("completion", "bash");
        Assert.True(exit == 0, stderr);
        var file = Path.Combine(_dir, "completion.bash");
        File.WriteAllText(file, script);
        var words = position == 1 ? $"openlm-mirror {word}" : $"openlm-mirror copy {word}";

        var completed = await BashAsync($"source '{file}'; COMP_WORDS=({words}); COMP_CWORD={position}; _openlm_mirror; printf '%s\\n' \"${{COMPREPLY[@]}}\"");

        Assert.Contains(expected, completed.Split('\n'));
    }

    [Theory]
    [InlineData("zsh", "bashcompinit")]
    [InlineData("fish", "complete -c openlm-mirror -n '__fish_seen_subcommand_from export' -l key")]
    [InlineData("pwsh", "Register-ArgumentCompleter -Native -CommandName openlm-mirror")]
    public async Task OtherShells_ScriptNamesEveryCommand(string shell, string expected)
    {
        var (exit, script, _) = await ValuesBundleFixture.RunAsync("completion", shell);

        Assert.Equal(ExitCodes.Success, exit);
        Assert.Contains(expected, script, StringComparison.Ordinal);
        foreach (var command in new[] { "copy", "export", "import", "check", "values", "load", "serve" })
        {
            Assert.Contains(command, script, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task UnknownShell_Usage()
    {
        var (exit, _, stderr) = await ValuesBundleFixture.RunAsync("completion", "tcsh");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("tcsh", stderr, StringComparison.Ordinal);
    }

    private static async Task<string> BashAsync(string script)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        using var bash = Process.Start(start)!;
        var output = await bash.StandardOutput.ReadToEndAsync();
        var error = await bash.StandardError.ReadToEndAsync();
        await bash.WaitForExitAsync();
        Assert.True(bash.ExitCode == 0, error);
        return output;
    }
}
