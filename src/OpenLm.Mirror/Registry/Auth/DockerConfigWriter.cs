using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Registry.Auth;

/// <summary>Where <see cref="DockerConfigWriter"/> put (or removed) a credential.</summary>
/// <param name="ConfigPath">The config.json (or auth file) that was updated.</param>
/// <param name="Helper">The credential helper that holds the secret (<c>credHelpers</c> / <c>credsStore</c>), or null when it is in the file.</param>
/// <param name="Key">The registry key used in the file (<c>https://index.docker.io/v1/</c> for Docker Hub, as docker writes it).</param>
public sealed record CredentialLocation(string ConfigPath, string? Helper, string Key);

/// <summary>
/// Stores and erases registry credentials the way <c>docker login</c> / <c>docker logout</c> do: through the
/// registry's <c>credHelpers</c> entry or the <c>credsStore</c> helper when the config names one (the file then only
/// records the registry), otherwise as a base64 <c>user:password</c> <c>auth</c> in <c>auths</c>. Other keys of the
/// file are kept as they are; the file is replaced atomically and readable by its owner only.
/// </summary>
public static class DockerConfigWriter
{
    /// <summary>Docker Hub's key in config.json, as the Docker CLI writes it.</summary>
    public const string DockerHubKey = "https://index.docker.io/v1/";

    public static CredentialLocation Store(string configPath, string registry, Credential credential)
    {
        ArgumentNullException.ThrowIfNull(credential);
        var root = Read(configPath);
        var key = Key(registry);
        var auths = root["auths"] as JsonObject ?? new JsonObject();
        root["auths"] = auths;
        var helper = HelperFor(root, key);
        if (helper is not null)
        {
            var payload = JsonSerializer.Serialize(new Dictionary<string, string> { ["ServerURL"] = key, ["Username"] = credential.Username, ["Secret"] = credential.Password });
            RunHelper(helper, "store", payload, registry);
            auths[key] = new JsonObject();
        }
        else
        {
            auths[key] = new JsonObject { ["auth"] = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credential.Username}:{credential.Password}")) };
        }

        Write(configPath, root);
        return new CredentialLocation(configPath, helper, key);
    }

    /// <summary>Removes the registry's credential; null when there was none to remove.</summary>
    public static CredentialLocation? Erase(string configPath, string registry)
    {
        if (!File.Exists(configPath))
        {
            return null;
        }

        var root = Read(configPath);
        var key = Key(registry);
        var helper = HelperFor(root, key);
        var removed = root["auths"] is JsonObject auths && (auths.Remove(key) | auths.Remove(registry));
        if (helper is not null)
        {
            // docker logout asks the helper to erase whatever the file says; a helper without the entry fails, which is fine.
            removed |= TryRunHelper(helper, "erase", key);
        }

        if (!removed)
        {
            return null;
        }

        Write(configPath, root);
        return new CredentialLocation(configPath, helper, key);
    }

    /// <summary>The key docker uses for <paramref name="registry"/>: the host[:port], or Docker Hub's URL.</summary>
    public static string Key(string registry)
    {
        var host = registry.Trim();
        foreach (var scheme in new[] { "https://", "http://" })
        {
            if (host.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            {
                host = host[scheme.Length..];
            }
        }

        host = host.Split('/', 2)[0];
        if (host.Length == 0 || host.Any(char.IsWhiteSpace))
        {
            throw new InputException($"'{registry}' is not a registry host[:port]") { Subject = registry };
        }

        return host is "docker.io" or "index.docker.io" or "registry-1.docker.io" ? DockerHubKey : host.ToLowerInvariant();
    }

    private static string? HelperFor(JsonObject root, string key) =>
        (root["credHelpers"] as JsonObject)?[key]?.GetValue<string>() is { Length: > 0 } specific
            ? specific
            : root["credsStore"]?.GetValue<string>() is { Length: > 0 } store ? store : null;

    private static JsonObject Read(string path)
    {
        if (!File.Exists(path))
        {
            return new JsonObject();
        }

        try
        {
            return JsonNode.Parse(File.ReadAllBytes(path)) as JsonObject
                ?? throw new InputException($"{path}: Docker config is not a JSON object") { Subject = path };
        }
        catch (JsonException ex)
        {
            throw new InputException($"{path}: Docker config is not valid JSON (line {ex.LineNumber + 1}); fix or move it, it is not overwritten", ex) { Subject = path };
        }
    }

    private static void Write(string path, JsonObject root)
    {
        AtomicFile.WriteAllBytes(path, Encoding.UTF8.GetBytes(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n"));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    private static void RunHelper(string helper, string verb, string input, string registry)
    {
        var (exit, output) = Helper(helper, verb, input);
        if (exit != 0)
        {
            throw new OperationException($"docker-credential-{helper} {verb} failed for {registry} (exit {exit}): {output.Trim()}") { Subject = registry };
        }
    }

    private static bool TryRunHelper(string helper, string verb, string input)
    {
        try
        {
            return Helper(helper, verb, input).Exit == 0;
        }
        catch (OperationException)
        {
            return false;
        }
    }

    private static (int Exit, string Output) Helper(string helper, string verb, string input)
    {
        var start = new ProcessStartInfo($"docker-credential-{helper}", verb)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        try
        {
            using var process = Process.Start(start) ?? throw new OperationException($"cannot start docker-credential-{helper}");
            process.StandardInput.Write(input);
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEnd();
            if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                process.Kill();
                throw new OperationException($"docker-credential-{helper} {verb} did not finish within 30 s");
            }

            return (process.ExitCode, output.GetAwaiter().GetResult() + error);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new OperationException($"the Docker config names the credential helper '{helper}' but docker-credential-{helper} is not on PATH", ex);
        }
    }
}
