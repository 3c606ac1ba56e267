using System.Security.Cryptography;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Cli;

/// <summary>The exit codes of every command, and the one place exceptions map to them.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    public const int Operational = 1;
    public const int Usage = 2;
    public const int Integrity = 3;
    public const int Incomplete = 4;
    public const int Cancelled = 130;

    public static int For(Exception exception) => exception switch
    {
        MirrorException mirror => (int)mirror.Kind,
        ArgumentException => Usage,
        OperationCanceledException => Cancelled,
        CryptographicException => Integrity,
        _ => Operational,
    };
}
