using OpenLm.Mirror.Diagnostics;

namespace OpenLm.Mirror.Errors;

/// <summary>A log that can show a line's <see cref="Remedy"/> in its own words (the CLI names the flag).</summary>
public interface IRemedyLog : IMirrorLog
{
    void Write(LogLevel level, string message, Remedy remedy);
}

public static class RemedyLogExtensions
{
    /// <summary>Logs a warning with its remedy; a log that does not know remedies gets the message alone.</summary>
    public static void Warn(this IMirrorLog log, string message, Remedy remedy)
    {
        ArgumentNullException.ThrowIfNull(log);
        if (log is IRemedyLog withRemedy)
        {
            withRemedy.Write(LogLevel.Warning, message, remedy);
        }
        else
        {
            log.Write(LogLevel.Warning, message);
        }
    }
}
