using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Cli;

/// <summary>
/// The one place the library's typed remedies and settings become this CLI's flags: the library says "give
/// credentials" or "the CA file", the user reads <c>--username</c> or <c>--ca-file</c>.
/// </summary>
internal static class ErrorReporter
{
    /// <summary>Option properties whose setters reject values, by parameter name, and the flag that sets each.</summary>
    private static readonly Dictionary<string, string> SetterFlags = new(StringComparer.Ordinal)
    {
        [nameof(CopyOptions.Concurrency)] = "--concurrency",
        [nameof(RegistryOptions.Retries)] = "--retries",
        [nameof(RegistryOptions.RateLimit)] = "--rate-limit",
        [nameof(RegistryOptions.Timeout)] = "--timeout",
    };

    /// <summary>The error line for an exception (without the <c>error: </c> prefix).</summary>
    public static string Describe(Exception exception) => exception switch
    {
        Import.TargetNotReadyException notReady => Output.TargetProblemFormat.Describe(notReady),
        MirrorException mirror => Render(mirror),
        ArgumentOutOfRangeException { ParamName: { } name } range when SetterFlags.TryGetValue(name, out var flag) => OutOfRange(flag, range),
        OperationCanceledException => "cancelled",
        System.Net.Http.HttpRequestException http when Unreachable(http) is { } unreachable => unreachable,
        AggregateException { InnerExceptions.Count: 1 } aggregate => Describe(aggregate.InnerExceptions[0]),
        _ when exception.InnerException is { } inner && inner.Message != exception.Message => $"{exception.Message} ({inner.Message})",
        _ => exception.Message,
    };

    /// <summary>The --json envelope's error for an exception: kind (by exit code), a stable code, the message and the hint apart.</summary>
    public static CommandProblem Problem(Exception exception)
    {
        var kind = ErrorKinds.ForExitCode(ExitCodes.For(exception));
        switch (exception)
        {
            case AggregateException { InnerExceptions.Count: 1 } aggregate:
                return Problem(aggregate.InnerExceptions[0]);
            case MirrorException mirror:
                var advised = Chain(mirror).OfType<MirrorException>().FirstOrDefault(e => e.Remedy != Remedy.None) ?? mirror;
                var message = Flag(mirror.Setting) is { } flag ? $"{flag}: {mirror.Message}" : mirror.Message;
                return new CommandProblem(kind, Code(mirror, advised.Remedy), message, Hint(advised.Remedy, advised.Subject));
            case System.Net.Http.HttpRequestException http when Unreachable(http) is { } unreachable:
                var parts = unreachable.Split(" (", 2);
                return new CommandProblem(kind, "unreachable", parts[0], parts.Length > 1 ? parts[1].TrimEnd(')') : null);
            case OperationCanceledException:
                return new CommandProblem(kind, "interrupted", "interrupted", "rerun the same command to resume");
            default:
                return new CommandProblem(kind, exception switch
                {
                    ArgumentException => "bad-value",
                    System.Security.Cryptography.CryptographicException => "integrity",
                    _ => "unexpected",
                }, Describe(exception), null);
        }
    }

    /// <summary>
    /// A connection that never got an HTTP answer, named by host and port with what to look at, instead of the
    /// socket's text twice ("Connection refused (127.0.0.1:1) (Connection refused)").
    /// </summary>
    private static string? Unreachable(System.Net.Http.HttpRequestException http)
    {
        var endpoint = System.Text.RegularExpressions.Regex.Match(http.Message, @"\(([^()\s]+)\)\s*$") is { Success: true } m ? m.Groups[1].Value : null;
        var where = endpoint is null ? "the registry" : endpoint;
        return http.HttpRequestError switch
        {
            System.Net.Http.HttpRequestError.ConnectionError => $"cannot connect to {where}: {FirstLine(http.InnerException?.Message ?? "connection failed").ToLowerInvariant()} (is a registry listening at {where}? check the host and port)",
            System.Net.Http.HttpRequestError.NameResolutionError => $"cannot resolve {where}: the host name is unknown (check its spelling, or DNS on this machine)",
            _ => null,
        };
    }

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();

