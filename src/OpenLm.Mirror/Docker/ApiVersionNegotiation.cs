using System.Globalization;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.EngineLoad;

/// <summary>
/// Picks the Docker Engine API version to speak, as the docker CLI does: ask the engine unversioned
/// (<c>GET /version</c> or <c>/_ping</c> answer with its newest API version and, since 1.25, its oldest), then use the
/// lower of the engine's newest and this client's newest. Current engines refuse clients older than their minimum
/// (Docker 25+ refuse API &lt; 1.24, Docker 29 API &lt; 1.44) and old engines refuse newer clients; negotiation
/// handles both ends.
/// </summary>
public static class ApiVersionNegotiation
{
    /// <summary>
    /// The newest API version this tool speaks. The endpoints it uses (<c>/version</c>, <c>POST /images/load</c>,
    /// <c>GET /images/{name}/json</c>) have been stable since API 1.25; 1.51 is Docker 28.
    /// </summary>
    public static readonly Version ClientMaximum = new(1, 51);

    /// <summary>The oldest API version this tool speaks: 1.25 (Docker 1.13, 2017; <c>docker load</c> with <c>quiet</c>).</summary>
    public static readonly Version ClientMinimum = new(1, 25);

    /// <summary>What an engine that does not announce its API version is assumed to speak (the docker CLI's fallback).</summary>
    public static readonly Version UnannouncedEngineVersion = new(1, 24);

    /// <summary>
    /// The version to use with an engine whose newest API version is <paramref name="engineVersion"/> and oldest
    /// is <paramref name="engineMinimum"/> (both as the engine reports them, e.g. <c>1.41</c> and <c>1.12</c>; either
    /// may be null or empty). Throws <see cref="OperationException"/> when the ranges do not overlap.
    /// </summary>
    public static Version Negotiate(string? engineVersion, string? engineMinimum) =>
        Negotiate(engineVersion, engineMinimum, ClientMinimum, ClientMaximum);

    /// <summary><see cref="Negotiate(string?, string?)"/> with an explicit client range (for tests).</summary>
    public static Version Negotiate(string? engineVersion, string? engineMinimum, Version clientMinimum, Version clientMaximum)
    {
        ArgumentNullException.ThrowIfNull(clientMinimum);
        ArgumentNullException.ThrowIfNull(clientMaximum);
        var engineMax = string.IsNullOrWhiteSpace(engineVersion)
            ? UnannouncedEngineVersion
            : Parse(engineVersion) ?? throw new OperationException($"the Docker engine reports API version '{engineVersion}', which is not a version number");
        var engineMin = string.IsNullOrWhiteSpace(engineMinimum) ? null : Parse(engineMinimum);

        var chosen = engineMax < clientMaximum ? engineMax : clientMaximum;
        if (engineMin is not null && chosen < engineMin)
        {
            throw new OperationException(
                $"the Docker engine requires API version {Format(engineMin)} or newer, but openlm-mirror speaks API {Format(clientMinimum)} to {Format(clientMaximum)}; use a newer openlm-mirror");
        }

        if (chosen < clientMinimum)
        {
            throw new OperationException(
                $"the Docker engine speaks API version {Format(engineMax)}, older than the {Format(clientMinimum)} openlm-mirror needs (Docker 1.13 or newer); upgrade the engine");
        }

        return chosen;
    }

    /// <summary>Parses <c>major.minor</c> (as in <c>1.41</c>); null when it is not one.</summary>
    public static Version? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var parts = text.Trim().Split('.');
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var minor))
        {
            return null;
        }

        return new Version(major, minor);
    }

    /// <summary><c>major.minor</c>, as the engine writes it in paths (<c>/v1.41/…</c>).</summary>
    public static string Format(Version version)
    {
        ArgumentNullException.ThrowIfNull(version);
        return string.Create(CultureInfo.InvariantCulture, $"{version.Major}.{version.Minor}");
    }
}
