using System.Security.Cryptography;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Cli;

/// <summary>The exit codes of every command, and the one place exceptions map to them.</summary>
public static class ExitCodes
{
    public const int Success = 0;

    /// <summary>Runtime or remote failure (network, registry, disk): retrying later may succeed.</summary>
    public const int Operational = 1;

    /// <summary>Bad flags or input files: the command line or a file must change.</summary>
    public const int Usage = 2;

    /// <summary>Digest, size or signature mismatch.</summary>
    public const int Integrity = 3;

    /// <summary>The command ran, but the target is incomplete (<c>check</c>; <c>load</c> that skipped images asked for): re-import, do not just retry.</summary>
    public const int Incomplete = 4;

    /// <summary>Stopped by SIGINT / Ctrl+C (128 + 2).</summary>
    public const int Cancelled = 130;

    /// <summary>Stopped by SIGTERM (128 + 15).</summary>
    public const int Terminated = 143;

    public static int For(Exception exception) => exception switch
    {
        MirrorException mirror => (int)mirror.Kind,
        ArgumentException => Usage,
        OperationCanceledException => Cancelled,
        CryptographicException => Integrity,
        AggregateException { InnerExceptions.Count: 1 } aggregate => For(aggregate.InnerExceptions[0]),
        _ => Operational,
    };
}
