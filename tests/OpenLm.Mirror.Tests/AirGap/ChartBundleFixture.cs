using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestFixtures;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.Tests.AirGap;

/// <summary>
/// A signed bundle holding three top-level charts as the release ships them, each its own Helm release: the test
/// umbrella (OpenLM's conventions: every subchart takes <c>imagePullSecrets: {name: ""}</c>), and the Bitnami-style
/// standalone charts redis and kafka (list-form <c>global.imagePullSecrets</c>; both hold <c>image.*</c> and the same
/// os-shell image at <c>volumePermissions.image.*</c>). Every image the charts name is in the bundle (TestKit content
/// tagged under the chart's references), with the values paths the export records.
/// </summary>
public sealed class ChartBundleFixture : IAsyncLifetime
{
    public const string RedisVersion = "20.6.1";
    public const string KafkaVersion = "31.5.0";

    public string Root { get; } = Directory.CreateTempSubdirectory("openlm-chart-values-").FullName;

    public string PublicKey { get; private set; } = null!;

    /// <summary>The umbrella, redis and kafka bundle.</summary>
    public string BundlePath { get; private set; } = null!;

    /// <summary>A bundle with the umbrella chart alone.</summary>
    public string UmbrellaBundlePath { get; private set; } = null!;

    public TestChart Umbrella { get; private set; } = null!;

    public TestChart Redis { get; private set; } = null!;

    public TestChart Kafka { get; private set; } = null!;

    public BundleWriteResult Written { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var charts = Directory.CreateDirectory(Path.Combine(Root, "charts")).FullName;
        Umbrella = TestChartBuilder.WriteTgz(charts, new TestChartOptions { IncludeMalformed = false });
        Redis = TestChartBuilder.WriteBitnamiTgz(charts, "redis", RedisVersion, "7.4.2-debian-12-r0");
        Kafka = TestChartBuilder.WriteBitnamiTgz(charts, "kafka", KafkaVersion, "3.9.0-debian-12-r4");

        var pair = KeyPairGenerator.Generate(Path.Combine(Root, "release"), null);
        PublicKey = pair.PublicKeyPath;
        using var key = SigningKey.Load(pair.PrivateKeyPath);
        Written = await WriteBundleAsync(Path.Combine(Root, "three.tar"), key, [Umbrella, Redis, Kafka]);
        BundlePath = Path.Combine(Root, "three.tar");
        await WriteBundleAsync(Path.Combine(Root, "umbrella.tar"), key, [Umbrella]);
        UmbrellaBundlePath = Path.Combine(Root, "umbrella.tar");
    }

    /// <summary>The digest the three-chart bundle holds for an image reference.</summary>
    public string DigestOf(string reference) => Written.Manifest.Images.Single(i => i.Reference == reference).Digest;

    public string NewDirectory() => Directory.CreateDirectory(Path.Combine(Root, "t-" + Guid.NewGuid().ToString("N")[..10])).FullName;

    public static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, CliConsole.Capture(output, error));
        return (exit, output.ToString(), error.ToString());
    }

    private async Task<BundleWriteResult> WriteBundleAsync(string path, SigningKey key, IReadOnlyList<TestChart> charts)
    {
        var layoutDir = Path.Combine(Root, Path.GetFileNameWithoutExtension(path) + "-layout");
        SamplePlatform.Small(seed: 5, @namespace: TestChartBuilder.DefaultSource).WriteLayout(layoutDir);
        var layout = OciLayoutStore.Open(layoutDir, create: false);

        // The TestKit's own sample chart is not one of this release's charts.
        var index = await layout.ReadIndexAsync();
        await layout.ReplaceIndexAsync(index.Where(d => d.RefName?.Contains("/charts/", StringComparison.Ordinal) != true).ToList());
        var content = await layout.ResolveAsync(TestChartBuilder.DefaultSource + "/olm-tools:1.0.0");

        // What the export records: each image once, with every values path any chart holds it at.
        var scans = charts.Select(c => ChartScanner.Scan(c.Path)).ToList();
        var images = new SortedDictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var finding in scans.SelectMany(s => s.Findings))
        {
            var reference = finding.Reference.ToString();
            if (!images.TryGetValue(reference, out var paths))
            {
                images[reference] = paths = new SortedSet<string>(StringComparer.Ordinal);
                await layout.TagAsync(content, reference);
            }

            paths.Add(finding.ValuesPath);
            if (finding.Kind == ImageFindingKind.Split && finding.UsesGlobalImageRegistry)
            {
                paths.Add(PlatformImageList.GlobalImageRegistryPath);
            }
        }

        var listed = new List<BundleChart>();
        foreach (var chart in charts)
        {
            var packed = await HelmChartPacker.PackAsync(layout, chart.Path, TestChartBuilder.DefaultSource);
            listed.Add(new BundleChart { Reference = packed.Reference });
        }

        var manifest = new BundleManifest
        {
            Platform = new BundleProduct { Name = "openlm", Version = TestChartBuilder.UmbrellaVersion },
            Tool = new BundleProduct { Name = "openlm-mirror", Version = "0.1.0" },
            Source = TestChartBuilder.DefaultSource,
            Images = images.Select(i => new BundleImage { Reference = i.Key, Values = [.. i.Value] }).ToList(),
            Charts = listed,
        };
        return await BundleWriter.WriteAsync(layout, manifest, key, path);
    }

    public Task DisposeAsync()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }

        return Task.CompletedTask;
    }
}
