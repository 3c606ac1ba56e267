using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Import;

/// <summary>
/// import into a real Distribution registry that is 20 ms away (the TestKit delay proxy), every request counted on the
/// way: identical digests, no blob costing more than POST + PUT (the single-request trial included), nothing asked
/// twice, connections reused, and a re-import that asks only for its tags.
/// </summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class LatencyImportTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private CountingProxy _counting = null!;
    private DelayProxy _delay = null!;
    private TestBundle _bundle = null!;

    public async Task InitializeAsync()
    {
        _counting = new CountingProxy(registry.BaseUri);
        await _counting.StartAsync();
        _delay = DelayProxy.Start(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), DelayProxy.ParseEndpoint(_counting.Host), TimeSpan.FromMilliseconds(20));
        _bundle = await TestBundle.CreateAsync(_temp.Sub("b"), seed: 57);
    }

    public async Task DisposeAsync()
    {
        await _delay.DisposeAsync();
        await _counting.DisposeAsync();
        _temp.Dispose();
    }

    [Fact]
    public async Task Import_TwentyMillisecondsAway_IdenticalDigestsNoRequestRepeatedAndReimportAsksOnlyTags()
    {
        // Given a registry behind a 20 ms round trip
        var prefix = $"lat{Guid.NewGuid().ToString("N")[..8]}";
        var to = $"127.0.0.1:{_delay.Listening.Port}/{prefix}";

        // When the bundle is imported
        var run = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, "--plain-http", "--json");

        // Then every image is there with the bundle's digest
        Assert.True(run.ExitCode == 0, run.ToString());
        foreach (var image in _bundle.Platform.Images)
        {
            Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{registry.Host}/{prefix}/{image.Repository.Split('/', 2)[1]}:{image.Tag}"));
        }

        // And Distribution 2.8 answered the one single-request trial with a session before its body was sent (it takes
        // POST ?digest= only from v3 on), so that blob went into that session and every blob cost POST + PUT, no more
        using var report = JsonDocument.Parse(run.Output);
        var uploaded = report.RootElement.GetProperty("blobsUploaded").GetInt32();
        var seen = _counting.Seen.Where(s => s.Path.Contains($"/{prefix}/", StringComparison.Ordinal)).ToList();
        var trials = seen.Count(s => s.Method == "POST" && s.Query.Contains("digest=", StringComparison.Ordinal));
        // (the probe's push sessions and its mount question for a blob nothing has are each cancelled with a DELETE)
        var probeMounts = seen.Count(s => s.Method == "POST" && (s.Query.Contains("mount=sha256%3A0000000000000000", StringComparison.OrdinalIgnoreCase) || s.Query.Contains("mount=sha256:0000000000000000", StringComparison.Ordinal)));
        var sessions = seen.Count(s => s.Method == "POST" && s.Query.Length == 0) - (seen.Count(s => s.Method == "DELETE") - probeMounts);
        var commits = seen.Count(s => s.Method == "PUT" && s.Path.Contains("/blobs/uploads/", StringComparison.Ordinal));
        Assert.Equal(1, trials);
        Assert.Equal(uploaded, commits);
        Assert.Equal(uploaded - 1, sessions);

        // And no blob or manifest was asked about twice, and connections were kept alive
        Assert.DoesNotContain(seen, s => s.Method == "PATCH");
        var heads = seen.Where(s => s.Method == "HEAD" && s.Path.Contains("sha256:", StringComparison.Ordinal)).ToList();
        var repeated = heads.GroupBy(h => h.Path).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(repeated.Count == 0, $"asked twice: {string.Join(", ", repeated)}\n{run.Error}\n" + string.Join("\n", seen.Select(s => $"{s.Method} {s.Path}{s.Query}")));
        Assert.True(_delay.Connections * 3 < _counting.Seen.Count, $"{_delay.Connections} connections for {_counting.Seen.Count} requests");

        // When it is imported again
        var before = _counting.Seen.Count;
        var again = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, "--plain-http", "--json");

        // Then nothing moved, and the registry was asked only for the tags (plus its /v2/ probe)
        Assert.True(again.ExitCode == 0, again.ToString());
        using var second = JsonDocument.Parse(again.Output);
        Assert.Equal(0, second.RootElement.GetProperty("blobsUploaded").GetInt32());
        Assert.All(second.RootElement.GetProperty("images").EnumerateArray(), i => Assert.Equal("unchanged", i.GetProperty("status").GetString()));
        var reimport = _counting.Seen.Skip(before).ToList();
        Assert.DoesNotContain(reimport, s => s.Method is "PUT" or "POST" or "PATCH" or "DELETE");
        Assert.DoesNotContain(reimport, s => s.Path.Contains("/blobs/", StringComparison.Ordinal) || s.Path.Contains("/manifests/sha256:", StringComparison.Ordinal));
        Assert.Equal(_bundle.Platform.Images.Count, reimport.Count(s => s.Path.Contains("/manifests/", StringComparison.Ordinal)));
    }

    /// <summary>Forwards everything and records what it saw, in order.</summary>
    private sealed class CountingProxy(Uri upstream) : InterceptingProxy(upstream)
    {
        private readonly ConcurrentQueue<(string Method, string Path, string Query)> _seen = new();

        public IReadOnlyList<(string Method, string Path, string Query)> Seen => [.. _seen];

        protected override Task<bool> InterceptAsync(HttpContext context)
        {
            _seen.Enqueue((context.Request.Method, context.Request.Path.Value ?? string.Empty, context.Request.QueryString.Value ?? string.Empty));
            return Task.FromResult(false);
        }
    }
}
