using OpenLm.Mirror.Cli.Output;

namespace OpenLm.Mirror.Cli;

/// <summary>The streams a command talks to; tests run the CLI in-process with their own.</summary>
public sealed class CliConsole
{
    public required TextWriter Out { get; init; }

    public required TextWriter Error { get; init; }

    public required Func<TextReader> In { get; init; }

    /// <summary>True when stderr is an interactive terminal (progress display instead of log lines).</summary>
    public bool IsInteractive { get; init; }

    /// <summary>
    /// Why a command that returned a non-zero exit code without throwing (e.g. <c>check</c> finding images missing) did
    /// so; the --json envelope reports it as the error. Set with <see cref="Fail"/>.
    /// </summary>
    internal CommandProblem? Problem { get; private set; }

    /// <summary>What the running command keeps if it is interrupted now (e.g. "verified blobs are kept in the cache DIR"); null: the generic text.</summary>
    internal string? KeptOnInterrupt { get; set; }

    /// <summary>Records why the command is about to return <paramref name="exitCode"/> and returns it.</summary>
    internal int Fail(int exitCode, string code, string message, string? hint = null)
    {
        Problem = new CommandProblem(ErrorKinds.ForExitCode(exitCode), code, message, hint);
        return exitCode;
    }

    /// <summary>This console with stdout going to <paramref name="output"/> (the --json envelope collects a command's document).</summary>
    internal CliConsole WithOut(TextWriter output) => new()
    {
        Out = output,
        Error = Error,
        In = In,
        IsInteractive = IsInteractive,
    };

    /// <summary>
    /// This console with stderr as JSON log lines (<c>--log-format json</c>); not interactive, so progress is plain lines
    /// (each one a JSON entry) rather than a live display.
    /// </summary>
    internal CliConsole WithJsonLog() => Error is JsonLogWriter ? this : new()
    {
        Out = Out,
        Error = new JsonLogWriter(Error),
        In = In,
        IsInteractive = false,
    };

    public static CliConsole System() => new()
    {
        Out = Console.Out,
        Error = Console.Error,
        In = () => Console.In,
        IsInteractive = !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("CI") is null && Environment.GetEnvironmentVariable("TERM") is not ("dumb" or null),
    };

    public static CliConsole Capture(StringWriter output, StringWriter error, string input = "") => new()
    {
        Out = output,
        Error = error,
        In = () => new StringReader(input),
        IsInteractive = false,
    };
}
