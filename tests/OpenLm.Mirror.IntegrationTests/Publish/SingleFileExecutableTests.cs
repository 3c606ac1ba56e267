using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Publish;

/// <summary>
/// The linux-x64 single-file executable (scripts/publish.sh) and a signed bundle to run it on. The executable is
/// reused from dist/ when it is newer than every source file, else published with <c>scripts/publish.sh --rid linux-x64</c>.
/// </summary>
public sealed class SingleFileFixture : IAsyncLifetime
{
    public const string Source = "public.ecr.aws/r3q3q2f4";

    private readonly TempDir _temp = new();

    /// <summary>False where a linux-x64 executable cannot run (the tests then do nothing).</summary>
    public static bool Supported => OperatingSystem.IsLinux() && RuntimeInformation.OSArchitecture == Architecture.X64;

    public string RepositoryRoot { get; } = FindRepositoryRoot();

    public string Executable => Path.Combine(RepositoryRoot, "dist", "openlm-mirror-linux-x64");

    public string BundlePath => _temp.Sub("olm.tar");

    public string TamperedPath => _temp.Sub("olm-tampered.tar");

    public string PublicKey { get; private set; } = null!;

    /// <summary>An empty directory: the only PATH the executable gets, so no dotnet can be found.</summary>
    public string EmptyPath => _temp.Sub("empty-path");

    public string PublishLog { get; private set; } = string.Empty;

    public string Temp(string name) => _temp.Sub(name);

    public async Task InitializeAsync()
    {
        if (!Supported)
        {
            return;
        }

        Directory.CreateDirectory(EmptyPath);
        var layout = _temp.Sub("layout");
        SamplePlatform.Small(seed: 21, @namespace: Source).WriteLayout(layout);
        var pair = KeyPairGenerator.Generate(_temp.Sub("release"), null);
        PublicKey = pair.PublicKeyPath;
        using (var key = SigningKey.Load(pair.PrivateKeyPath))
        {
            var manifest = new BundleManifest
            {
                Platform = new BundleProduct { Name = "olm", Version = "1.0.0" },
                Tool = new BundleProduct { Name = "openlm-mirror", Version = "0.1.0" },
                Source = Source,
            };
            await BundleWriter.WriteAsync(OciLayoutStore.Open(layout, create: false), manifest, key, BundlePath);
        }

        var bytes = await File.ReadAllBytesAsync(BundlePath);
        FlipByteInLastBlob(bytes);
        await File.WriteAllBytesAsync(TamperedPath, bytes);

        if (!IsUpToDate())
        {
            var (exit, output) = await RunAsync("bash", [Path.Combine(RepositoryRoot, "scripts", "publish.sh"), "--rid", "linux-x64"], TimeSpan.FromMinutes(20), workingDirectory: RepositoryRoot);
            PublishLog = output;
            if (exit != 0)
            {
                throw new InvalidOperationException($"scripts/publish.sh --rid linux-x64 failed with exit {exit}:\n{output}");
            }
        }
    }

    public Task DisposeAsync()
    {
        _temp.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Runs the executable under <c>env -i PATH=&lt;empty dir&gt;</c>: no dotnet on PATH, no DOTNET_ROOT, no other variable.</summary>
    public Task<(int ExitCode, string Output)> RunIsolatedAsync(params string[] args) =>
        RunAsync("/usr/bin/env", ["-i", $"PATH={EmptyPath}", Executable, .. args], TimeSpan.FromMinutes(2), workingDirectory: _temp.Path);

    private bool IsUpToDate()
    {
        var exe = new FileInfo(Executable);
        if (!exe.Exists)
        {
            return false;
        }

        var inputs = Directory.EnumerateFiles(Path.Combine(RepositoryRoot, "src"), "*", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Concat(new[] { "Directory.Build.props", "Directory.Packages.props", "global.json", Path.Combine("scripts", "publish.sh") }
                .Select(f => Path.Combine(RepositoryRoot, f))
                .Where(File.Exists));
        var newest = inputs.Max(File.GetLastWriteTimeUtc);
        return exe.LastWriteTimeUtc > newest;
    }

    /// <summary>Flips one byte in the middle of the last blob entry's data (a layer: blobs are sorted last), headers untouched.</summary>
    private static void FlipByteInLastBlob(byte[] tar)
    {
        long? target = null;
        var offset = 0L;
        while (offset + 512 <= tar.Length && tar[offset] != 0)
        {
            var name = Encoding.ASCII.GetString(tar, (int)offset, 100).TrimEnd('\0');
            var sizeText = Encoding.ASCII.GetString(tar, (int)offset + 124, 12).Trim('\0', ' ');
            var size = Convert.ToInt64(sizeText, 8);
            if (name.StartsWith("blobs/sha256/", StringComparison.Ordinal) && size > 0)
            {
                target = offset + 512 + (size / 2);
            }

            offset += 512 + ((size + 511) / 512 * 512);
        }

        var at = target ?? throw new InvalidOperationException("no blob entry found in the bundle");
        tar[at] ^= 0xFF;
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, string[] args, TimeSpan timeout, string workingDirectory)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {timeout}");
        }

        return (process.ExitCode, $"--- stdout\n{await stdout}\n--- stderr\n{await stderr}");
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "OpenLm.Mirror.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root (OpenLm.Mirror.sln) not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>The published single-file executable runs where no .NET is installed (no dotnet on PATH, no DOTNET_ROOT).</summary>
[Trait("Category", "Integration")]
public sealed class SingleFileExecutableTests(SingleFileFixture fixture) : IClassFixture<SingleFileFixture>
{
    [Fact]
    public async Task SingleFile_Verify_SignedBundleExits0()
    {
        if (!SingleFileFixture.Supported)
        {
            return;
        }

        // Given the linux-x64 executable, run with an empty environment
        // When it verifies a bundle signed with the release key
        var (exit, output) = await fixture.RunIsolatedAsync("verify", fixture.BundlePath, "--key", fixture.PublicKey);

        // Then it succeeds
        Assert.True(exit == 0, $"exit {exit}\n{output}");
    }

    [Fact]
    public async Task SingleFile_Verify_TamperedBundleExits3()
    {
        if (!SingleFileFixture.Supported)
        {
            return;
        }

        // Given a copy of the bundle with one byte of a layer flipped
        // When the executable verifies it
        var (exit, output) = await fixture.RunIsolatedAsync("verify", fixture.TamperedPath, "--key", fixture.PublicKey);

        // Then it is an integrity failure
        Assert.True(exit == 3, $"exit {exit}\n{output}");
    }

    [Fact]
    public async Task SingleFile_Values_WritesFilesWithoutDotnet()
    {
        if (!SingleFileFixture.Supported)
        {
            return;
        }

        // Given the executable and the bundle, with nothing but an empty PATH
        var output = fixture.Temp("values-airgap.yaml");
        var registries = fixture.Temp("registries.yaml");

        // When it writes Helm values and registries.yaml (offline, from the bundle head, checking the signature)
        var (exit, log) = await fixture.RunIsolatedAsync("values", fixture.BundlePath, "--to", "registry.corp:5000/openlm", "--key", fixture.PublicKey,
            "-o", output, "--k3s-registries-out", registries);

        // Then both files exist and the version and help work too
        Assert.True(exit == 0, $"exit {exit}\n{log}");
        Assert.True(File.Exists(output));
        Assert.Contains("registry.corp:5000", File.ReadAllText(registries), StringComparison.Ordinal);
        var (helpExit, help) = await fixture.RunIsolatedAsync("--help");
        Assert.True(helpExit == 0, help);
        Assert.Contains("values", help, StringComparison.Ordinal);
    }
}
