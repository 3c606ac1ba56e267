using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Docker.DotNet;
using Docker.DotNet.Handler.Abstractions;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging.Abstractions;
using OpenLm.Mirror.Errors;
using OciPlatform = OpenLm.Mirror.Oci.Platform;
using Version = System.Version;

namespace OpenLm.Mirror.EngineLoad;

/// <summary>What the engine said about itself, and the API version agreed on.</summary>
public sealed record EngineInfo
{
    /// <summary>The address used, e.g. <c>unix:///var/run/docker.sock</c>.</summary>
    public required string Endpoint { get; init; }

    /// <summary>The engine's version, e.g. <c>20.10.24</c>.</summary>
    public required string Version { get; init; }

    /// <summary>The engine's newest API version (e.g. <c>1.41</c>).</summary>
    public required string EngineApiVersion { get; init; }

    /// <summary>The engine's oldest API version, when it says.</summary>
    public string? MinApiVersion { get; init; }

    /// <summary>The API version used for every request after the unversioned <c>/version</c>.</summary>
    public required Version ApiVersion { get; init; }

    /// <summary>The engine's own platform (normalised): what it runs by default.</summary>
    public required OciPlatform Platform { get; init; }
}

/// <summary>An image as the engine holds it.</summary>
/// <param name="Id">The image ID (<c>sha256:…</c>; the config digest on graph-driver engines).</param>
/// <param name="RepoTags">Tags pointing at it.</param>
/// <param name="DiffIds">Its layers' uncompressed digests, base first.</param>
public sealed record EngineImage(string Id, IReadOnlyList<string> RepoTags, IReadOnlyList<string> DiffIds);

/// <summary>The part of a Docker engine the loader needs; <see cref="DockerEngine"/> is the real one.</summary>
public interface IImageEngine
{
    EngineInfo Info { get; }

    /// <summary>
    /// Streams a <c>docker save</c>-format tar to the engine's load endpoint and returns the references the engine
    /// reports as loaded (its <c>Loaded image: …</c> lines, as written). Engine errors raise <see cref="OperationException"/>.
    /// </summary>
    Task<IReadOnlyList<string>> LoadAsync(Stream archive, CancellationToken cancellationToken);

    /// <summary>The image a reference names, or null when the engine has none.</summary>
    Task<EngineImage?> InspectAsync(string reference, CancellationToken cancellationToken);
}

/// <summary>A Docker engine reached through Docker.DotNet, with the API version negotiated.</summary>
public sealed class DockerEngine : IImageEngine, IDisposable
{
    private const string LoadedImagePrefix = "Loaded image: ";
    private const string LoadedImageIdPrefix = "Loaded image ID: ";
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromMinutes(2);

    private readonly DockerClient _client;

    private DockerEngine(DockerClient client, EngineInfo info)
    {
        _client = client;
        Info = info;
    }

    public EngineInfo Info { get; }

    /// <summary>
    /// Connects: asks the engine for its version without a version prefix, negotiates the API version
    /// (<see cref="ApiVersionNegotiation"/>) and returns a client that uses it. An engine that does not answer raises
    /// <see cref="OperationException"/> naming the address.
    /// </summary>
    public static async Task<DockerEngine> ConnectAsync(Uri endpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var display = endpoint.OriginalString;
        if (endpoint.Scheme == "unix" && !File.Exists(endpoint.LocalPath))
        {
            throw new OperationException($"cannot reach the Docker engine at {display}: there is no socket at {endpoint.LocalPath}") { Remedy = Remedy.EngineAddress, Subject = display };
        }

        VersionResponse version;
        using (var probe = CreateClient(endpoint, apiVersion: null))
        {
            try
            {
                version = await probe.System.GetVersionAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsTransportFailure(ex, cancellationToken))
            {
                throw new OperationException($"cannot reach the Docker engine at {display}: {Describe(ex)}", ex) { Remedy = Remedy.EngineAddress, Subject = display };
            }
        }

        var apiVersion = ApiVersionNegotiation.Negotiate(version.APIVersion, version.MinAPIVersion);
        var info = new EngineInfo
        {
            Endpoint = display,
            Version = string.IsNullOrEmpty(version.Version) ? "unknown" : version.Version,
            EngineApiVersion = version.APIVersion ?? string.Empty,
            MinApiVersion = version.MinAPIVersion,
            ApiVersion = apiVersion,
            Platform = PlatformMatcher.FromEngine(version.Os, version.Arch),
        };
        return new DockerEngine(CreateClient(endpoint, apiVersion), info);
    }

    public async Task<IReadOnlyList<string>> LoadAsync(Stream archive, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(archive);
        var messages = new LoadMessages();
        try
        {
            await _client.Images.LoadImageAsync(new ImageLoadParameters { Quiet = true }, archive, messages, cancellationToken).ConfigureAwait(false);
        }
        catch (DockerApiException ex)
        {
            throw new OperationException($"the Docker engine refused the images: {EngineMessage(ex)}{messages.LoadedSoFar()}", ex);
        }
        catch (Exception ex) when (IsTransportFailure(ex, cancellationToken))
        {
            throw new OperationException($"the connection to the Docker engine at {Info.Endpoint} failed while loading images: {Describe(ex)}{messages.LoadedSoFar()}", ex);
        }

        if (messages.Errors.Count > 0)
        {
            throw new OperationException($"the Docker engine failed to load the images: {string.Join("; ", messages.Errors)}{messages.LoadedSoFar()}");
        }

        return messages.Loaded;
    }

