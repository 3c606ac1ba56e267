using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.PlatformSpec;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.Tests.Values;

/// <summary>
/// A signed bundle built once per test class from a TestKit <see cref="SamplePlatform.Small"/> layout (platform images
/// under <c>public.ecr.aws/r3q3q2f4</c>), plus a third-party image tagged as <c>docker.io/bitnami/kafka</c>. The
/// manifest records full-string, job and Bitnami split values paths and the <c>global.imageRegistry</c> marker.
/// </summary>
public sealed class ValuesBundleFixture : IAsyncLifetime
{
    public const string Source = "public.ecr.aws/r3q3q2f4";
    public const string Server = Source + "/olm-server:1.0.0";
    public const string Migrate = Source + "/olm-migrate:1.0.0";
    public const string Worker = Source + "/olm-worker:1.0.0";
    public const string Kafka = "docker.io/bitnami/kafka:3.7.0-debian-12-r0";
    public const string Chart = Source + "/charts/olm-platform:0.1.0";

    public string Root { get; } = Directory.CreateTempSubdirectory("openlm-values-tests-").FullName;

    public GeneratedPlatform Platform { get; private set; } = null!;

    public OciLayoutStore Layout { get; private set; } = null!;

    public string PublicKey { get; private set; } = null!;

    public string OtherPublicKey { get; private set; } = null!;

    public string BundlePath { get; private set; } = null!;

    public BundleWriteResult Written { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var layoutDir = Path.Combine(Root, "layout");
        Platform = SamplePlatform.Small(seed: 11, @namespace: Source).WriteLayout(layoutDir);
        Layout = OciLayoutStore.Open(layoutDir, create: false);

        // A third-party image: the TestKit's olm-tools manifest under a Docker Hub name.
        var tools = await Layout.ResolveAsync(Source + "/olm-tools:1.0.0");
        await Layout.TagAsync(tools, Kafka);

        var pair = KeyPairGenerator.Generate(Path.Combine(Root, "release"), null);
        PublicKey = pair.PublicKeyPath;
        OtherPublicKey = KeyPairGenerator.Generate(Path.Combine(Root, "other"), null).PublicKeyPath;
        using var key = SigningKey.Load(pair.PrivateKeyPath);
        BundlePath = Path.Combine(Root, "olm.tar");
        Written = await BundleWriter.WriteAsync(Layout, Manifest(), key, BundlePath);
    }

    /// <summary>The digest the bundle holds for a reference.</summary>
    public string DigestOf(string reference) =>
        Written.Manifest.Images.Single(i => i.Reference == reference).Digest;

    public static BundleManifest Manifest() => new()
    {
        Platform = new BundleProduct { Name = "olm", Version = "1.0.0" },
        Tool = new BundleProduct { Name = "openlm-mirror", Version = "0.1.0" },
        Source = Source,
        Images =
        [
            new BundleImage { Reference = Server, Values = ["server.deployment.image"] },
            new BundleImage { Reference = Migrate, Values = ["jobs.job.image"] },
            new BundleImage { Reference = Worker, Values = ["platform.worker.deployment.image"] },
            new BundleImage { Reference = Kafka, Values = ["kafka.image.*", PlatformImageList.GlobalImageRegistryPath] },
        ],
    };

    /// <summary>A fresh directory for one test's outputs.</summary>
    public string NewDirectory() => Directory.CreateDirectory(Path.Combine(Root, "t-" + Guid.NewGuid().ToString("N")[..10])).FullName;

    public static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, CliConsole.Capture(output, error));
        return (exit, output.ToString(), error.ToString());
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
