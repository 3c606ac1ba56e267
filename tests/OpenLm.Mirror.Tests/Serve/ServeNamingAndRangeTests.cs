using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Serve;
using Xunit;

namespace OpenLm.Mirror.Tests.Serve;

/// <summary>Range parsing, name collisions, the command's refusals, and a drain that lets a blob in flight finish.</summary>
public sealed class ServeNamingAndRangeTests(ServeFixture fixture) : IClassFixture<ServeFixture>
{
    [Theory]
    [InlineData(null, RangeKind.Whole, 0, 1000)]
    [InlineData("bytes=0-0", RangeKind.Partial, 0, 1)]
    [InlineData("bytes=0-999", RangeKind.Partial, 0, 1000)]
    [InlineData("bytes=500-", RangeKind.Partial, 500, 500)]
    [InlineData("bytes=990-5000", RangeKind.Partial, 990, 10)]
    [InlineData("bytes=-10", RangeKind.Partial, 990, 10)]
    [InlineData("bytes=-5000", RangeKind.Partial, 0, 1000)]
    [InlineData("bytes=1000-", RangeKind.Unsatisfiable, 0, 0)]
    [InlineData("bytes=-0", RangeKind.Unsatisfiable, 0, 0)]
    [InlineData("bytes=5-2", RangeKind.Whole, 0, 1000)]
    [InlineData("bytes=0-1,5-6", RangeKind.Whole, 0, 1000)]
    [InlineData("items=0-1", RangeKind.Whole, 0, 1000)]
    [InlineData("bytes=a-b", RangeKind.Whole, 0, 1000)]
    public void ByteRange_Parse_OneRangeSuffixOpenEndedOrUnsatisfiable(string? header, RangeKind kind, long offset, long length)
    {
        var range = ByteRange.Parse(header, 1000);

        Assert.Equal(new ByteRange(kind, offset, length), range);
    }

    [Fact]
    public void ByteRange_ContentRange_LastPositionInclusiveOrStarForUnsatisfiable()
    {
        Assert.Equal("bytes 990-999/1000", ByteRange.Parse("bytes=-10", 1000).ContentRange(1000));
        Assert.Equal("bytes */1000", ByteRange.Parse("bytes=2000-", 1000).ContentRange(1000));
    }

    [Fact]
    public async Task Start_TwoImagesRenamedOntoOneTag_RefusedBeforeListeningNamingBoth()
    {
        var maps = new[] { $"{ServeFixture.Source}/olm-worker=same", $"{ServeFixture.Source}/olm-tools=same" };

        var error = await Assert.ThrowsAsync<InputException>(() => fixture.StartAsync(ServeFixture.Target, maps));

        Assert.Contains("openlm/same:1.0.0", error.Message);
        Assert.Contains($"{ServeFixture.Source}/olm-worker:1.0.0", error.Message);
        Assert.Contains($"{ServeFixture.Source}/olm-tools:1.0.0", error.Message);
    }

    [Fact]
    public async Task Start_SameImageUnderTwoSourceNamesRenamedTogether_Accepted()
    {
        // olm-tools and library/mongo are one manifest: one name for both is no collision.
        await using var server = await fixture.StartAsync(ServeFixture.Target, [$"{ServeFixture.Source}/olm-tools=library/mongo", "docker.io/library/mongo=library/mongo"]);

        Assert.Equal(2, server.Catalog.Repositories["openlm/library/mongo"].Tags.Count);
    }

    [Fact]
    public async Task Start_WithoutTargetNames_OnlySourceRepositories()
    {
        await using var server = await fixture.StartAsync(null, []);

        Assert.DoesNotContain(server.Catalog.Repositories.Keys, r => r.StartsWith("openlm/", StringComparison.Ordinal));
        Assert.Contains("r3q3q2f4/olm-server", server.Catalog.Repositories.Keys);
    }

