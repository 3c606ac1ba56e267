using System.Formats.Tar;
using System.Text;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Signing;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Release;

/// <summary>
/// An origin Distribution registry and a second one acting as its pull-through mirror (the same images seeded under the
/// prefix <c>ecr-cache/</c>). The direct resolve + export from the origin is the baseline; then the origin is stopped,
/// so every later run can only have pulled from the mirror. A <see cref="TamperingProxy"/> in front of the mirror serves
/// altered content.
/// </summary>
public sealed class RegistryMirrorFixture : IAsyncLifetime
{
    private RegistryProcess? _origin;
    private RegistryProcess? _mirror;

    public TempDir Temp { get; } = new();

    public string OriginHost { get; private set; } = null!;

    public RegistryProcess Mirror => _mirror!;

    public TamperingProxy Tampering { get; private set; } = null!;

    public string ManifestPath => Temp.Sub("platform.yaml");

    public string PrivateKey { get; private set; } = null!;

    public string PublicKey { get; private set; } = null!;

    public string DirectLock { get; private set; } = null!;

    public string DirectLockPath => Temp.Sub("direct-lock.json");

    public string DirectHead { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _origin = await RegistryProcess.StartAsync();
        _mirror = await RegistryProcess.StartAsync();
        OriginHost = _origin.Host;
        using (var http = RegistrySeeder.CreateClient())
        {
            for (var i = 0; i < 3; i++)
            {
                await RegistrySeeder.PushImageAsync(http, _origin.BaseAddress, $"rel/app{i}", "1.0", layerSize: 16384, seed: 900 + i);
                await RegistrySeeder.PushImageAsync(http, _mirror.BaseAddress, $"ecr-cache/rel/app{i}", "1.0", layerSize: 16384, seed: 900 + i);
            }
        }

        Tampering = new TamperingProxy(_mirror.BaseAddress);
        await Tampering.StartAsync();
        var images = string.Join('\n', Enumerable.Range(0, 3).Select(i => $"  - name: app{i}\n    tag: \"1.0\""));
        File.WriteAllText(ManifestPath, $"apiVersion: mirror.openlm.io/v1\nkind: Platform\nname: mirrored\nversion: \"1.0.0\"\nsource: {OriginHost}/rel\nimages:\n{images}\n");
        var pair = KeyPairGenerator.Generate(Temp.Sub("release"), passphrase: null);
        (PrivateKey, PublicKey) = (pair.PrivateKeyPath, pair.PublicKeyPath);

        // The baseline: straight from the origin.
        await OkAsync("resolve", "--plain-http", "--manifest", ManifestPath, "-o", DirectLockPath);
        await OkAsync("export", "--plain-http", "--lock", DirectLockPath, "--key", PrivateKey, "-o", Temp.Sub("direct.tar"), "--cache", Temp.Sub("direct-cache"));
        DirectLock = File.ReadAllText(DirectLockPath);
        DirectHead = ReadHead(Temp.Sub("direct.tar"));

        // From here on the origin is gone: whatever resolves was pulled from the mirror.
        await _origin.DisposeAsync();
        _origin = null;
    }

    public async Task DisposeAsync()
    {
        if (Tampering is not null)
        {
            await Tampering.DisposeAsync();
        }

        foreach (var registry in new[] { _origin, _mirror })
        {
            if (registry is not null)
            {
                await registry.DisposeAsync();
            }
        }

        Temp.Dispose();
    }

    public static async Task<CliRun> OkAsync(params string[] args)
    {
        var run = await MirrorCli.RunAsync(args);
        Assert.True(run.ExitCode == 0, run.ToString());
        return run;
    }

    /// <summary>A lock or bundle head without its times (resolution and creation: the fields that differ between two runs).</summary>
    public static string WithoutTime(string lockJson) =>
        System.Text.RegularExpressions.Regex.Replace(lockJson, "\"\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\"", "\"(time)\"");

    public static string ReadHead(string bundle)
    {
        using var reader = new TarReader(File.OpenRead(bundle));
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.Name == "openlm-bundle.json")
            {
                using var copy = new MemoryStream();
                entry.DataStream!.CopyTo(copy);
                return Encoding.UTF8.GetString(copy.ToArray());
            }
        }

        throw new InvalidOperationException($"{bundle} has no openlm-bundle.json");
    }
}

