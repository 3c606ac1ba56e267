using System.Diagnostics;
using System.Text;
using System.Text.Json;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Registry.Auth;
using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary><c>login</c> / <c>logout</c> write the file docker writes, respect credential helpers, never print the secret.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class LoginTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("openlm-login-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Login_AuthFile_WritesDockersAuthEntryKeepsOtherKeysAndTheReaderFindsIt()
    {
        var file = Path.Combine(_dir, "auth.json");
        File.WriteAllText(file, """{"auths": {"other:5000": {"auth": "eDp5"}}, "psFormat": "table"}""");

        var (exit, stdout, stderr) = await RunAsync("s3cret-pass\n", "login", "registry.corp:5000", "-u", "robot", "--password-stdin", "--authfile", file, "--json");

        Assert.True(exit == 0, stderr);
        Assert.DoesNotContain("s3cret", stdout + stderr, StringComparison.Ordinal);
        JsonContract.Validate("login", stdout, 0);
        using var config = JsonDocument.Parse(File.ReadAllText(file));
        Assert.Equal(Convert.ToBase64String(Encoding.UTF8.GetBytes("robot:s3cret-pass")), config.RootElement.GetProperty("auths").GetProperty("registry.corp:5000").GetProperty("auth").GetString());
        Assert.Equal("table", config.RootElement.GetProperty("psFormat").GetString());
        Assert.True(config.RootElement.GetProperty("auths").TryGetProperty("other:5000", out _));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        var credential = DockerConfigCredentialProvider.Load(file).GetCredential("registry.corp:5000");
        Assert.Equal(("robot", "s3cret-pass"), (credential!.Username, credential.Password));

        // And logout removes it, and a second logout is "not logged in", exit 0 (as docker)
        var (outExit, outJson, _) = await RunAsync(string.Empty, "logout", "registry.corp:5000", "--authfile", file, "--json");
        Assert.Equal(0, outExit);
        Assert.True(JsonContract.Validate("logout", outJson, 0).GetProperty("removed").GetBoolean());
        Assert.Null(DockerConfigCredentialProvider.Load(file).GetCredential("registry.corp:5000"));
        var (again, againJson, _) = await RunAsync(string.Empty, "logout", "registry.corp:5000", "--authfile", file, "--json");
        Assert.Equal(0, again);
        Assert.False(JsonContract.Validate("logout", againJson, 0).GetProperty("removed").GetBoolean());
    }

    [Fact]
    public async Task Login_DockerHub_UsesDockersKey()
    {
        var file = Path.Combine(_dir, "config.json");

        var (exit, _, stderr) = await RunAsync("pw\n", "login", "docker.io", "-u", "me", "--password-stdin", "--authfile", file);

        Assert.True(exit == 0, stderr);
        using var config = JsonDocument.Parse(File.ReadAllText(file));
        Assert.True(config.RootElement.GetProperty("auths").TryGetProperty("https://index.docker.io/v1/", out _));
    }

    [Fact]
    public async Task Login_WithoutPasswordStdin_Usage()
    {
        var (exit, _, stderr) = await RunAsync(string.Empty, "login", "registry.corp:5000", "-u", "robot", "--authfile", Path.Combine(_dir, "a.json"));

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("--password-stdin", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir, "a.json")));
    }

    [Fact]
    public void Store_CredsStore_SecretGoesToTheHelperAndTheFileOnlyRecordsTheRegistry()
    {
        // Given a config naming a credsStore whose helper (a script on PATH) records what it is given
        var bin = Directory.CreateDirectory(Path.Combine(_dir, "bin")).FullName;
        var received = Path.Combine(_dir, "helper-input");
        var helper = Path.Combine(bin, "docker-credential-fake");
        File.WriteAllText(helper, $"#!/bin/sh\necho \"$1\" >> '{received}'\ncat >> '{received}'\n");
        File.SetUnixFileMode(helper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var file = Path.Combine(_dir, "config.json");
        File.WriteAllText(file, """{"credsStore": "fake"}""");
        var path = Environment.GetEnvironmentVariable("PATH");
        Environment.SetEnvironmentVariable("PATH", bin + ":" + path);
        try
        {
            // When credentials are stored, then erased
            var stored = DockerConfigWriter.Store(file, "registry.corp:5000", new Credential("robot", "s3cret"));
            var config = File.ReadAllText(file);
            var erased = DockerConfigWriter.Erase(file, "registry.corp:5000");

            // Then the helper got store (JSON with the secret) and erase (the server URL), and the file never held the secret
            Assert.Equal("fake", stored.Helper);
            Assert.NotNull(erased);
            var input = File.ReadAllText(received);
            Assert.StartsWith("store\n{\"ServerURL\":\"registry.corp:5000\",\"Username\":\"robot\",\"Secret\":\"s3cret\"}", input, StringComparison.Ordinal);
            Assert.Contains("erase\nregistry.corp:5000", input, StringComparison.Ordinal);
            Assert.DoesNotContain("s3cret", config, StringComparison.Ordinal);
            Assert.Contains("registry.corp:5000", config, StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable("PATH", path);
        }
    }

    private static async Task<(int Exit, string Out, string Err)> RunAsync(string input, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, CliConsole.Capture(output, error, input));
        return (exit, output.ToString(), error.ToString());
    }
}
