namespace OpenLm.Mirror.Cli;

/// <summary>The streams a command talks to; tests run the CLI in-process with their own.</summary>
public sealed class CliConsole
{
    public required TextWriter Out { get; init; }

    public required TextWriter Error { get; init; }

    public required Func<TextReader> In { get; init; }

    /// <summary>True when stderr is an interactive terminal (progress display instead of log lines).</summary>
    public bool IsInteractive { get; init; }

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