/// <summary>
/// <c>--registry-mirror SOURCE=MIRROR/prefix</c> and <c>registryMirrors</c> in the platform manifest: resolve and export
/// pull from the mirror, and the lock and the bundle head equal a direct run's but for their times (canonical source names);
/// a mirror serving other content than the lock pins is refused with exit 3 naming the image and the mirror.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RegistryMirrorTests(RegistryMirrorFixture fixture) : IClassFixture<RegistryMirrorFixture>
{
    [Fact]
    public async Task ResolveExport_RegistryMirrorFlag_OriginDown_SameLockAndBundleHeadAsDirect()
    {
        var rule = $"{fixture.OriginHost}={fixture.Mirror.Host}/ecr-cache";
        var lockPath = fixture.Temp.Sub("flag-lock.json");
        var bundle = fixture.Temp.Sub("flag.tar");

        // When resolve and export pull through the mirror (the origin is stopped)
        await RegistryMirrorFixture.OkAsync("resolve", "--plain-http", "--registry-mirror", rule, "--manifest", fixture.ManifestPath, "-o", lockPath);
        await RegistryMirrorFixture.OkAsync("export", "--plain-http", "--registry-mirror", rule, "--lock", lockPath, "--key", fixture.PrivateKey, "-o", bundle, "--cache", fixture.Temp.Sub("flag-cache"));

        // Then the lock and the bundle head are exactly the direct ones (source names, not the mirror's), and the bundle verifies
        Assert.Equal(RegistryMirrorFixture.WithoutTime(fixture.DirectLock), RegistryMirrorFixture.WithoutTime(File.ReadAllText(lockPath)));
        Assert.DoesNotContain(fixture.Mirror.Host, File.ReadAllText(lockPath), StringComparison.Ordinal);
        Assert.Equal(RegistryMirrorFixture.WithoutTime(fixture.DirectHead), RegistryMirrorFixture.WithoutTime(RegistryMirrorFixture.ReadHead(bundle)));
        var verify = await MirrorCli.RunAsync("verify", bundle, "--key", fixture.PublicKey);
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }

    [Fact]
    public async Task ResolveExport_RegistryMirrorsInManifest_SameLockAndBundleHeadAsDirect()
    {
        var manifest = fixture.Temp.Sub("mirrored-platform.yaml");
        File.WriteAllText(manifest, File.ReadAllText(fixture.ManifestPath) + $"registryMirrors:\n  {fixture.OriginHost}: {fixture.Mirror.Host}/ecr-cache\n");
        var bundle = fixture.Temp.Sub("manifest.tar");

        // When export resolves the manifest itself, its registryMirrors entry applies to resolve and pull
        var run = await RegistryMirrorFixture.OkAsync("export", "--plain-http", "--manifest", manifest, "--key", fixture.PrivateKey, "-o", bundle, "--cache", fixture.Temp.Sub("manifest-cache"));

        Assert.Contains($"through the mirror {fixture.Mirror.Host}/ecr-cache", run.Error, StringComparison.Ordinal);
        Assert.Equal(RegistryMirrorFixture.WithoutTime(fixture.DirectHead), RegistryMirrorFixture.WithoutTime(RegistryMirrorFixture.ReadHead(bundle)));
    }

    [Theory]
    [InlineData("manifest")]
    [InlineData("blob")]
    public async Task Export_MirrorServesOtherContentThanTheLock_Exit3NamingImageAndMirror(string what)
    {
        // Given a mirror (behind the tampering proxy) that alters what it serves
        var options = fixture.Tampering.Options;
        (options.ManifestAction, options.BlobAction) = what == "manifest" ? (TamperAction.FlipByte, TamperAction.None) : (TamperAction.None, TamperAction.FlipByte);
        var bundle = fixture.Temp.Sub($"tampered-{what}.tar");
        try
        {
            // When the direct lock is exported through it
            var run = await MirrorCli.RunAsync("export", "--plain-http", "--registry-mirror", $"{fixture.OriginHost}={fixture.Tampering.RegistryHost}/ecr-cache", "--lock", fixture.DirectLockPath, "--key", fixture.PrivateKey, "-o", bundle, "--cache", fixture.Temp.Sub($"tampered-{what}-cache"));

            // Then it is refused as an integrity failure naming the image and the mirror, and no bundle is written
            Assert.True(run.ExitCode == 3, run.ToString());
            Assert.True(run.Error.Contains($"{fixture.OriginHost}/rel/app", StringComparison.Ordinal), run.ToString());
            Assert.True(run.Error.Contains($"the registry mirror {fixture.Tampering.RegistryHost}/ecr-cache served content other than the digest pinned for it", StringComparison.Ordinal), run.ToString());
            Assert.False(File.Exists(bundle));
        }
        finally
        {
            (options.ManifestAction, options.BlobAction) = (TamperAction.None, TamperAction.None);
        }
    }

    [Theory]
    [InlineData("no-equals", "is not SOURCE=MIRROR[/prefix]")]
    [InlineData("registry.corp=", "is not SOURCE=MIRROR[/prefix]")]
    [InlineData("registry.corp=mirror.corp:5000/Bad Prefix", "is not a mirror registry")]
    public async Task Resolve_MalformedRegistryMirror_Exit2NamingTheRule(string rule, string expected)
    {
        var run = await MirrorCli.RunAsync("resolve", "--plain-http", "--registry-mirror", rule, "--manifest", fixture.ManifestPath, "-o", fixture.Temp.Sub("bad-lock.json"));

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.True(run.Error.Contains("--registry-mirror", StringComparison.Ordinal) && run.Error.Contains(rule, StringComparison.Ordinal) && run.Error.Contains(expected, StringComparison.Ordinal), run.ToString());
    }
}