    [Fact]
    public async Task Stop_BlobInFlight_FinishesWholeThenNewConnectionsAreRefused()
    {
        // Given a server streaming the largest layer to a client that reads slowly
        var server = await fixture.StartAsync(null, [], maxBlobs: 1);
        var layer = fixture.Platform.Images.SelectMany(i => i.Manifests).SelectMany(m => m.Layers).MaxBy(l => l.Size)!;
        var repository = fixture.Platform.Images.First(i => i.BlobDigests.Contains(layer.Digest)).Repository["public.ecr.aws/".Length..];
        using var http = new HttpClient { BaseAddress = server.Address };
        using var response = await http.GetAsync($"/v2/{repository}/blobs/{layer.Digest}", HttpCompletionOption.ResponseHeadersRead);
        var body = await response.Content.ReadAsStreamAsync();
        var head = new byte[1024];
        await body.ReadExactlyAsync(head);

        // When the server is stopped mid-stream
        var stopping = server.StopAsync(TimeSpan.FromSeconds(30));
        await Task.Delay(200);
        using var rest = new MemoryStream();
        rest.Write(head);
        await body.CopyToAsync(rest);
        await stopping;

        // Then the client got every byte, and the server answers no more
        Assert.Equal(layer.Digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(rest.ToArray())));
        using var fresh = new HttpClient { BaseAddress = server.Address };
        await Assert.ThrowsAsync<HttpRequestException>(() => fresh.GetAsync("/v2/"));
        await server.DisposeAsync();
    }

    [Fact]
    public async Task Start_SingleStreamZstdBundle_ServedFromATemporaryCopyRemovedOnDispose()
    {
        // An old (0.1) zstd bundle: one stream, no seek table, so it is decompressed once to the temporary directory.
        var zstd = await OpenLm.Mirror.Tests.Support.LegacyZstd.CompressAsync(fixture.BundlePath, Path.Combine(fixture.Root, $"olm-{Guid.NewGuid():N}.tar.zst"));
        var temp = Directory.CreateDirectory(Path.Combine(fixture.Root, "tmp-" + Guid.NewGuid().ToString("N")[..6])).FullName;

        var layer = fixture.Image("olm-agent").Manifests[0].Layers[^1];
        var server = await fixture.StartAsync(null, [], bundlePath: zstd, tempDirectory: temp);
        using (var http = new HttpClient { BaseAddress = server.Address })
        {
            var bytes = await http.GetByteArrayAsync($"/v2/r3q3q2f4/olm-agent/blobs/{layer.Digest}");
            Assert.Equal(layer.Digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)));
            Assert.Single(Directory.GetFiles(temp));
        }

        await server.DisposeAsync();
        Assert.Empty(Directory.GetFiles(temp));
    }

    [Fact]
    public async Task Start_SeekableZstdBundle_ServedFramesInPlaceWithoutATemporaryCopy()
    {
        // A zstd bundle as export writes it (seekable): blobs are decompressed from their frames, nothing goes to disk.
        var zstd = Path.Combine(fixture.Root, $"olm-{Guid.NewGuid():N}.tar.zst");
        var temp = Directory.CreateDirectory(Path.Combine(fixture.Root, "tmp-" + Guid.NewGuid().ToString("N")[..6])).FullName;
        using (var key = OpenLm.Mirror.Signing.SigningKey.Load(fixture.PrivateKeyPath))
        {
            await OpenLm.Mirror.Bundle.BundleWriter.WriteAsync(
                fixture.Layout, new OpenLm.Mirror.Bundle.BundleManifest { Source = ServeFixture.Source }, key, zstd,
                new OpenLm.Mirror.Bundle.BundleWriteOptions { Compression = OpenLm.Mirror.Bundle.BundleCompression.Zstd });
        }

        var layer = fixture.Image("olm-agent").Manifests[0].Layers[^1];
        var server = await fixture.StartAsync(null, [], bundlePath: zstd, tempDirectory: temp);
        using (var http = new HttpClient { BaseAddress = server.Address })
        {
            var bytes = await http.GetByteArrayAsync($"/v2/r3q3q2f4/olm-agent/blobs/{layer.Digest}");
            Assert.Equal(layer.Digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)));
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/r3q3q2f4/olm-agent/blobs/{layer.Digest}");
            request.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(1, 10);
            using var partial = await http.SendAsync(request);
            Assert.Equal(System.Net.HttpStatusCode.PartialContent, partial.StatusCode);
            Assert.Equal(bytes.AsSpan(1, 10).ToArray(), await partial.Content.ReadAsByteArrayAsync());
            Assert.Empty(Directory.GetFiles(temp));
        }

        await server.DisposeAsync();
    }

    [Fact]
    public async Task Cli_CorruptLayer_Exit3NamingTheBlobBeforeListening()
    {
        // A byte flipped inside a layer: the opening pass seeks past blob data, the verifying pass before listening does not.
        var layer = fixture.Image("olm-worker").Manifests[0].Layers[^1];
        var corrupt = Path.Combine(fixture.Root, $"corrupt-{Guid.NewGuid():N}.tar");
        var bytes = await File.ReadAllBytesAsync(fixture.BundlePath);
        var header = System.Text.Encoding.ASCII.GetBytes("blobs/sha256/" + layer.Digest["sha256:".Length..]);
        var at = bytes.AsSpan().IndexOf(header);
        Assert.True(at >= 0);
        bytes[at + 512 + 100] ^= 0xFF;
        await File.WriteAllBytesAsync(corrupt, bytes);

        var run = await RunAsync("serve", corrupt, "--key", fixture.PublicKeyPath, "--addr", "127.0.0.1:0", "--json");

        Assert.Equal(3, run.Exit);
        Assert.Contains(layer.Digest, run.Err);
        Assert.Equal("integrity", System.Text.Json.JsonDocument.Parse(run.Out).RootElement.GetProperty("error").GetProperty("kind").GetString());
    }

    [Fact]
    public async Task Cli_AddressInUse_Exit1NamingTheAddress()
    {
        await using var first = await fixture.StartAsync(null, []);

        var run = await RunAsync("serve", fixture.BundlePath, "--key", fixture.PublicKeyPath, "--addr", first.Authority);

        Assert.Equal(1, run.Exit);
        Assert.Contains($"cannot listen on {first.Authority}", run.Err);
    }

    [Fact]
    public async Task Cli_NoKey_Exit3BeforeListening()
    {
        var run = await RunAsync("serve", fixture.BundlePath, "--addr", "127.0.0.1:0");

        Assert.Equal(3, run.Exit);
        Assert.Contains("--key", run.Err);
    }

    [Fact]
    public async Task Cli_Collision_Exit2NamingBoth()
    {
        var run = await RunAsync(
            "serve", fixture.BundlePath, "--key", fixture.PublicKeyPath, "--addr", "127.0.0.1:0", "--to-names", ServeFixture.Target,
            "--map", $"{ServeFixture.Source}/olm-worker=same", "--map", $"{ServeFixture.Source}/olm-tools=same");

        Assert.Equal(2, run.Exit);
        Assert.Contains("olm-worker", run.Err);
        Assert.Contains("olm-tools", run.Err);
    }

    [Fact]
    public async Task Cli_Json_OneReadyObjectThenServesUntilCancelled()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        using var stop = new CancellationTokenSource();
        var root = CliApp.BuildRootCommand(CliConsole.Capture(output, error));
        var running = root.Parse(["serve", fixture.BundlePath, "--key", fixture.PublicKeyPath, "--addr", "127.0.0.1:0", "--to-names", ServeFixture.Target, "--json"])
            .InvokeAsync(new System.CommandLine.InvocationConfiguration { Output = output, Error = error }, stop.Token);

        string? line = null;
        for (var i = 0; i < 300 && line is null; i++)
        {
            await Task.Delay(50);
            line = output.ToString().Split('\n').FirstOrDefault(l => l.StartsWith('{'));
        }

        Assert.NotNull(line);
        using var ready = JsonDocument.Parse(line);
        var address = ready.RootElement.GetProperty("address").GetString()!;
        Assert.StartsWith("http://127.0.0.1:", address);
        Assert.StartsWith("sha256:", ready.RootElement.GetProperty("bundleDigest").GetString());
        Assert.Contains("openlm/olm-server", ready.RootElement.GetProperty("repositories").EnumerateArray().Select(r => r.GetString()));
        using var http = new HttpClient();
        using var answer = await http.GetAsync(address + "/v2/openlm/olm-server/manifests/1.0.0");
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);

        await stop.CancelAsync();
        Assert.Equal(0, await running);
        Assert.Contains("GET /v2/openlm/olm-server/manifests/1.0.0 200", error.ToString());
    }

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, CliConsole.Capture(output, error));
        return (exit, output.ToString(), error.ToString());
    }
}
