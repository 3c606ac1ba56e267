using System.Text.Json;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Upgrade;

/// <summary>
/// The upgrade runbook end to end on a real registry: release N (16 images) exported and imported with a receipt; release
/// N+1 changes 4 images (two of them 40 MiB, so the delta needs two 64 MiB parts) and adds one; its delta is exported from
/// the receipt in parts, a corrupted part is named by verify and replaced, then the runbook script verifies, imports
/// (base check), checks and writes values pinning the new digests. The same delta into an empty registry stops at the
/// base check with exit 4 and nothing pushed.
/// </summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class UpgradeChainTests(SharedRegistryFixture registry) : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly string _ns = "upg" + Guid.NewGuid().ToString("N")[..8];

    public void Dispose() => _temp.Dispose();

    private static string Name(int i) => $"img{i:00}";

    private string Manifest(string version, Func<int, string> tag, int count)
    {
        var path = _temp.Sub($"platform-{version}.yaml");
        var images = string.Join("\n", Enumerable.Range(1, count).Select(i => $"  - name: {Name(i)}\n    tag: \"{tag(i)}\"\n    values: [{Name(i)}.image]"));
        File.WriteAllText(path, $"apiVersion: mirror.openlm.io/v1\nkind: Platform\nname: openlm-platform\nversion: \"{version}\"\nsource: {registry.Host}/{_ns}\nimages:\n{images}\n");
        return path;
    }

    private static async Task<CliRun> OkAsync(params string[] args)
    {
        var run = await MirrorCli.RunAsync(args);
        Assert.True(run.ExitCode == 0, $"{string.Join(' ', args)}\n{run}");
        return run;
    }

    [Fact]
    public async Task UpgradeRunbook_DeltaFromReceiptInParts_CorruptPartNamedThenImportedCheckedAndPinned_EmptyTargetStopsAtBaseCheck()
    {
        // Given release N (16 small images) and N+1 (4 changed, two of them 40 MiB, and one added) in the source registry
        using (var http = RegistrySeeder.CreateClient())
        {
            for (var i = 1; i <= 16; i++)
            {
                await RegistrySeeder.PushImageAsync(http, registry.BaseUri, $"{_ns}/{Name(i)}", "1.0", layerSize: 32 * 1024, seed: i);
            }

            for (var i = 1; i <= 4; i++)
            {
                await RegistrySeeder.PushImageAsync(http, registry.BaseUri, $"{_ns}/{Name(i)}", "1.1", layerSize: i <= 2 ? 40 << 20 : 32 * 1024, seed: 100 + i);
            }

            await RegistrySeeder.PushImageAsync(http, registry.BaseUri, $"{_ns}/{Name(17)}", "1.1", layerSize: 32 * 1024, seed: 117);
        }

        var keys = KeyPairGenerator.Generate(_temp.Sub("release"), passphrase: null);
        var cache = _temp.Sub("cache");
        var target = $"{registry.Host}/air{_ns}";

        // When N is resolved, exported and imported with a receipt
        var lockN = _temp.Sub("lock-n.json");
        await OkAsync("resolve", "--plain-http", "--manifest", Manifest("1.0", _ => "1.0", 16), "-o", lockN);
        var bundleN = _temp.Sub("n.tar");
        await OkAsync("export", "--plain-http", "--lock", lockN, "--key", keys.PrivateKeyPath, "-o", bundleN, "--cache", cache);
        var receipt = _temp.Sub("receipt-n.json");
        await OkAsync("import", bundleN, "--key", keys.PublicKeyPath, "--to", target, "--plain-http", "--receipt", receipt);

        // And an inventory of the target (as if the receipt were lost) finds exactly what the receipt records
        var inventory = _temp.Sub("inventory-n.json");
        await OkAsync("inventory", "--to", target, "--lock", lockN, "-o", inventory, "--plain-http");
        Assert.Equal(ContentsOf(receipt), ContentsOf(inventory));
        var partial = _temp.Sub("inventory-empty.json");
        await OkAsync("inventory", "--to", $"{registry.Host}/nothing{_ns}", "--lock", lockN, "-o", partial, "--plain-http");
        Assert.Empty(ContentsOf(partial));

        // And N+1 is resolved and diffed against N
        var lockN1 = _temp.Sub("lock-n1.json");
        await OkAsync("resolve", "--plain-http", "--manifest", Manifest("1.1", i => i is <= 4 or 17 ? "1.1" : "1.0", 17), "-o", lockN1);
        var diff = await OkAsync("diff", lockN, lockN1, "--json");
        using (var d = JsonDocument.Parse(diff.Output))
        {
            Assert.Equal(4, d.RootElement.GetProperty("changed").GetInt32());
            Assert.Equal(1, d.RootElement.GetProperty("added").GetInt32());
            Assert.Equal(12, d.RootElement.GetProperty("unchanged").GetInt32());
            Assert.True(d.RootElement.GetProperty("delta").GetProperty("bytes").GetInt64() > 80L << 20);
        }

        // And its delta is exported from the receipt in 64 MiB parts
        var delta = _temp.Sub("n1-delta.tar");
        var export = await OkAsync("export", "--plain-http", "--lock", lockN1, "--key", keys.PrivateKeyPath, "-o", delta, "--cache", cache, "--base", receipt, "--split-size", "64M", "--json");
        using (var e = JsonDocument.Parse(export.Output))
        {
            Assert.Equal(2, e.RootElement.GetProperty("parts").GetArrayLength());
            Assert.True(e.RootElement.GetProperty("delta").GetProperty("omittedBlobs").GetInt32() >= 24);
        }

        var part2 = delta + ".002";
        Assert.True(new FileInfo(delta + ".001").Length <= 64 << 20);
        var fileBytes = new FileInfo(delta + ".001").Length + new FileInfo(part2).Length;
        Assert.True(fileBytes < (80L << 20) + (1 << 20), $"delta is {fileBytes} bytes");

        // Then a corrupted part is named by number, and verify passes once it is replaced
        var pristine = await File.ReadAllBytesAsync(part2);
        var damaged = pristine.ToArray();
        damaged[damaged.Length / 3] ^= 0x01;
        await File.WriteAllBytesAsync(part2, damaged);
        var bad = await MirrorCli.RunAsync("verify", delta + ".001", "--key", keys.PublicKeyPath);
        Assert.True(bad.ExitCode == 3, bad.ToString());
        Assert.Contains($"part 2 of 2: sha256 mismatch — re-copy {part2}", bad.Error + bad.Output, StringComparison.Ordinal);
        await File.WriteAllBytesAsync(part2, pristine);

        // And the same delta into an empty registry stops at the base check: exit 4, nothing pushed
        var empty = $"{registry.Host}/empty{_ns}";
        var refused = await MirrorCli.RunAsync("import", delta, "--key", keys.PublicKeyPath, "--to", empty, "--plain-http");
        Assert.True(refused.ExitCode == 4, refused.ToString());
        Assert.Contains("the target is incomplete", refused.Error, StringComparison.Ordinal);
        Assert.Contains("openlm-platform 1.0", refused.Error, StringComparison.Ordinal);
        using (var http = RegistrySeeder.CreateClient())
        {
            var catalog = await http.GetStringAsync(new Uri(registry.BaseUri, "/v2/_catalog?n=1000"));
            Assert.DoesNotContain($"empty{_ns}", catalog, StringComparison.Ordinal);
        }

        // And the runbook script verifies, imports with the base check, checks and writes values pinning the new digests
        var outDir = _temp.Sub("upgrade");
        var dll = Path.Combine(AppContext.BaseDirectory, "openlm-mirror.dll");
        var script = Path.Combine(RepositoryRoot(), "scripts", "upgrade-runbook.sh");
        var run = await RunScriptAsync(script, new Dictionary<string, string> { ["OPENLM_MIRROR"] = $"dotnet {dll}", ["MIRROR_FLAGS"] = "--plain-http" }, delta + ".001", keys.PublicKeyPath, target, outDir);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("base check", run.Error, StringComparison.Ordinal);
        using var lockJson = JsonDocument.Parse(File.ReadAllText(lockN1));
        var values = File.ReadAllText(Path.Combine(outDir, "values-airgap.yaml"));
        foreach (var image in lockJson.RootElement.GetProperty("images").EnumerateArray())
        {
            Assert.Contains(image.GetProperty("digest").GetString()!, values, StringComparison.Ordinal);
        }

        using var check = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "check.json")));
        Assert.True(check.RootElement.GetProperty("complete").GetBoolean());
        using var newReceipt = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "receipt.json")));
        Assert.Equal("1.1", newReceipt.RootElement.GetProperty("platform").GetProperty("version").GetString());
        Assert.Equal(17, newReceipt.RootElement.GetProperty("images").GetArrayLength());
    }

    private static List<string> ContentsOf(string receipt)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(receipt));
        return json.RootElement.GetProperty("contents").EnumerateArray().Select(c => $"{c.GetProperty("digest").GetString()} {c.GetProperty("size").GetInt64()}").Order(StringComparer.Ordinal).ToList();
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "scripts", "upgrade-runbook.sh")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("scripts/upgrade-runbook.sh not found above " + AppContext.BaseDirectory);
    }

    private static async Task<CliRun> RunScriptAsync(string script, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(script);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        return new CliRun(process.ExitCode, await stdout, await stderr);
    }
}
