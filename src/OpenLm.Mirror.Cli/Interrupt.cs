using System.Runtime.InteropServices;

namespace OpenLm.Mirror.Cli;

/// <summary>
/// SIGINT / SIGTERM turned into cancellation: the running command stops at its next await, cleans up its temporary
/// files and the process exits 130 (SIGINT) or 143 (SIGTERM) with a message that says what is kept.
/// </summary>
public sealed class Interrupt : IDisposable
{
    /// <summary>What every interrupted command keeps (the cache, verified blobs) and how to go on.</summary>
    public const string KeptMessage = "verified downloads and pushed blobs are kept, temporary files were removed; rerun the same command to resume";

    /// <summary>What an interrupted command keeps, in its own words when it said (<see cref="CliConsole.KeptOnInterrupt"/>).</summary>
    public static string Kept(string? commandState) =>
        commandState is null ? KeptMessage : $"{commandState}; temporary files were removed; rerun the same command to resume";

    private readonly CancellationTokenSource _source = new();
    private readonly List<PosixSignalRegistration> _registrations = [];

    private Interrupt()
    {
    }

    /// <summary>No signal handling (tests running in-process).</summary>
    public static Interrupt None { get; } = new();

    public CancellationToken Token => _source.Token;

    /// <summary>The signal that stopped the command, or null.</summary>
    public string? Signal { get; private set; }

    public int ExitCode => Signal == "SIGTERM" ? ExitCodes.Terminated : ExitCodes.Cancelled;

    /// <summary>Handles SIGINT and SIGTERM for the process (the first one cancels; the default action is suppressed).</summary>
    public static Interrupt FromProcessSignals()
    {
        var interrupt = new Interrupt();
        interrupt._registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGINT, interrupt.OnSignal));
        interrupt._registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, interrupt.OnSignal));
        return interrupt;
    }

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        _source.Dispose();
    }

    private void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true;
        if (Signal is not null)
        {
            return;
        }

        Signal = context.Signal == PosixSignal.SIGTERM ? "SIGTERM" : "SIGINT";
        _source.Cancel();
    }
}
