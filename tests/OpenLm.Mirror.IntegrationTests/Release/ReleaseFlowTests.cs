using System.Diagnostics;
using System.Text.Json;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestFixtures;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Release;

/// <summary>
/// Release engineering end to end on a real registry: a platform manifest plus the test umbrella chart
/// (nested subcharts, a Bitnami-style chart) is resolved, exported into a signed bundle, verified and inspected.
/// </summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ReleaseFlowTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private readonly string _namespace = "rel" + Guid.NewGuid().ToString("N")[..8];
    private TestChart _chart = null!;
    private string _manifest = null!;
    private string _key = null!;
    private string _pub = null!;
    private List<string> _expected = null!;

    public async Task InitializeAsync()
    {
        var source = $"{registry.Host}/{_namespace}";
        _chart = TestChartBuilder.WriteTgz(_temp.Path, new TestChartOptions
        {
            Source = source,
            ThirdPartyImage = $"{registry.Host}/thirdparty{_namespace}/kafka-ui:v0.7.1",
            IncludeMalformed = false,
        });
        _expected = [.. _chart.ExpectedReferences, $"{source}/olm-extra:2.0"];

        // Every image the chart and the manifest name exists at the "public" registry.
        using var http = RegistrySeeder.CreateClient();
        var seed = 0;
        foreach (var reference in _expected.Distinct())
        {
            var parsed = Reference.Parse(reference);
            await RegistrySeeder.PushImageAsync(http, registry.BaseUri, parsed.Repository, parsed.Tag!, layerSize: 32 * 1024, seed: ++seed);
        }

        _manifest = Path.Combine(_temp.Path, "platform.yaml");
        File.WriteAllText(_manifest, $"""
            apiVersion: mirror.openlm.io/v1
            kind: Platform
            name: openlm-platform
            version: "1.260810.1250"
            source: {source}
            images:
              - name: olm-extra
                tag: "2.0"
                values: [extra.deployment.image]
            charts:
              - path: {Path.GetFileName(_chart.Path)}
            """);
        var pair = KeyPairGenerator.Generate(Path.Combine(_temp.Path, "release"), passphrase: null);
        (_key, _pub) = (pair.PrivateKeyPath, pair.PublicKeyPath);
    }

    public Task DisposeAsync()
    {
        _temp.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task ResolveExportVerifyInspect_ChartAndManifestImages_AllInOneSignedBundle()
    {
        // When the release is resolved and exported
        var lockPath = _temp.Sub("lock.json");
        var resolve = await MirrorCli.RunAsync("resolve", "--plain-http", "--manifest", _manifest, "-o", lockPath);
        Assert.True(resolve.ExitCode == 0, resolve.ToString());
        var bundle = _temp.Sub("bundle.tar");
        var export = await MirrorCli.RunAsync("export", "--plain-http", "--lock", lockPath, "--key", _key, "-o", bundle, "--cache", _temp.Sub("cache"), "--json");
        Assert.True(export.ExitCode == 0, export.ToString());

        // Then the lock pins every image with its values paths as seen from the umbrella
        using var lockJson = JsonDocument.Parse(File.ReadAllText(lockPath));
        var locked = lockJson.RootElement.GetProperty("images").EnumerateArray().ToDictionary(i => i.GetProperty("reference").GetString()!, i => i);
        Assert.Equal(_expected.Distinct().Order(StringComparer.Ordinal), locked.Keys.Order(StringComparer.Ordinal));
        foreach (var (path, reference) in _chart.ExpectedFindings)
        {
            Assert.Contains(path, locked[reference].GetProperty("values").EnumerateArray().Select(v => v.GetString()));
        }

        // And the bundle verifies, lists every image and the chart, and stock tools agree with it
        var verify = await MirrorCli.RunAsync("verify", bundle, "--key", _pub, "--json");
        Assert.True(verify.ExitCode == 0, verify.ToString());
        var inspect = await MirrorCli.RunAsync("inspect", bundle, "--json");
        Assert.Equal(0, inspect.ExitCode);
        using var head = JsonDocument.Parse(inspect.Output);
        var images = head.RootElement.GetProperty("images").EnumerateArray().Select(i => i.GetProperty("reference").GetString()).ToList();
        Assert.Equal(locked.Keys.Order(StringComparer.Ordinal), images.Order(StringComparer.Ordinal));
        Assert.Equal(_chart.ChartName, head.RootElement.GetProperty("charts")[0].GetProperty("name").GetString());
        Assert.Equal("notChecked", head.RootElement.GetProperty("signature").GetProperty("status").GetString());

        var extra = $"{registry.Host}/{_namespace}/olm-extra:2.0";
        Assert.Equal(locked[extra].GetProperty("digest").GetString(), await Tools.SkopeoRawDigestAsync($"oci-archive:{bundle}:{extra}"));
        await OpenSslVerifiesAsync(bundle);
    }

    [Fact]
    public async Task Values_TestChartValuesFile_EveryImageRewrittenAndNothingElseChanged()
    {
        // Given the release exported from the test chart, and the umbrella's values.yaml as the customer's file
        var lockPath = _temp.Sub("values-lock.json");
        Assert.Equal(0, (await MirrorCli.RunAsync("resolve", "--plain-http", "--manifest", _manifest, "-o", lockPath)).ExitCode);
        var bundle = _temp.Sub("values-bundle.tar");
        var export = await MirrorCli.RunAsync("export", "--plain-http", "--lock", lockPath, "--key", _key, "-o", bundle, "--cache", _temp.Sub("values-cache"), "--progress", "plain");
        Assert.True(export.ExitCode == 0, export.ToString());

        // (its plain progress: the pull phase with a line per image named by the image, not the cache path, then the write)
        var progress = export.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Contains(progress, l => l.StartsWith("pull: ", StringComparison.Ordinal));
        Assert.Contains(progress, l => l.StartsWith("pulled olm-extra:2.0 sha256:", StringComparison.Ordinal));
        Assert.DoesNotContain(progress, l => l.StartsWith("pulled", StringComparison.Ordinal) && l.Contains(" sha256:", StringComparison.Ordinal) && l.Contains("values-cache", StringComparison.Ordinal));
        Assert.Contains(progress, l => l.StartsWith("write + fsync: ", StringComparison.Ordinal));
        var chartDir = TestChartBuilder.WriteDirectory(_temp.Sub("chart-dir"), new TestChartOptions
        {
            Source = $"{registry.Host}/{_namespace}",
            ThirdPartyImage = $"{registry.Host}/thirdparty{_namespace}/kafka-ui:v0.7.1",
            IncludeMalformed = false,
        });
        var input = Path.Combine(chartDir.Path, "values.yaml");
        var output = _temp.Sub("values-airgap.yaml");
        const string Target = "registry.airgap.example:5000/openlm";

        // When values rewrites it for the air-gapped registry
        var run = await MirrorCli.RunAsync("values", bundle, "--key", _pub, "--to", Target, "--values", input, "-o", output);
        Assert.True(run.ExitCode == 0, run.ToString());

        // Then every image path holds the air-gapped name pinned by the bundle's digest...
        using var lockJson = JsonDocument.Parse(File.ReadAllText(lockPath));
        var digests = lockJson.RootElement.GetProperty("images").EnumerateArray().ToDictionary(i => i.GetProperty("reference").GetString()!, i => i.GetProperty("digest").GetString()!);
        var before = YamlPaths(File.ReadAllText(input));
        var after = YamlPaths(File.ReadAllText(output));
        var imagePaths = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (path, reference) in _chart.ExpectedFindings)
        {
            if (path.EndsWith(".*", StringComparison.Ordinal))
            {
                var prefix = path[..^2];
                Assert.Equal("registry.airgap.example:5000", after[$"{prefix}.registry"]);
                Assert.StartsWith("openlm/", after[$"{prefix}.repository"]);
                Assert.Equal(digests[reference], after[$"{prefix}.digest"]);
                imagePaths.UnionWith(new[] { "registry", "repository", "tag", "digest" }.Select(k => $"{prefix}.{k}"));
            }
            else
            {
                Assert.StartsWith($"{Target}/", after[path]);
                Assert.EndsWith("@" + digests[reference], after[path]);
                imagePaths.Add(path);
            }
        }

        // ...and every other value of the customer's file is exactly as it was, comments included
        foreach (var (path, value) in before.Where(p => !imagePaths.Contains(p.Key) && p.Key != "global.imageRegistry"))
        {
            Assert.True(after.TryGetValue(path, out var kept) && kept == value, $"{path} changed from '{value}' to '{(after.TryGetValue(path, out var v) ? v : "<missing>")}'");
        }

        var comments = File.ReadAllLines(input).Where(l => l.TrimStart().StartsWith('#')).ToList();
        Assert.All(comments, c => Assert.Contains(c, File.ReadAllLines(output)));
    }

    /// <summary>Flattens YAML into dotted path → scalar text (list items as [i]).</summary>
    private static Dictionary<string, string> YamlPaths(string yaml)
    {
        var stream = new YamlDotNet.RepresentationModel.YamlStream();
        stream.Load(new StringReader(yaml));
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        void Walk(YamlDotNet.RepresentationModel.YamlNode node, string path)
        {
            switch (node)
            {
                case YamlDotNet.RepresentationModel.YamlMappingNode map:
                    foreach (var (key, value) in map.Children)
                    {
                        Walk(value, path.Length == 0 ? ((YamlDotNet.RepresentationModel.YamlScalarNode)key).Value! : $"{path}.{((YamlDotNet.RepresentationModel.YamlScalarNode)key).Value}");
                    }

                    break;
                case YamlDotNet.RepresentationModel.YamlSequenceNode list:
                    for (var i = 0; i < list.Children.Count; i++)
                    {
                        Walk(list.Children[i], $"{path}[{i}]");
                    }

                    break;
                case YamlDotNet.RepresentationModel.YamlScalarNode scalar:
                    result[path] = scalar.Value ?? string.Empty;
                    break;
            }
        }

        if (stream.Documents.Count > 0)
        {
            Walk(stream.Documents[0].RootNode, string.Empty);
        }

        return result;
    }

    [Fact]
    public async Task Export_KilledHalfway_ResumesFromTheCacheAndWritesTheSameBundle()
    {
        // Given a lock and an export that is killed (SIGKILL) once about half of the blobs are in the cache
        var lockPath = _temp.Sub("resume-lock.json");
        Assert.Equal(0, (await MirrorCli.RunAsync("resolve", "--plain-http", "--manifest", _manifest, "-o", lockPath)).ExitCode);
        using var lockJson = JsonDocument.Parse(File.ReadAllText(lockPath));
        var totalBlobs = lockJson.RootElement.GetProperty("blobs").GetArrayLength();
        var cache = _temp.Sub("resume-cache");
        var bundle = _temp.Sub("resumed.tar");
        var blobsAtKill = await StartAndKillHalfwayAsync(
            ["export", "--plain-http", "--lock", lockPath, "--key", _key, "-o", bundle, "--cache", cache, "--concurrency", "1", "--rate-limit", "15"],
            Path.Combine(cache, "blobs", "sha256"),
            totalBlobs / 2);
        Assert.True(blobsAtKill > 0 && blobsAtKill < totalBlobs, $"killed with {blobsAtKill} of {totalBlobs} blobs");
        Assert.False(File.Exists(bundle));

        // (The cache also holds the charts' blobs, packed while the images are pulled; only the lock's blobs count as reused.)
        var lockBlobsAtKill = lockJson.RootElement.GetProperty("blobs").EnumerateArray()
            .Count(b => File.Exists(Path.Combine(cache, "blobs", "sha256", b.GetProperty("digest").GetString()!["sha256:".Length..])));

        // When the export runs again
        var resumed = await MirrorCli.RunAsync("export", "--plain-http", "--lock", lockPath, "--key", _key, "-o", bundle, "--cache", cache, "--json");

        // Then it reuses what the first run fetched, and the bundle verifies
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        using var report = JsonDocument.Parse(resumed.Output);
        Assert.True(report.RootElement.GetProperty("blobsReused").GetInt32() >= lockBlobsAtKill - 2, resumed.Output);
        Assert.Equal(0, (await MirrorCli.RunAsync("verify", bundle, "--key", _pub)).ExitCode);

        // And exporting the same lock again yields the same signed content (openlm-bundle.json) and blobs
        var again = _temp.Sub("again.tar");
        var second = await MirrorCli.RunAsync("export", "--plain-http", "--lock", lockPath, "--key", _key, "-o", again, "--cache", cache, "--json");
        Assert.True(second.ExitCode == 0, second.ToString());
        using var secondReport = JsonDocument.Parse(second.Output);
        Assert.Equal(0, secondReport.RootElement.GetProperty("bytesDownloaded").GetInt64());
        Assert.Equal(report.RootElement.GetProperty("bundleDigest").GetString(), secondReport.RootElement.GetProperty("bundleDigest").GetString());
        Assert.Equal(new FileInfo(bundle).Length, new FileInfo(again).Length);
    }

    [Fact]
    public async Task Export_LockPinsAnotherDigest_ExitsThreeAndWritesNoBundle()
    {
        var lockPath = _temp.Sub("bad-lock.json");
        Assert.Equal(0, (await MirrorCli.RunAsync("resolve", "--plain-http", "--manifest", _manifest, "-o", lockPath)).ExitCode);
        var text = File.ReadAllText(lockPath);
        using (var doc = JsonDocument.Parse(text))
        {
            var first = doc.RootElement.GetProperty("images")[0];
            var digest = first.GetProperty("digest").GetString()!;
            var other = doc.RootElement.GetProperty("images")[1].GetProperty("digest").GetString()!;
            text = text.Replace($"\"digest\": \"{digest}\"", $"\"digest\": \"{other}\"", StringComparison.Ordinal);
        }

        File.WriteAllText(lockPath, text);
        var bundle = _temp.Sub("never.tar");

        var run = await MirrorCli.RunAsync("export", "--plain-http", "--lock", lockPath, "--key", _key, "-o", bundle, "--cache", _temp.Sub("cache3"));

        Assert.Equal(3, run.ExitCode);
        Assert.Contains("lock pins", run.Error);
        Assert.False(File.Exists(bundle));
        Assert.Empty(Directory.GetFiles(_temp.Path, "never.tar*"));
    }

    [Fact]
    public async Task Export_DiskClearlyTooSmall_RefusesToStartAndSaysHowMuchIsNeeded()
    {
        // Given a cache directory on a 1 MiB filesystem
        var lockPath = _temp.Sub("disk-lock.json");
        Assert.Equal(0, (await MirrorCli.RunAsync("resolve", "--plain-http", "--manifest", _manifest, "-o", lockPath)).ExitCode);
        var tiny = _temp.Sub("tiny");
        Directory.CreateDirectory(tiny);
        var (mountExit, _, mountError) = await Tools.RunAsync("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", tiny);
        Assert.True(mountExit == 0, $"integration tests run as root; mounting a tmpfs failed: {mountError}");
        try
        {
            // When exporting with the cache and the bundle there
            var run = await MirrorCli.RunAsync("export", "--plain-http", "--lock", lockPath, "--key", _key, "-o", Path.Combine(tiny, "b.tar"), "--cache", Path.Combine(tiny, "cache"));

            // Then it refuses before downloading anything, naming what it needs
            Assert.Equal(1, run.ExitCode);
            Assert.Contains("not enough free disk space", run.Error);
            Assert.Contains("needs", run.Error);
            Assert.False(Directory.Exists(Path.Combine(tiny, "cache", "blobs", "sha256")) && Directory.EnumerateFiles(Path.Combine(tiny, "cache", "blobs", "sha256")).Any());
        }
        finally
        {
            await Tools.RunAsync("umount", tiny);
        }
    }

    [Fact]
    public async Task Resolve_UnknownImage_ExitsOneNamingIt()
    {
        var manifest = _temp.Sub("missing.yaml");
        File.WriteAllText(manifest, $"""
            apiVersion: mirror.openlm.io/v1
            kind: Platform
            name: p
            version: "1"
            source: {registry.Host}/{_namespace}
            images:
              - name: olm-does-not-exist
                tag: "1.0"
            """);

        var run = await MirrorCli.RunAsync("resolve", "--plain-http", "--retries", "0", "--manifest", manifest, "-o", _temp.Sub("x.json"));

        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"{_namespace}/olm-does-not-exist:1.0", run.Error);
        Assert.False(File.Exists(_temp.Sub("x.json")));
    }

    [Fact]
    public async Task Resolve_MalformedReferenceInManifest_ExitsTwoNamingFileAndLine()
    {
        var manifest = _temp.Sub("bad.yaml");
        File.WriteAllText(manifest, """
            apiVersion: mirror.openlm.io/v1
            kind: Platform
            name: p
            version: "1"
            source: public.ecr.aws/r3q3q2f4
            images:
              - ref: redis:alpine3.17:25.6.17.422
            """);

        var run = await MirrorCli.RunAsync("resolve", "--manifest", manifest, "-o", _temp.Sub("y.json"));

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("bad.yaml:7", run.Error);
        Assert.Contains("redis:alpine3.17:25.6.17.422", run.Error);
    }

    private static async Task<int> StartAndKillHalfwayAsync(string[] args, string blobDirectory, int killAtBlobs)
    {
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "openlm-mirror.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        var deadline = DateTime.UtcNow.AddSeconds(90);
        var count = 0;
        while (DateTime.UtcNow < deadline && !process.HasExited)
        {
            count = Directory.Exists(blobDirectory) ? Directory.GetFiles(blobDirectory).Length : 0;
            if (count >= killAtBlobs)
            {
                break;
            }

            await Task.Delay(20);
        }

        Assert.False(process.HasExited, "the export finished before it could be killed; slow it down further");
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
        return Directory.GetFiles(blobDirectory).Length;
    }

    private async Task OpenSslVerifiesAsync(string bundle)
    {
        var dir = _temp.Sub("openssl");
        Directory.CreateDirectory(dir);
        var (tarExit, _, tarErr) = await Tools.RunAsync("tar", "-xf", bundle, "-C", dir, "openlm-bundle.json", "openlm-bundle.json.sig");
        Assert.True(tarExit == 0, tarErr);
        var signature = Convert.FromBase64String(File.ReadAllText(Path.Combine(dir, "openlm-bundle.json.sig")).Trim());
        File.WriteAllBytes(Path.Combine(dir, "sig.der"), signature);
        var (exit, output, error) = await Tools.RunAsync("openssl", "dgst", "-sha256", "-verify", _pub, "-signature", Path.Combine(dir, "sig.der"), Path.Combine(dir, "openlm-bundle.json"));
        Assert.True(exit == 0, error);
        Assert.Contains("Verified OK", System.Text.Encoding.UTF8.GetString(output));
    }
}
