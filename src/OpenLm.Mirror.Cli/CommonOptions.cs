using System.CommandLine;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Registry.Auth;

namespace OpenLm.Mirror.Cli;

/// <summary>The registry options shared by every command that talks to a registry.</summary>
internal sealed class RegistryOptionSet
{
    public Option<bool> PlainHttp { get; } = new("--plain-http") { Description = "Use plain HTTP instead of HTTPS (loopback test registries only)" };

    public Option<string?> CaFile { get; } = new("--ca-file") { HelpName = "FILE", Description = "PEM file with CA certificates to trust for registry TLS" };

    public Option<bool> Insecure { get; } = new("--insecure") { Description = "Skip TLS certificate verification (dangerous; prefer --ca-file)" };

    public Option<string?> Username { get; } = new("--username", "-u") { HelpName = "USER", Description = "Registry username (password from --password-stdin)" };

    public Option<bool> PasswordStdin { get; } = new("--password-stdin") { Description = "Read the registry password from standard input" };

    public Option<string?> AuthFile { get; } = AuthFileOption();

    public Option<int> Retries { get; } = new("--retries") { HelpName = "N", Description = "Retries per operation on transient failures", DefaultValueFactory = _ => 4 };

    public Option<double?> RateLimit { get; } = new("--rate-limit") { HelpName = "N", Description = "Ceiling of requests per second per registry (default: its published quota, ECR Public 1/s anonymous, 10/s with credentials); the rate adapts below it on 429" };

    public Option<string?> Timeout { get; } = new("--timeout") { HelpName = "DURATION", Description = "Time budget of the whole run, e.g. 90m or 2h (default 2h): retries stop when it is spent" };

    public Option<string?> Proxy { get; } = new("--proxy") { HelpName = "URL", Description = "HTTP proxy for every request, e.g. http://proxy.corp:3128 (default: HTTPS_PROXY/HTTP_PROXY/NO_PROXY)" };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { PlainHttp, CaFile, Insecure, Username, PasswordStdin, AuthFile, Retries, RateLimit, Timeout, Proxy })
        {
            command.Options.Add(option);
        }
    }

    /// <summary>skopeo's and podman's <c>--authfile</c>; docker's config.json format.</summary>
    public static Option<string?> AuthFileOption() => new("--authfile")
    {
        HelpName = "FILE",
        Description = "Registry credentials file in Docker's config.json format (default: REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json or ~/.docker/config.json)",
    };

    /// <summary>The credentials file: --authfile, else REGISTRY_AUTH_FILE (as skopeo and podman read it), else Docker's config.json.</summary>
    public static string AuthFilePath(string? flag)
    {
        if (flag is not null)
        {
            return File.Exists(flag) || Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(flag)))
                ? flag
                : throw new InputException($"--authfile '{flag}': its directory does not exist");
        }

        return Environment.GetEnvironmentVariable("REGISTRY_AUTH_FILE") is { Length: > 0 } fromEnvironment
            ? fromEnvironment
            : DockerConfigCredentialProvider.DefaultPath();
    }

    /// <summary>Builds registry options; credentials from flags win, else Docker's config.json.</summary>
    public RegistryOptions Build(ParseResult parse, CliConsole console, IMirrorLog log)
    {
        // A value the setters refuse surfaces as ArgumentOutOfRangeException; ErrorReporter names the flag.
        var options = new RegistryOptions
        {
            Log = log,
            PlainHttp = parse.GetValue(PlainHttp),
            CaFile = parse.GetValue(CaFile),
            Insecure = parse.GetValue(Insecure),
            Retries = parse.GetValue(Retries),
            RateLimit = parse.GetValue(RateLimit),
            Proxy = parse.GetValue(Proxy),
        };

        if (parse.GetValue(Timeout) is { } timeout)
        {
            options.Timeout = Duration.TryParse(timeout, out var budget)
                ? budget.Value
                : throw new InputException($"--timeout '{timeout}' is not a duration: write e.g. 90s, 30m, 2h or 1h30m");
        }

        if (options.Insecure)
        {
            log.Warn("--insecure: TLS certificates are NOT verified; anyone on the network path can read and alter this transfer");
        }

        if (options.CaFile is { } ca && !File.Exists(ca))
        {
            throw new InputException($"--ca-file '{ca}' does not exist");
        }

        var fromConfig = DockerConfigCredentialProvider.Load(AuthFilePath(parse.GetValue(AuthFile)));
        var username = parse.GetValue(Username);
        var passwordStdin = parse.GetValue(PasswordStdin);
        if (passwordStdin && string.IsNullOrEmpty(username))
        {
            throw new InputException("--password-stdin needs --username");
        }

        if (!string.IsNullOrEmpty(username))
        {
            if (!passwordStdin)
            {
                throw new InputException("--username needs the password on standard input with --password-stdin (passwords are never taken as arguments)");
            }

            var password = console.In().ReadLine()?.TrimEnd('\r', '\n');
            if (string.IsNullOrEmpty(password))
            {
                throw new InputException("--password-stdin: no password on standard input");
            }

            options.Credentials = new StaticCredentialProvider(new Credential(username, password).From("--username"), fromConfig);
        }
        else
        {
            options.Credentials = fromConfig;
        }

        return options;
    }
}

