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
        AggregateException { InnerExceptions.Count: 1 } aggregate => Describe(aggregate.InnerExceptions[0]),
        _ when exception.InnerException is { } inner && inner.Message != exception.Message => $"{exception.Message} ({inner.Message})",
        _ => exception.Message,
    };

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
        Remedy.ReleaseKey => "--key release.pub",
        Remedy.ReleaseKeyOrUnsignedOptOut => "--key release.pub; or, only if you accept whatever the file contains, --insecure-skip-signature",
        Remedy.UnsignedOptOut => "--insecure-skip-signature",
        Remedy.Overwrite => "use --force",
        Remedy.NameMapRule => "--map FROM=TO",
        Remedy.Platform => "--platform os/arch",
        Remedy.TempDirectory => "--temp-dir DIR",
        Remedy.EngineAddress => "is dockerd running? see --docker-host / DOCKER_HOST",
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
