using System.CommandLine;
using System.Text.Json;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary><c>openlm-mirror keygen -o NAME</c>: an ECDSA P-256 signing key pair.</summary>
internal static class KeygenCommand
{
    public static Command Create(CliConsole console)
    {
        var output = new Option<string>("--output", "-o") { Description = "Base name: writes NAME.key (PKCS#8 PEM) and NAME.pub (SPKI PEM); never overwrites", HelpName = "NAME", Required = true };
        var passwordEnv = new Option<string?>("--password-env") { Description = "Encrypt the private key with the passphrase in this environment variable", HelpName = "VAR" };
        var passwordStdin = new Option<bool>("--password-stdin") { Description = "Encrypt the private key with a passphrase read from standard input" };
        var json = new Option<bool>("--json") { Description = "Print a JSON report on stdout" };
        var command = new Command("keygen", "Create a release signing key pair (ECDSA P-256)") { output, passwordEnv, passwordStdin, json };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var passphrase = KeyInputs.Passphrase(parse.GetValue(passwordEnv), parse.GetValue(passwordStdin), console, "--password");
            var pair = KeyPairGenerator.Generate(parse.GetValue(output)!, passphrase);
            if (parse.GetValue(json))
            {
                await console.Out.WriteLineAsync(JsonSerializer.Serialize(new { privateKey = pair.PrivateKeyPath, publicKey = pair.PublicKeyPath, keyId = pair.KeyId, encrypted = pair.Encrypted }, Format.Json)).ConfigureAwait(false);
            }
            else
            {
                await console.Out.WriteLineAsync($"private key: {pair.PrivateKeyPath}{(pair.Encrypted ? " (encrypted)" : " (NOT encrypted: keep it offline)")}").ConfigureAwait(false);
                await console.Out.WriteLineAsync($"public key:  {pair.PublicKeyPath}").ConfigureAwait(false);
                await console.Out.WriteLineAsync($"key id:      {pair.KeyId}").ConfigureAwait(false);
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
