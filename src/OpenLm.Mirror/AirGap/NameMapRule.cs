using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.AirGap;

/// <summary>
/// A name-mapping rule <c>FROM=TO</c>. <see cref="From"/> is a registry host optionally followed by repository path
/// components (<c>docker.io/bitnami</c>, <c>public.ecr.aws/r3q3q2f4/olm-server</c>, <c>quay.io</c>); it matches an image
/// whose <c>registry/repository</c> equals it or continues it at a <c>/</c> boundary. <see cref="To"/> is a repository
/// path <b>relative to the target</b> (<c>HOST[/PREFIX]</c>), never a host; empty means "directly under the target".
/// </summary>
public sealed record NameMapRule
{
    internal NameMapRule(string from, string to, bool isUserRule)
    {
        From = from;
        To = to;
        IsUserRule = isUserRule;
        var slash = from.IndexOf('/');
        Registry = slash < 0 ? from : from[..slash];
        FromPath = slash < 0 ? string.Empty : from[(slash + 1)..];
    }

    /// <summary>Normalised <c>registry[/path]</c> to match.</summary>
    public string From { get; }

    /// <summary>Repository path under the target prefix the matched part is replaced by; may be empty.</summary>
    public string To { get; }

    /// <summary>False for the implicit rules (the platform source and the per-registry fallback).</summary>
    public bool IsUserRule { get; }

    /// <summary>The registry host part of <see cref="From"/>.</summary>
    public string Registry { get; }

    /// <summary>The repository path part of <see cref="From"/> (empty when the rule matches a whole registry).</summary>
    public string FromPath { get; }

    /// <summary>Parses <c>FROM=TO</c> (as the user gives it).</summary>
    public static NameMapRule Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var eq = text.IndexOf('=');
        if (eq < 0)
        {
            throw Invalid(text, $"invalid name-mapping rule '{text}': expected FROM=TO, e.g. docker.io/bitnami=thirdparty/bitnami");
        }

        return Create(text[..eq], text[(eq + 1)..], text);
    }

    /// <summary>Creates a user rule from its two halves.</summary>
    public static NameMapRule Create(string from, string to) => Create(from, to, $"{from}={to}");

    internal static NameMapRule Implicit(string from, string to) => new(from, to, isUserRule: false);

    private static NameMapRule Create(string from, string to, string shown)
    {
        var normalizedFrom = ParseFrom(from, what => $"invalid name-mapping rule '{shown}': FROM {what}", Setting.NameMap);
        var normalizedTo = to.Trim('/');
        if (normalizedTo.Length > 0)
        {
            var first = normalizedTo.Split('/')[0];
            if (first.Contains('.') || first.Contains(':') || first == "localhost")
            {
                throw Invalid(
                    shown,
                    $"invalid name-mapping rule '{shown}': TO '{to}' starts with what looks like a registry host ('{first}'); " +
                    "TO is a repository path under the target (the target host and prefix are given separately)");
            }

            if (!NamePaths.IsRepositoryPath(normalizedTo, out var why))
            {
                throw Invalid(shown, $"invalid name-mapping rule '{shown}': TO '{to}': {why}");
            }
        }

        return new NameMapRule(normalizedFrom, normalizedTo, isUserRule: true);
    }

    /// <summary>Validates and normalises a <c>registry[/path]</c> prefix; <paramref name="setting"/> is where it came from.</summary>
    internal static string ParseFrom(string from, Func<string, string> fail, Setting setting = Setting.None)
    {
        InputException Fail(string what) => new(fail(what)) { Setting = setting, Subject = from };

        var trimmed = from.Trim().TrimEnd('/');
        if (trimmed.Length == 0)
        {
            throw Fail("is empty");
        }

        if (trimmed.Contains('@') || trimmed.Contains("://", StringComparison.Ordinal))
        {
            throw Fail($"'{from}' must be registry[/path] without scheme, tag or digest");
        }

        var slash = trimmed.IndexOf('/');
        var host = slash < 0 ? trimmed : trimmed[..slash];
        var path = slash < 0 ? string.Empty : trimmed[(slash + 1)..];
        if (!NamePaths.IsRegistryHost(host))
        {
            throw Fail($"'{from}' must start with a registry host (e.g. docker.io/bitnami, quay.io); '{host}' is not one");
        }

        if (path.Length > 0 && !NamePaths.IsRepositoryPath(path, out var why))
        {
            throw Fail($"'{from}': path '{path}': {why} (tags are not allowed)");
        }

        return NamePaths.Join(NamePaths.NormalizeHost(host), path);
    }

    public override string ToString() => $"{From}={To}";

    private static InputException Invalid(string rule, string message) => new(message) { Setting = Setting.NameMap, Subject = rule };
}
