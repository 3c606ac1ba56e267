using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.EngineLoad;

/// <summary>Where the Docker engine listens: <c>--docker-host</c>, else <c>DOCKER_HOST</c>, else the default socket.</summary>
public static class DockerHost
{
    public const string EnvironmentVariable = "DOCKER_HOST";

    public const string DefaultUnixSocket = "unix:///var/run/docker.sock";

    /// <summary>The engine address to use when none is given: <c>DOCKER_HOST</c> when set, else <see cref="DefaultUnixSocket"/>.</summary>
    public static string Default(Func<string, string?>? environment = null)
    {
        var value = (environment ?? Environment.GetEnvironmentVariable)(EnvironmentVariable);
        return string.IsNullOrWhiteSpace(value) ? DefaultUnixSocket : value.Trim();
    }

    /// <summary>
    /// Parses an engine address: <c>unix:///path/docker.sock</c>, <c>tcp://host:port</c> (plain HTTP),
    /// <c>http://host:port</c> or <c>npipe:////./pipe/docker_engine</c>. A bare absolute path is read as a unix socket.
    /// TLS (<c>https://</c>, <c>DOCKER_TLS_VERIFY</c>) and <c>ssh://</c> are not supported.
    /// </summary>
    public static Uri Parse(string text, Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var value = text.Trim();
        if (value.Length == 0)
        {
            throw new InputException("the Docker engine address is empty (expected e.g. unix:///var/run/docker.sock)") { Setting = Setting.DockerHost };
        }

        if (value.StartsWith('/'))
        {
            value = "unix://" + value;
        }

        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri))
        {
            throw new InputException($"invalid Docker host '{text}' (expected unix:///path/to/docker.sock or tcp://host:port)");
        }

        switch (uri.Scheme)
        {
            case "unix":
                if (string.IsNullOrEmpty(uri.AbsolutePath) || uri.AbsolutePath == "/")
                {
                    throw new InputException($"invalid Docker host '{text}': no socket path (expected unix:///path/to/docker.sock)");
                }

                return uri;
            case "npipe":
                return uri;
            case "tcp" or "http":
                var tls = (environment ?? Environment.GetEnvironmentVariable)("DOCKER_TLS_VERIFY");
                if (!string.IsNullOrEmpty(tls))
                {
                    throw new InputException(
                        $"Docker host '{text}' with DOCKER_TLS_VERIFY set: TLS connections to the engine are not supported; use the engine's unix socket");
                }

                if (uri.Port < 0)
                {
                    throw new InputException($"invalid Docker host '{text}': give the port, e.g. tcp://127.0.0.1:2375");
                }

                return uri;
            case "https":
                throw new InputException($"Docker host '{text}': TLS connections to the engine are not supported; use the engine's unix socket");
            case "ssh":
                throw new InputException($"Docker host '{text}': ssh:// engines are not supported; run openlm-mirror on the engine's host");
            default:
                throw new InputException($"Docker host '{text}' has unsupported scheme '{uri.Scheme}' (expected unix://, tcp:// or npipe://)");
        }
    }
}
