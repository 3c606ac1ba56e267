using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Cli.Output;

/// <summary>Log lines on stderr, so stdout stays clean for --json.</summary>
internal sealed class ConsoleLog(TextWriter error, bool verbose) : IRemedyLog
{
    private readonly Lock _gate = new();

    public void Write(LogLevel level, string message, Remedy remedy) =>
        Write(level, ErrorReporter.WithRemedy(message, remedy));

    /// <summary>--quiet: errors only.</summary>
    public bool Quiet { get; init; }

    public void Write(LogLevel level, string message)
    {
        if ((level == LogLevel.Debug && !verbose) || (Quiet && level != LogLevel.Error))
        {
            return;
        }

        if (error is JsonLogWriter json)
        {
            json.WriteEntry(level switch { LogLevel.Error => "error", LogLevel.Warning => "warning", LogLevel.Debug => "debug", _ => "info" }, message);
            return;
        }

        var prefix = level switch
        {
            LogLevel.Warning => "warning: ",
            LogLevel.Error => "error: ",
            _ => string.Empty,
        };
        lock (_gate)
        {
            error.WriteLine($"{prefix}{message}");
        }
    }
}
