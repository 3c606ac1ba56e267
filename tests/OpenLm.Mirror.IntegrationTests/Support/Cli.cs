using System.Diagnostics;
using OpenLm.Mirror.Cli;

namespace OpenLm.Mirror.IntegrationTests.Support;

/// <summary>What one CLI run printed and returned.</summary>
public sealed record CliRun(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{Error}";
}

/// <summary>Runs openlm-mirror in-process (fast) or as a child process (own environment, e.g. DOCKER_CONFIG).</summary>
public static class MirrorCli
{
    public static async Task<CliRun> RunAsync(params string[] args) => await RunWithInputAsync(string.Empty, args);

    public static async Task<CliRun> RunWithInputAsync(string input, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, CliConsole.Capture(output, error, input));
        return new CliRun(exit, output.ToString(), error.ToString());
    }

    /// <summary>Runs the built CLI as a separate process with extra environment variables.</summary>
    public static async Task<CliRun> RunProcessAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "openlm-mirror.dll");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        return new CliRun(process.ExitCode, await stdout, await stderr);
    }
}
