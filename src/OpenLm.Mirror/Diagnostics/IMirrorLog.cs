namespace OpenLm.Mirror.Diagnostics;

public enum LogLevel
{
    Debug,
    Info,
    Warning,
    Error,
}

/// <summary>Where the library reports what it does. The CLI decides how it is shown; the library never writes to the console.</summary>
public interface IMirrorLog
{
    void Write(LogLevel level, string message);
}

public static class MirrorLogExtensions
{
    public static void Debug(this IMirrorLog log, string message) => log.Write(LogLevel.Debug, message);

    public static void Info(this IMirrorLog log, string message) => log.Write(LogLevel.Info, message);

    public static void Warn(this IMirrorLog log, string message) => log.Write(LogLevel.Warning, message);
}

/// <summary>Discards everything.</summary>
public sealed class NullMirrorLog : IMirrorLog
{
    public static readonly NullMirrorLog Instance = new();

    public void Write(LogLevel level, string message)
    {
    }
}
