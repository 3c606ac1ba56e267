using System.Diagnostics;
using System.Security.Cryptography;

namespace OpenLm.Mirror.IntegrationTests.Support;

/// <summary>Runs the peer tools (skopeo, umoci) the way an operator would.</summary>
public static class Tools
{
    public static async Task<(int ExitCode, byte[] Output, string Error)> RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        using var buffer = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(buffer);
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        await copy;
        return (process.ExitCode, buffer.ToArray(), await error);
    }

    /// <summary>sha256 of what <c>skopeo inspect --raw</c> returns for a transport reference.</summary>
    public static async Task<string> SkopeoRawDigestAsync(string transportReference)
    {
        var (exit, output, error) = await RunAsync("skopeo", "inspect", "--raw", "--tls-verify=false", transportReference);
        if (exit != 0)
        {
            throw new InvalidOperationException($"skopeo inspect --raw {transportReference} failed: {error}");
        }

        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(output));
    }
}

/// <summary>A temporary directory deleted at dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "olm-it-" + Guid.NewGuid().ToString("N")[..12]);

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
