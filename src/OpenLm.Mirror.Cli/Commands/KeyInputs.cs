using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>Where passphrases come from: an environment variable or standard input, never an argument.</summary>
internal static class KeyInputs
{
    public static string? Passphrase(string? environmentVariable, bool fromStdin, CliConsole console, string optionPrefix)
    {
        if (environmentVariable is not null && fromStdin)
        {
            throw new InputException($"{optionPrefix}-env and {optionPrefix}-stdin cannot be combined");
        }

        if (environmentVariable is not null)
        {
            var value = Environment.GetEnvironmentVariable(environmentVariable);
            return string.IsNullOrEmpty(value)
                ? throw new InputException($"{optionPrefix}-env: environment variable '{environmentVariable}' is not set or empty")
                : value;
        }

        if (fromStdin)
        {
            var line = console.In().ReadLine()?.TrimEnd('\r', '\n');
            return string.IsNullOrEmpty(line) ? throw new InputException($"{optionPrefix}-stdin: no passphrase on standard input") : line;
        }

        return null;
    }

    public static void RequireFile(string path, string option)
    {
        if (option == "BUNDLE" ? !BundleExists(path) : !File.Exists(path))
        {
            throw new InputException($"{option} '{path}' does not exist");
        }
    }

    /// <summary>
    /// The signature choice of commands that read a bundle offline: the release key, or the explicit opt-out, never both
    /// and never neither. Returns whether the signature is skipped. <paramref name="refusal"/> is what is refused without
    /// either ("refusing to load an unverified bundle"), <paramref name="acceptance"/> what the opt-out accepts.
    /// </summary>
    public static bool SkipsSignature(string? keyPath, bool insecure, string refusal, string acceptance)
    {
        if (keyPath is not null && insecure)
        {
            throw new InputException("give either --key or --insecure-skip-signature, not both");
        }

        if (keyPath is null && !insecure)
        {
            throw new IntegrityException(
                $"{refusal}: give the release public key with --key release.pub " +
                $"(or, only if you accept {acceptance}, --insecure-skip-signature)");
        }

        return insecure;
    }

    /// <summary>
    /// A bundle argument that must be on disk: one file, or the base name of a split bundle's parts (<c>NAME.001</c>, …).
    /// A directory or a missing path is refused, naming it.
    /// </summary>
    public static void RequireBundleFile(string bundlePath)
    {
        if (!BundleExists(bundlePath))
        {
            throw new InputException(Directory.Exists(bundlePath) ? $"'{bundlePath}' is a directory, not a bundle file" : $"bundle '{bundlePath}' does not exist");
        }
    }

    /// <summary>
    /// The one test of every bundle argument: a file, or the base name of a split bundle whose first part
    /// <c>NAME.001</c> exists (the reader finds the others next to it, as for the first part).
    /// </summary>
    private static bool BundleExists(string path) =>
        File.Exists(path) || (!Directory.Exists(path) && File.Exists(Bundle.BundlePartSet.PartPath(path, 1)));
}
