using System.Net.Http.Headers;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Serve;
using OpenLm.Mirror.Signing;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.Tests.Serve;

/// <summary>
/// A signed bundle of the TestKit's small platform under <c>public.ecr.aws/r3q3q2f4</c> (every kind of image, a Helm
/// chart), plus the olm-tools manifest as <c>docker.io/library/mongo:7</c> and the olm-migrate manifest digest-only as
/// <c>docker.io/library/redis@sha256:…</c>, and olm-server also tagged 1.1.0 and 2.0.0; served once per test class on 127.0.0.1, port 0, with the import names of
/// <see cref="Target"/> as well.
/// </summary>
public sealed class ServeFixture : IAsyncLifetime
{
    public const string Source = "public.ecr.aws/r3q3q2f4";
    public const string Target = "registry.corp:5000/openlm";
    public const string Mongo = "docker.io/library/mongo:7";
    public const string RedisRepository = "docker.io/library/redis";

    public string Root { get; } = Directory.CreateTempSubdirectory("openlm-serve-tests-").FullName;

    public GeneratedPlatform Platform { get; private set; } = null!;

    public string BundlePath { get; private set; } = null!;

    public string PublicKeyPath { get; private set; } = null!;

    public string PrivateKeyPath { get; private set; } = null!;

    public OciLayoutStore Layout { get; private set; } = null!;

    public Digest RedisDigest { get; private set; }

    public BundleRegistryServer Server { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    public List<ServedRequest> Log { get; } = [];

    public GeneratedImage Image(string repository) => Platform.Images.Single(i => i.Repository == $"{Source}/{repository}");

    public async Task InitializeAsync()
    {
        var layoutDir = Path.Combine(Root, "layout");
        Platform = SamplePlatform.Small(seed: 23, @namespace: Source).WriteLayout(layoutDir);
        var layout = OciLayoutStore.Open(layoutDir, create: false);
        Layout = layout;
        await layout.TagAsync(await layout.ResolveAsync($"{Source}/olm-tools:1.0.0"), Mongo);
        var server = await layout.ResolveAsync($"{Source}/olm-server:1.0.0");
        await layout.TagAsync(server, $"{Source}/olm-server:1.1.0");
        await layout.TagAsync(server, $"{Source}/olm-server:2.0.0");
        var migrate = await layout.ResolveAsync($"{Source}/olm-migrate:1.0.0");
        RedisDigest = migrate.Digest;
        await layout.TagAsync(migrate, $"{RedisRepository}@{migrate.Digest}");

        var pair = KeyPairGenerator.Generate(Path.Combine(Root, "release"), null);
        PublicKeyPath = pair.PublicKeyPath;
        PrivateKeyPath = pair.PrivateKeyPath;
        using var key = SigningKey.Load(pair.PrivateKeyPath);
        BundlePath = Path.Combine(Root, "olm.tar");
        await BundleWriter.WriteAsync(layout, new BundleManifest
        {
            Platform = new BundleProduct { Name = "olm", Version = "1.0.0" },
            Tool = new BundleProduct { Name = "openlm-mirror", Version = "0.1.0" },
            Source = Source,
        }, key, BundlePath);

        Server = await StartAsync(Target, [], r => { lock (Log) { Log.Add(r); } });
        Http = new HttpClient { BaseAddress = Server.Address };
    }

    /// <summary>Starts another server over the same bundle (each test that stops one starts its own).</summary>
    public async Task<BundleRegistryServer> StartAsync(string? targetNames, IReadOnlyList<string> maps, Action<ServedRequest>? onRequest = null, int maxBlobs = 4, string? bundlePath = null, string? tempDirectory = null, int? maxPathComponents = null)
    {
        using var key = VerificationKey.Load(PublicKeyPath);
        return await BundleRegistryServer.StartAsync(new ServeRequest
        {
            BundlePath = bundlePath ?? BundlePath,
            TempDirectory = tempDirectory,
            Key = key,
            Address = "127.0.0.1:0",
            TargetNames = targetNames,
            Maps = maps,
            MaxPathComponents = maxPathComponents,
            MaxConcurrentBlobs = maxBlobs,
            OnRequest = onRequest,
        });
    }

    public static HttpRequestMessage Get(string path, string? range = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (range is not null)
        {
            request.Headers.TryAddWithoutValidation("Range", range);
        }

        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("*/*"));
        return request;
    }

    public async Task DisposeAsync()
    {
        Http?.Dispose();
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }

        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