/// <summary>Options that shape a copy.</summary>
internal sealed class CopyOptionSet
{
    public Option<string?> Platform { get; } = new("--platform") { HelpName = "os/arch[,...]", Description = "Keep only these platforms of multi-arch images, e.g. linux/amd64,linux/arm64 (default: all)" };

    public Option<int> Concurrency { get; } = new("--concurrency") { HelpName = "N", Description = "Blobs transferred in parallel", DefaultValueFactory = _ => 6 };

    public void AddTo(Command command)
    {
        command.Options.Add(Platform);
        command.Options.Add(Concurrency);
    }

    public IReadOnlyList<Platform> Platforms(ParseResult parse) => Oci.Platform.ParseList(parse.GetValue(Platform));

    /// <summary>The value, checked by the <see cref="CopyOptions.Concurrency"/> setter (the one place its range is kept).</summary>
    public int GetConcurrency(ParseResult parse) => new CopyOptions { Concurrency = parse.GetValue(Concurrency) }.Concurrency;
}

/// <summary>The global output options (every command): how progress is shown and how much is logged.</summary>
internal static class OutputOptions
{
    public const string ProgressName = "--progress";
    public const string QuietName = "--quiet";
    public const string VerboseName = "--verbose";

    public static IEnumerable<Option> Create() =>
    [
        new Option<string>(ProgressName)
        {
            HelpName = "auto|tty|plain|none",
            Description = "Progress on stderr: a live display on a terminal (tty), one line per image and a total every few seconds (plain), or none",
            DefaultValueFactory = _ => "auto",
            Recursive = true,
        }.AcceptOnlyFromAmong("auto", "tty", "plain", "none"),
        new Option<string>(JsonLogWriter.FormatName)
        {
            HelpName = "text|json",
            Description = "Log lines on stderr as text, or as one JSON object per line (time, level, message, and fields such as phase and image); json implies plain progress",
            DefaultValueFactory = _ => "text",
            Recursive = true,
        }.AcceptOnlyFromAmong("text", "json"),
        new Option<bool>(QuietName, "-q") { Description = "Print errors only (no progress, no information lines)", Recursive = true },
        new Option<bool>(VerboseName, "-v") { Description = "Also print debug lines (requests, retries, decisions)", Recursive = true },
    ];

    public static ProgressMode RequestedProgress(ParseResult parse) => parse.GetValue<string>(ProgressName) switch
    {
        "tty" => ProgressMode.Tty,
        "plain" => ProgressMode.Plain,
        "none" => ProgressMode.None,
        _ => ProgressMode.Auto,
    };

    public static bool Quiet(ParseResult parse) => Has(parse, QuietName) && parse.GetValue<bool>(QuietName);

    public static bool Verbose(ParseResult parse) => Has(parse, VerboseName) && parse.GetValue<bool>(VerboseName);

    /// <summary>The progress mode for this run: --progress, with auto resolved and --quiet/--json applied.</summary>
    public static ProgressMode Progress(ParseResult parse, CliConsole console, bool json) =>
        ProgressDisplay.Effective(Has(parse, ProgressName) ? RequestedProgress(parse) : ProgressMode.Auto, console.IsInteractive, Quiet(parse), json) is var mode
        && mode == ProgressMode.Tty && console.Error is JsonLogWriter
            ? ProgressMode.Plain // a live display cannot be JSON lines
            : mode;

    /// <summary>The log of a command: --quiet keeps errors only, --verbose adds debug lines.</summary>
    public static ConsoleLog Log(ParseResult parse, CliConsole console) =>
        new(console.Error, Verbose(parse)) { Quiet = Quiet(parse) };

    // Commands built outside the root (tests) do not carry the global options.
    private static bool Has(ParseResult parse, string name) =>
        parse.CommandResult.Command.Options.Any(o => o.Name == name)
        || parse.RootCommandResult.Command.Options.Any(o => o.Name == name);
}
