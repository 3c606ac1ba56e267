using System.CommandLine;
using System.Text.Json;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry.Auth;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>
/// <c>openlm-mirror login REGISTRY -u USER --password-stdin</c> and <c>logout REGISTRY</c>: Docker's config.json
/// written as <c>docker login</c> writes it (credential helpers respected), or the <c>--authfile</c> /
/// <c>REGISTRY_AUTH_FILE</c> file. The credentials are stored, not tried against the registry.
/// </summary>
internal static class LoginCommand
{
    public static Command CreateLogin(CliConsole console)
    {
        var registry = new Argument<string>("REGISTRY") { Description = "Registry host[:port], e.g. registry.corp:5000 (docker.io for Docker Hub)" };
        var username = new Option<string?>("--username", "-u") { HelpName = "USER", Description = "Registry username", Required = true };
        var passwordStdin = new Option<bool>("--password-stdin") { Description = "Read the password from standard input (required: passwords are never arguments)" };
        var authFile = RegistryOptionSet.AuthFileOption();
        var json = new Option<bool>("--json") { Description = "Print a JSON report on stdout" };
        var command = new Command("login", "Store registry credentials in Docker's config.json (or --authfile), through its credential helper when it names one") { registry, username, passwordStdin, authFile, json };
        command.SetAction(async (parse, _) =>
        {
            if (!parse.GetValue(passwordStdin))
            {
                throw new InputException("login needs the password on standard input: echo \"$PASSWORD\" | openlm-mirror login REGISTRY -u USER --password-stdin");
            }

            var password = console.In().ReadLine()?.TrimEnd('\r', '\n');
            if (string.IsNullOrEmpty(password))
            {
                throw new InputException("--password-stdin: no password on standard input");
            }

            var path = RegistryOptionSet.AuthFilePath(parse.GetValue(authFile));
            var user = parse.GetValue(username)!;
            var stored = DockerConfigWriter.Store(path, parse.GetValue(registry)!, new Credential(user, password));
            await PrintAsync(console, parse.GetValue(json), stored, user, $"credentials for {stored.Key} stored {Where(stored)} (not checked against the registry)").ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    public static Command CreateLogout(CliConsole console)
    {
        var registry = new Argument<string>("REGISTRY") { Description = "Registry host[:port]" };
        var authFile = RegistryOptionSet.AuthFileOption();
        var json = new Option<bool>("--json") { Description = "Print a JSON report on stdout" };
        var command = new Command("logout", "Remove a registry's credentials from Docker's config.json (or --authfile) and its credential helper") { registry, authFile, json };
        command.SetAction(async (parse, _) =>
        {
            var path = RegistryOptionSet.AuthFilePath(parse.GetValue(authFile));
            var key = DockerConfigWriter.Key(parse.GetValue(registry)!);
            var removed = DockerConfigWriter.Erase(path, parse.GetValue(registry)!);
            if (removed is null)
            {
                // docker logout says "Not logged in" and exits 0: the goal (no credentials) holds.
                await PrintAsync(console, parse.GetValue(json), new CredentialLocation(path, null, key), null, $"not logged in to {key} (nothing in {path})", removed: false).ConfigureAwait(false);
                return ExitCodes.Success;
            }

            await PrintAsync(console, parse.GetValue(json), removed, null, $"credentials for {removed.Key} removed {Where(removed)}", removed: true).ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    private static string Where(CredentialLocation location) =>
        location.Helper is null ? $"in {location.ConfigPath}" : $"with docker-credential-{location.Helper} (registry recorded in {location.ConfigPath})";

    private static async Task PrintAsync(CliConsole console, bool json, CredentialLocation location, string? username, string text, bool? removed = null)
    {
        if (json)
        {
            await console.Out.WriteLineAsync(JsonSerializer.Serialize(new
            {
                registry = location.Key,
                authFile = location.ConfigPath,
                helper = location.Helper,
                username,
                removed,
            }, Format.Json)).ConfigureAwait(false);
        }
        else
        {
            await console.Out.WriteLineAsync(text).ConfigureAwait(false);
        }
    }
}
