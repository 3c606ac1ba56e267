namespace OpenLm.Mirror.Errors;

/// <summary>What kind of failure an error is; the CLI maps each kind to one exit code.</summary>
public enum FailureKind
{
    /// <summary>Network, registry, disk: retrying later may succeed. Exit code 1.</summary>
    Operational = 1,

    /// <summary>Bad flags, malformed reference or file. Exit code 2.</summary>
    Usage = 2,

    /// <summary>Digest or size mismatch, bad signature. Exit code 3.</summary>
    Integrity = 3,

    /// <summary>The target lacks content it should already hold (a delta's base is not there). Exit code 4.</summary>
    Incomplete = 4,
}

/// <summary>
/// Base of every error this library raises on purpose. The message says what went wrong (and the fix in plain words);
/// <see cref="Remedy"/>, <see cref="Setting"/> and <see cref="Subject"/> say it again in types, for a front end to name
/// its own switches.
/// </summary>
public class MirrorException : Exception
{
    public MirrorException(FailureKind kind, string message, Exception? inner = null)
        : base(message, inner) => Kind = kind;

    public FailureKind Kind { get; }

    /// <summary>The change that would get past this failure, if there is one.</summary>
    public Remedy Remedy { get; init; }

    /// <summary>The caller-supplied setting the error is about, if it is about one.</summary>
    public Setting Setting { get; init; }

    /// <summary>What the error is about, as text: a path, a registry host, a rule.</summary>
    public string? Subject { get; init; }
}

/// <summary>The user gave us something malformed (a reference, a file, a setting).</summary>
public sealed class InputException(string message, Exception? inner = null)
    : MirrorException(FailureKind.Usage, message, inner);

/// <summary>Content did not match what it claimed to be (digest, size, signature).</summary>
public sealed class IntegrityException(string message, Exception? inner = null)
    : MirrorException(FailureKind.Integrity, message, inner);

/// <summary>An operation failed for an operational reason (I/O, network, state).</summary>
public sealed class OperationException(string message, Exception? inner = null)
    : MirrorException(FailureKind.Operational, message, inner);

/// <summary>The target is incomplete: content that must already be there (a delta bundle's base) is not.</summary>
public sealed class IncompleteTargetException(string message, Exception? inner = null)
    : MirrorException(FailureKind.Incomplete, message, inner);

/// <summary>The named thing does not exist (image, tag, blob, file).</summary>
public sealed class NotFoundException(string message, Exception? inner = null)
    : MirrorException(FailureKind.Operational, message, inner);
