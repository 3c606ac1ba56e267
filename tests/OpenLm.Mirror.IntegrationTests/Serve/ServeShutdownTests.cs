using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Serve;

/// <summary>The serve process on SIGTERM: a blob in flight (larger than the socket buffers) finishes, then exit 0.</summary>
[Trait("Category", "Integration")]
public sealed class ServeShutdownTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Sigterm_WhileASlowClientReadsA48MiBBlob_BlobCompletesAndExitIsZero()
    {
        // Given a bundle with one large layer, served by the CLI as its own process
        var platform = new SamplePlatform(5, [], [new SampleImageSpec("public.ecr.aws/r3q3q2f4/big", "1.0.0", SampleImageKind.OciImage, [48L << 20])])
            .WriteLayout(_temp.Sub("layout"));
        var keys = KeyPairGenerator.Generate(_temp.Sub("release"), passphrase: null);
        using (var key = SigningKey.Load(keys.PrivateKeyPath))
        {
            await BundleWriter.WriteAsync(OciLayoutStore.Open(platform.Directory, create: false), new BundleManifest { Source = "public.ecr.aws/r3q3q2f4" }, key, _temp.Sub("big.tar"));
        }

        var layer = platform.Images[0].Manifests[0].Layers.MaxBy(l => l.Size)!;
        using var serve = StartServe("serve", _temp.Sub("big.tar"), "--key", keys.PublicKeyPath, "--addr", "127.0.0.1:0", "--json");
        var stderr = serve.StandardError.ReadToEndAsync();
        using var ready = JsonDocument.Parse(await serve.StandardOutput.ReadLineAsync() ?? throw new InvalidOperationException("serve printed nothing: " + await stderr));
        var address = ready.RootElement.GetProperty("address").GetString()!;

        using var http = new HttpClient();
        using var response = await http.GetAsync($"{address}/v2/r3q3q2f4/big/blobs/{layer.Digest}", HttpCompletionOption.ResponseHeadersRead);
        var body = await response.Content.ReadAsStreamAsync();
        using var received = new MemoryStream();
        var first = new byte[64 * 1024];
        await body.ReadExactlyAsync(first);
        received.Write(first);

        // When SIGTERM arrives mid-blob and the client keeps reading slowly, past System.CommandLine's 2 s grace
        Assert.Equal(0, (await Tools.RunAsync("kill", "-TERM", serve.Id.ToString(System.Globalization.CultureInfo.InvariantCulture))).ExitCode);
        await Task.Delay(TimeSpan.FromSeconds(3));
        try
        {
            await body.CopyToAsync(received);
        }
        catch (IOException ex)
        {
            await serve.WaitForExitAsync();
            throw new InvalidOperationException($"the blob was cut after {received.Length} bytes ({ex.Message}); serve exited {serve.ExitCode}:\n{await stderr}", ex);
        }

        // Then every byte arrived, the server stopped accepting, and the process exited 0 after the drain
        Assert.Equal(layer.Digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(received.ToArray())));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await serve.WaitForExitAsync(timeout.Token);
        var log = await stderr;
        Assert.True(serve.ExitCode == 0, log);
        Assert.Contains("stopping:", log);
        Assert.Contains($"GET /v2/r3q3q2f4/big/blobs/{layer.Digest} 200 {layer.Size}", log);
    }

    private static Process StartServe(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "openlm-mirror.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return Process.Start(start)!;
    }
}
