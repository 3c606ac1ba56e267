using OpenLm.Mirror.Cli;
using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary><c>export --key-password-stdin</c>: the signing key's passphrase from standard input, as keygen takes it.</summary>
public sealed class KeyPasswordStdinTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("openlm-keypass-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Export_PassphraseOnStdin_UnlocksTheKeyAndAWrongOneDoesNot()
    {
        // Given an encrypted signing key
        var name = Path.Combine(_dir, "release");
        Assert.Equal(0, (await RunAsync("correct horse\n", "keygen", "-o", name, "--password-stdin")).Exit);
        var lockPath = Path.Combine(_dir, "missing-lock.json");
        string[] export = ["export", "--lock", lockPath, "--key", name + ".key", "--key-password-stdin", "-o", Path.Combine(_dir, "b.tar")];

        // When export reads the right passphrase, the key opens and the next problem is the (missing) lock
        var right = await RunAsync("correct horse\n", export);
        Assert.Equal(ExitCodes.Usage, right.Exit);
        Assert.Contains(lockPath, right.Err, StringComparison.Ordinal);

        // And a wrong passphrase stops it at the key
        var wrong = await RunAsync("wrong\n", export);
        Assert.NotEqual(0, wrong.Exit);
        Assert.DoesNotContain(lockPath, wrong.Err, StringComparison.Ordinal);

        // And no passphrase on stdin is named as such
        var none = await RunAsync(string.Empty, export);
        Assert.Equal(ExitCodes.Usage, none.Exit);
        Assert.Contains("--key-password-stdin: no passphrase on standard input", none.Err, StringComparison.Ordinal);
    }

    private static async Task<(int Exit, string Out, string Err)> RunAsync(string input, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, CliConsole.Capture(output, error, input));
        return (exit, output.ToString(), error.ToString());
    }
}
