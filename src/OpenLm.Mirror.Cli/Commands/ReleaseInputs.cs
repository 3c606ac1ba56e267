using System.CommandLine;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Export;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>Reading a platform manifest (with its charts scanned) and resolving it, shared by resolve and export.</summary>
internal sealed class ReleaseInputs
{
    public Option<string?> Manifest { get; } = new("--manifest") { Description = "Platform manifest (YAML, see docs/platform-manifest.md)", HelpName = "FILE" };

    public Option<bool> SkipInvalid { get; } = new("--skip-invalid") { Description = "Chart values references that cannot be parsed become warnings instead of errors" };

    public Option<string?> Platform { get; } = new("--platform") { Description = "Keep only these platforms (overrides the manifest's platforms), e.g. linux/amd64", HelpName = "os/arch[,...]" };

    public Option<string[]> RegistryMirror { get; } = new("--registry-mirror") { Description = "Pull images of SOURCE through a mirror (repeatable), e.g. public.ecr.aws=mirror.corp:5000/ecr-cache; lock and bundle keep SOURCE names", HelpName = "SOURCE=MIRROR[/prefix]", AllowMultipleArgumentsPerToken = false };

    /// <summary>Sets the <c>--registry-mirror</c> rules on <paramref name="options"/> (before a connector is made of them).</summary>
    public RegistryOptions WithMirrors(ParseResult parse, RegistryOptions options)
    {
        options.Mirrors = RegistryMirrors.Parse(parse.GetValue(RegistryMirror) ?? [], "--registry-mirror", Setting.RegistryMirror);
        return options;
    }

    public void AddTo(Command command)
    {
        command.Options.Add(RegistryMirror);
        command.Options.Add(Manifest);
        command.Options.Add(SkipInvalid);
        command.Options.Add(Platform);
    }

    public Task<LockFile> ResolveAsync(ParseResult parse, string manifestPath, string? cacheDirectory, RegistryConnector connector, IMirrorLog log, CancellationToken cancellationToken)
    {
        RefuseLockAsManifest(manifestPath);
        return Release.ResolveAsync(
            new ResolveRequest
            {
                ManifestPath = manifestPath,
                CacheDirectory = cacheDirectory,
                SkipInvalid = parse.GetValue(SkipInvalid),
                Platforms = parse.GetValue(Platform) is { } text ? Oci.Platform.ParseList(text) : null,
            },
            connector,
            log,
            cancellationToken);
    }

    /// <summary>A lock file (JSON from resolve) given as the manifest: say so once instead of listing its every field as unknown.</summary>
    private static void RefuseLockAsManifest(string path)
    {
        if (!File.Exists(path))
        {
            return;
        }

        try
        {
            using var stream = File.OpenRead(path);
            using var document = System.Text.Json.JsonDocument.Parse(stream);
            var root = document.RootElement;
            if (root.ValueKind == System.Text.Json.JsonValueKind.Object && root.TryGetProperty("images", out _) && root.TryGetProperty("blobs", out _) && !root.TryGetProperty("apiVersion", out _))
            {
                throw new InputException($"--manifest '{path}' is a lock file (written by resolve), not a platform manifest: give it to export as --lock {path}, or pass the platform manifest YAML to --manifest");
            }
        }
        catch (System.Text.Json.JsonException)
        {
            // Not JSON: a YAML manifest, read (and its errors reported) by the manifest loader.
        }
    }

    public static string ToolVersion =>
        typeof(ReleaseInputs).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new InputException(message);
        }
    }
}
