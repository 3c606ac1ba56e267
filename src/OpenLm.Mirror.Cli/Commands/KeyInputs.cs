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
        // A split bundle is named by its base name as well as by its first part.
        if (!File.Exists(path) && !(option == "BUNDLE" && File.Exists(Bundle.BundlePartSet.PartPath(path, 1))))
        {
            throw new InputException($"{option} '{path}' does not exist");
        }
    }
}
