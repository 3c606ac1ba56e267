using System.CommandLine;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Registry.Auth;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>
/// skopeo's <c>--src-creds</c> / <c>--dest-creds USER[:PASSWORD]</c>: credentials for one side of a copy only. Without
/// <c>:PASSWORD</c> the password is read from standard input (source first, then destination), which keeps it out of
/// the process list.
/// </summary>
internal sealed class SideCredentials
{
    public Option<string?> Source { get; } = new("--src-creds") { HelpName = "USER[:PASSWORD]", Description = "Credentials for the source registries only (password from standard input when omitted)" };

    public Option<string?> Destination { get; } = new("--dest-creds") { HelpName = "USER[:PASSWORD]", Description = "Credentials for the destination registry only (password from standard input when omitted)" };

    public void AddTo(Command command)
    {
        command.Options.Add(Source);
        command.Options.Add(Destination);
    }

    /// <summary>Puts the side credentials in front of the ones already configured (flags, then the auth file).</summary>
    public void Apply(ParseResult parse, RegistryOptions options, IReadOnlyList<ImageLocation> sources, string destination, CliConsole console, IMirrorLog log)
    {
        var sourceText = parse.GetValue(Source);
        var destinationText = parse.GetValue(Destination);
        if (sourceText is null && destinationText is null)
        {
            return;
        }

        if (parse.Tokens.Any(t => t.Value is "--username" or "-u" || t.Value.StartsWith("--username=", StringComparison.Ordinal)))
        {
            throw new InputException("--username applies to every registry; with --src-creds/--dest-creds give each side its own credentials instead");
        }

        var sourceHosts = sources.OfType<RegistryLocation>().Select(s => s.Reference.Registry).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var destinationHost = destination.StartsWith("oci:", StringComparison.Ordinal) ? null : destination.Split('/', 2)[0];
        var credentials = options.Credentials;
        var sourcePasswordOnStdin = sourceText is not null && !sourceText.Contains(':', StringComparison.Ordinal);
        if (sourceText is not null && sourceHosts.Count > 0)
        {
            credentials = new StaticCredentialProvider(Read(sourceText, "--src-creds", console, log, stdinLine: 0), credentials, sourceHosts);
        }

        if (destinationText is not null && destinationHost is not null)
        {
            var destinationCredential = Read(destinationText, "--dest-creds", console, log, stdinLine: sourcePasswordOnStdin ? 1 : 0);
            credentials = new StaticCredentialProvider(destinationCredential, credentials, new HashSet<string>([destinationHost], StringComparer.OrdinalIgnoreCase));
        }

        options.Credentials = credentials;
    }

    private readonly List<string> _stdinLines = [];

    private Credential Read(string text, string flag, CliConsole console, IMirrorLog log, int stdinLine)
    {
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon == 0)
        {
            throw new InputException($"{flag}: expected USER[:PASSWORD], the user is empty");
        }

        if (colon > 0)
        {
            log.Warn($"{flag} with a password: it shows in the process list and shell history; prefer {flag} {text[..colon]} with the password on standard input");
            return new Credential(text[..colon], text[(colon + 1)..]).From(flag);
        }

        var password = Line(console, stdinLine) ?? throw new InputException($"{flag} {text}: no password on standard input");
        return new Credential(text, password).From(flag);
    }

    /// <summary>Line <paramref name="index"/> of standard input (source first, then destination), read once.</summary>
    private string? Line(CliConsole console, int index)
    {
        if (_stdinLines.Count == 0)
        {
            var reader = console.In();
            for (var line = reader.ReadLine(); line is not null; line = reader.ReadLine())
            {
                _stdinLines.Add(line.TrimEnd('\r', '\n'));
            }
        }

        return index < _stdinLines.Count && _stdinLines[index].Length > 0 ? _stdinLines[index] : null;
    }
}