    /// <summary>A stable code: the remedy when there is one (what to change), else what kind of error it is.</summary>
    private static string Code(MirrorException mirror, Remedy remedy) => remedy switch
    {
        Remedy.None => mirror switch
        {
            InputException => "bad-input",
            IntegrityException => "integrity",
            NotFoundException => "not-found",
            _ => "operation-failed",
        },
        _ => Kebab(remedy.ToString()),
    };

    private static string Kebab(string pascal) =>
        string.Concat(pascal.Select((c, i) => char.IsUpper(c) && i > 0 ? "-" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));

    /// <summary><paramref name="message"/> with the flags that apply <paramref name="remedy"/> appended.</summary>
    public static string WithRemedy(string message, Remedy remedy, string? subject = null) =>
        Hint(remedy, subject) is { } hint ? $"{message} ({hint})" : message;

    /// <summary>What to pass for a remedy, or null for <see cref="Remedy.None"/>.</summary>
    public static string? Hint(Remedy remedy, string? subject = null) => remedy switch
    {
        Remedy.None => null,
        Remedy.Credentials => $"use --username with --password-stdin, or a Docker config.json entry{(subject is null ? string.Empty : " for " + subject)}",
        Remedy.TrustCaFile => "pass --ca-file with the CA that issued it, or --insecure to skip verification (not recommended); use --plain-http only for a registry that serves plain HTTP",
        Remedy.PlainHttp => "if the registry serves plain HTTP, pass --plain-http",
        Remedy.DropPlainHttp => "it speaks TLS: drop --plain-http (and pass --ca-file if its CA is private)",
        Remedy.ReleaseKey => "--key release.pub",
        Remedy.ReleaseKeyOrUnsignedOptOut => "--key release.pub; or, only if you accept whatever the file contains, --insecure-skip-signature",
        Remedy.UnsignedOptOut => "--insecure-skip-signature",
        Remedy.Overwrite => "use --force",
        Remedy.NameMapRule => "--map FROM=TO",
        Remedy.Platform => "--platform os/arch",
        Remedy.TempDirectory => "--temp-dir DIR",
        Remedy.EngineAddress => "is dockerd running? see --docker-host / DOCKER_HOST",
        Remedy.BaseBundle => "--base EARLIER-BUNDLE, repeatable",
        Remedy.ProxyCredentials => $"give the proxy's user and password as --proxy http://USER:PASSWORD@{subject ?? "HOST:PORT"} (or in HTTPS_PROXY/HTTP_PROXY)",
        _ => throw new ArgumentOutOfRangeException(nameof(remedy), remedy, "no flag for this remedy"),
    };

    /// <summary>The flag that gives a setting, or null for <see cref="Setting.None"/>.</summary>
    public static string? Flag(Setting setting) => setting switch
    {
        Setting.None => null,
        Setting.CaFile => "--ca-file",
        Setting.NameMap => "--map",
        Setting.DockerHost => "--docker-host",
        Setting.ValuesInput => "--values",
        Setting.ValuesOutput => "-o",
        Setting.ValuesChart => "--chart",
        Setting.ChartOutputDirectory => "--chart-out",
        Setting.NodeArchiveOutput => "-o",
        Setting.Target => "--to",
        Setting.K3sRegistriesOutput => "--k3s-registries-out",
        Setting.ContainerdHostsDirectory => "--containerd-hosts-dir",
        Setting.SplitSize => "--split-size",
        Setting.Compression => "--compress",
        Setting.MaxPathComponents => "--max-path-components",
        Setting.RegistryMirror => "--registry-mirror",
        _ => throw new ArgumentOutOfRangeException(nameof(setting), setting, "no flag for this setting"),
    };

    private static string Render(MirrorException mirror)
    {
        // A wrapper that quotes its cause's message keeps the cause's advice: the first remedy in the chain applies.
        var advised = Chain(mirror).OfType<MirrorException>().FirstOrDefault(e => e.Remedy != Remedy.None) ?? mirror;
        var message = WithRemedy(mirror.Message, advised.Remedy, advised.Subject);
        return Flag(mirror.Setting) is { } flag ? $"{flag}: {message}" : message;
    }

    private static IEnumerable<Exception> Chain(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            yield return e;
        }
    }

    private static string OutOfRange(string flag, ArgumentOutOfRangeException range)
    {
        var reason = range.Message.Split(" (Parameter", 2)[0];
        return range.ActualValue is { } value ? $"{flag} {reason} (got {value})" : $"{flag} {reason}";
    }
}