    public async Task<EngineImage?> InspectAsync(string reference, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(reference);
        try
        {
            var image = await _client.Images.InspectImageAsync(reference, cancellationToken).ConfigureAwait(false);
            return new EngineImage(image.ID, image.RepoTags?.ToList() ?? [], image.RootFS?.Layers?.ToList() ?? []);
        }
        catch (DockerImageNotFoundException)
        {
            return null;
        }
        catch (DockerApiException ex)
        {
            throw new OperationException($"the Docker engine could not inspect '{reference}': {EngineMessage(ex)}", ex);
        }
        catch (Exception ex) when (IsTransportFailure(ex, cancellationToken))
        {
            throw new OperationException($"the connection to the Docker engine at {Info.Endpoint} failed: {Describe(ex)}", ex);
        }
    }

    public void Dispose() => _client.Dispose();

    /// <summary>
    /// Built from explicit options: the default constructor of <see cref="DockerClientBuilder"/> would also read
    /// DOCKER_HOST and Docker contexts, which must not override (or break) an explicit <c>--docker-host</c>.
    /// </summary>
    private static DockerClient CreateClient(Uri endpoint, Version? apiVersion)
    {
        try
        {
            return new ExplicitBuilder(new ClientOptions { Endpoint = endpoint, ApiVersion = apiVersion, Timeout = RequestTimeout }).Build();
        }
        catch (NotSupportedException ex)
        {
            throw new InputException($"Docker host '{endpoint.OriginalString}' is not supported: {ex.Message}", ex);
        }
    }

    private static bool IsTransportFailure(Exception ex, CancellationToken cancellationToken) => ex switch
    {
        AggregateException aggregate => aggregate.InnerExceptions.Count > 0 && aggregate.InnerExceptions.All(e => IsTransportFailure(e, cancellationToken)),
        HttpRequestException or IOException or SocketException or TimeoutException => true,
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        _ => false,
    };

    private static string Describe(Exception ex)
    {
        var messages = new List<string>();
        for (var e = ex; e is not null && messages.Count < 3; e = e.InnerException)
        {
            if (e is AggregateException { InnerExceptions.Count: 1 })
            {
                continue;
            }

            var message = e is OperationCanceledException ? "timed out" : e.Message.TrimEnd('.');
            if (!messages.Contains(message))
            {
                messages.Add(message);
            }
        }

        return string.Join(": ", messages);
    }

    /// <summary>The <c>message</c> of the engine's JSON error body, else the body itself.</summary>
    private static string EngineMessage(DockerApiException ex)
    {
        var body = ex.ResponseBody?.Trim();
        if (!string.IsNullOrEmpty(body))
        {
            try
            {
                using var doc = JsonDocument.Parse(body);
                if (doc.RootElement.ValueKind == JsonValueKind.Object
                    && doc.RootElement.TryGetProperty("message", out var m)
                    && m.ValueKind == JsonValueKind.String)
                {
                    return $"{m.GetString()} (HTTP {(int)ex.StatusCode})";
                }
            }
            catch (JsonException)
            {
            }

            return $"{body} (HTTP {(int)ex.StatusCode})";
        }

        return ex.StatusCode == HttpStatusCode.OK ? ex.Message : $"HTTP {(int)ex.StatusCode} {ex.StatusCode}";
    }

    private sealed class ExplicitBuilder(ClientOptions options) : DockerClientBuilder(options, NullLogger.Instance);

    /// <summary>Collects the engine's progress messages (called synchronously by Docker.DotNet).</summary>
    private sealed class LoadMessages : IProgress<JSONMessage>
    {
        private readonly Lock _gate = new();

        public List<string> Loaded { get; } = [];

        public List<string> Errors { get; } = [];

        public void Report(JSONMessage value)
        {
            lock (_gate)
            {
                if (value.Error is { } error && !string.IsNullOrEmpty(error.Message))
                {
                    Errors.Add(error.Message.Trim());
                }

                foreach (var line in (value.Stream ?? string.Empty).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    if (line.StartsWith(LoadedImagePrefix, StringComparison.Ordinal))
                    {
                        Loaded.Add(line[LoadedImagePrefix.Length..].Trim());
                    }
                    else if (line.StartsWith(LoadedImageIdPrefix, StringComparison.Ordinal))
                    {
                        Loaded.Add(line[LoadedImageIdPrefix.Length..].Trim());
                    }
                }
            }
        }

        public string LoadedSoFar()
        {
            lock (_gate)
            {
                return Loaded.Count == 0 ? string.Empty : $" (loaded before the failure: {string.Join(", ", Loaded)})";
            }
        }
    }
}
