using System.Diagnostics;
using System.Text;
using System.Text.Json;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Registry.Auth;

/// <summary>
/// Reads credentials the way the Docker CLI stores them: <c>$DOCKER_CONFIG/config.json</c> (default
/// <c>~/.docker/config.json</c>), <c>auths</c> entries with base64 <c>auth</c> or username/password or
/// <c>identitytoken</c>, and <c>credHelpers</c> / <c>credsStore</c> helper programs.
/// </summary>
public sealed class DockerConfigCredentialProvider : ICredentialProvider
{
    private readonly Dictionary<string, JsonElement> _auths = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, string> _helpers = new(StringComparer.OrdinalIgnoreCase);
    private readonly string? _store;
    private readonly string _path;

    private DockerConfigCredentialProvider(string path, JsonElement root)
    {
        _path = path;
        if (root.TryGetProperty("auths", out var auths) && auths.ValueKind == JsonValueKind.Object)
        {
            foreach (var entry in auths.EnumerateObject())
            {
                _auths[NormaliseKey(entry.Name)] = entry.Value.Clone();
            }
        }

        if (root.TryGetProperty("credHelpers", out var helpers) && helpers.ValueKind == JsonValueKind.Object)
        {
            foreach (var entry in helpers.EnumerateObject())
            {
                if (entry.Value.ValueKind == JsonValueKind.String)
                {
                    _helpers[NormaliseKey(entry.Name)] = entry.Value.GetString()!;
                }
            }
        }

        if (root.TryGetProperty("credsStore", out var store) && store.ValueKind == JsonValueKind.String)
        {
            _store = store.GetString();
        }
    }

    /// <summary>The config file path Docker would use.</summary>
    public static string DefaultPath()
    {
        var dir = Environment.GetEnvironmentVariable("DOCKER_CONFIG");
        if (string.IsNullOrEmpty(dir))
        {
            dir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".docker");
        }

        return Path.Combine(dir, "config.json");
    }

    /// <summary>Loads the config; returns an anonymous provider when the file does not exist.</summary>
    public static ICredentialProvider Load(string? path = null)
    {
        path ??= DefaultPath();
        if (!File.Exists(path))
        {
            return AnonymousCredentialProvider.Instance;
        }

        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new InputException($"{path}: Docker config is not a JSON object");
            }

            return new DockerConfigCredentialProvider(path, doc.RootElement.Clone());
        }
        catch (JsonException ex)
        {
            throw new InputException($"{path}: Docker config is not valid JSON (line {ex.LineNumber + 1})", ex);
        }
        catch (IOException ex)
        {
            throw new OperationException($"{path}: cannot read Docker config: {ex.Message}", ex);
        }
    }

    public Credential? GetCredential(string registryHost)
    {
        var key = NormaliseKey(registryHost);
        if (_helpers.TryGetValue(key, out var helper))
        {
            return FromHelper(helper, registryHost)?.From($"credential helper docker-credential-{helper} (credHelpers in {_path})");
        }

        if (_auths.TryGetValue(key, out var entry))
        {
            var fromEntry = FromEntry(entry, registryHost);
            if (fromEntry is not null)
            {
                return fromEntry.From($"{_path} (auths \"{key}\")");
            }
        }

        return _store is null ? null : FromHelper(_store, registryHost)?.From($"credential store docker-credential-{_store} (credsStore in {_path})");
    }

    private Credential? FromEntry(JsonElement entry, string host)
    {
        if (entry.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        if (entry.TryGetProperty("identitytoken", out var token) && token.ValueKind == JsonValueKind.String && token.GetString() is { Length: > 0 } t)
        {
            return Credential.FromIdentityToken(t);
        }

        if (entry.TryGetProperty("auth", out var auth) && auth.ValueKind == JsonValueKind.String && auth.GetString() is { Length: > 0 } encoded)
        {
            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(encoded));
            }
            catch (FormatException ex)
            {
                throw new InputException($"{_path}: auths[\"{host}\"].auth is not valid base64", ex);
            }

            var colon = decoded.IndexOf(':');
            if (colon < 0)
            {
                throw new InputException($"{_path}: auths[\"{host}\"].auth does not decode to username:password");
            }

            return new Credential(decoded[..colon], decoded[(colon + 1)..]);
        }

        if (entry.TryGetProperty("username", out var u) && entry.TryGetProperty("password", out var p)
            && u.ValueKind == JsonValueKind.String && p.ValueKind == JsonValueKind.String
            && u.GetString() is { } user && p.GetString() is { } pass)
        {
            return new Credential(user, pass);
        }

        return null;
    }

    private static Credential? FromHelper(string helper, string host)
    {
        var serverUrl = host == Oci.Reference.DockerHub ? "https://index.docker.io/v1/" : host;
        var start = new ProcessStartInfo($"docker-credential-{helper}", "get")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        try
        {
            using var process = Process.Start(start) ?? throw new OperationException($"cannot start docker-credential-{helper}");
            process.StandardInput.Write(serverUrl);
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit(30_000);
            if (process.ExitCode != 0)
            {
                // Helpers exit non-zero with "credentials not found" for unknown hosts: anonymous.
                return null;
            }

            using var doc = JsonDocument.Parse(output);
            var user = doc.RootElement.GetProperty("Username").GetString() ?? string.Empty;
            var secret = doc.RootElement.GetProperty("Secret").GetString() ?? string.Empty;
            return user == "<token>" ? Credential.FromIdentityToken(secret) : new Credential(user, secret);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new OperationException($"Docker config names credential helper '{helper}' for {host}, but docker-credential-{helper} is not on PATH", ex);
        }
        catch (JsonException ex)
        {
            throw new OperationException($"docker-credential-{helper} returned malformed output for {host}", ex);
        }
    }

    private static string NormaliseKey(string key)
    {
        var k = key;
        if (k.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            k = k[8..];
        }
        else if (k.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            k = k[7..];
        }

        var slash = k.IndexOf('/');
        if (slash >= 0)
        {
            k = k[..slash];
        }

        return k is "index.docker.io" or "registry-1.docker.io" or "docker.io" ? Oci.Reference.DockerHub : k;
    }
}
