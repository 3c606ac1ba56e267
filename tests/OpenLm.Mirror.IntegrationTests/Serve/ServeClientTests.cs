using System.Text;
using System.Text.Json;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.Serve;
using OpenLm.Mirror.Signing;
using Xunit;
using Xunit.Abstractions;

namespace OpenLm.Mirror.IntegrationTests.Serve;

/// <summary>A bundle served by <c>serve</c> (in-process, 127.0.0.1, free port) with the import names of <see cref="Target"/>.</summary>
public sealed class ServedBundleFixture : IAsyncLifetime
{
    public const string Target = "registry.corp:5000/openlm";

    private readonly TempDir _temp = new();

    public TestBundle Bundle { get; private set; } = null!;

    public BundleRegistryServer Server { get; private set; } = null!;

    /// <summary>host:port of the served registry.</summary>
    public string Host => Server.Authority;

    public string Sub(string name) => _temp.Sub(name);

    /// <summary>Every path the server answered (the access log), to prove a client came through it.</summary>
    public IReadOnlyList<string> Paths
    {
        get
        {
            lock (_paths)
            {
                return _paths.ToList();
            }
        }
    }

    private readonly List<string> _paths = [];

    /// <summary>The served source path of an image (its repository without the registry host) with its tag.</summary>
    public static string SourcePath(TestKit.GeneratedImage image) => $"{image.Repository}:{image.Tag}";

    /// <summary>The path the import (and serve --to-names) gives it: the target prefix, without the platform namespace.</summary>
    public static string TargetPath(TestKit.GeneratedImage image) => $"openlm/{image.Repository.Split('/', 2)[1]}:{image.Tag}";

    public async Task InitializeAsync()
    {
        Bundle = await TestBundle.CreateAsync(_temp.Sub("b"), seed: 71);
        using var key = VerificationKey.Load(Bundle.PublicKey);
        Server = await BundleRegistryServer.StartAsync(new ServeRequest { BundlePath = Bundle.Path, Key = key, Address = "127.0.0.1:0", TargetNames = Target, OnRequest = r => { lock (_paths) { _paths.Add($"{r.Method} {r.Path} {r.Status}"); } } });
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        _temp.Dispose();
    }
}

/// <summary>
/// Pull clients nobody here wrote against <c>serve</c>: skopeo into a real Distribution registry, containerd's
/// <c>ctr</c> through a <c>hosts.toml</c> mirror, podman, and our own copy. Digests must come out identical.
/// </summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ServeClientTests(SharedRegistryFixture registry, ServedBundleFixture served, ITestOutputHelper output) : IClassFixture<ServedBundleFixture>
{
    [Fact]
    public async Task Skopeo_CopyAllOfEveryImageIntoDistribution_DigestsIdentical()
    {
        var prefix = $"{registry.Host}/serve{Guid.NewGuid().ToString("N")[..8]}";
        foreach (var image in served.Bundle.Platform.Images)
        {
            var source = $"docker://{served.Host}/{ServedBundleFixture.SourcePath(image)}";
            var target = $"docker://{prefix}/{ServedBundleFixture.SourcePath(image)}";

            var (exit, _, error) = await Tools.RunAsync("skopeo", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false", source, target);

            Assert.True(exit == 0, $"skopeo copy {source} {target}: {error}");
            Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync(target));
        }
    }

    [Fact]
    public async Task Skopeo_InspectUnderTheImportName_SameDigestAsTheSourceName()
    {
        var image = served.Bundle.Platform.Images.First(i => i.IsIndex);

        Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{served.Host}/{ServedBundleFixture.TargetPath(image)}"));
        Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{served.Host}/{ServedBundleFixture.SourcePath(image)}"));
    }

    [Fact]
    public async Task Ctr_PullThroughHostsTomlMirror_ImageUnderItsAirGappedNameWithTheBundleDigest()
    {
        if (PrivateContainerd.Unavailable() is { } why)
        {
            Assert.Fail($"containerd cannot run here: {why}");
        }

        await using var containerd = await PrivateContainerd.StartAsync();
        var hosts = served.Sub("certs.d-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(Path.Combine(hosts, "registry.corp:5000"));
        await File.WriteAllTextAsync(Path.Combine(hosts, "registry.corp:5000", "hosts.toml"), $"""
            server = "https://registry.corp:5000"

            [host."http://{served.Host}"]
              capabilities = ["pull", "resolve"]
            """);
        foreach (var image in served.Bundle.Platform.Images.Where(i => i.Kind is TestKit.SampleImageKind.OciIndex or TestKit.SampleImageKind.DockerImage or TestKit.SampleImageKind.OciImage).Take(3))
        {
            var name = $"registry.corp:5000/{ServedBundleFixture.TargetPath(image)}";

            var (exit, stdout, error) = await containerd.CtrAsync("images", "pull", "--all-platforms", "--hosts-dir", hosts, name);

            output.WriteLineIfAny(Encoding.UTF8.GetString(stdout));
            Assert.True(exit == 0, $"ctr images pull {name}: {error}");
            var (_, list, _) = await containerd.CtrAsync("images", "ls");
            var row = Encoding.UTF8.GetString(list).Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal));
            Assert.Contains(image.Digest, row);
            // containerd asks a mirror with ?ns=<upstream host>; the manifest came from serve under the air-gapped name.
            var asked = $"GET /v2/{ServedBundleFixture.TargetPath(image).Split(':')[0]}/manifests/{image.Digest}?ns=registry.corp%3A5000 200";
            Assert.True(served.Paths.Contains(asked), $"{asked} not in:\n{string.Join('\n', served.Paths)}");
        }
    }

    [Fact]
    public async Task Podman_PullRootfulVfs_ImageDigestIsTheBundleDigest()
    {
        if (await PodmanUnavailableAsync() is { } why)
        {
            Assert.Fail($"podman cannot run here: {why}");
        }

        var root = served.Sub("podman-" + Guid.NewGuid().ToString("N")[..6]);
        string[] podman = ["--root", Path.Combine(root, "root"), "--runroot", Path.Combine(root, "run"), "--tmpdir", Path.Combine(root, "tmp"), "--storage-driver", "vfs", "--cgroup-manager=cgroupfs", "--events-backend=file"];
        foreach (var image in served.Bundle.Platform.Images.Where(i => i.Kind is TestKit.SampleImageKind.DockerImage or TestKit.SampleImageKind.OciImage or TestKit.SampleImageKind.DockerList).Take(3))
        {
            var name = $"{served.Host}/{ServedBundleFixture.SourcePath(image)}";

            var (exit, _, error) = await Tools.RunAsync("podman", [.. podman, "pull", "--tls-verify=false", name]);

            Assert.True(exit == 0, $"podman pull {name}: {error}");
            var (_, digest, _) = await Tools.RunAsync("podman", [.. podman, "image", "inspect", "--format", "{{.Digest}}", name]);
            Assert.Equal(image.Digest, Encoding.UTF8.GetString(digest).Trim());
        }
    }

    [Fact]
    public async Task OurCopy_EveryImageIntoALayout_DigestsIdentical()
    {
        var layout = served.Sub("layout-" + Guid.NewGuid().ToString("N")[..6]);
        foreach (var image in served.Bundle.Platform.Images)
        {
            var run = await MirrorCli.RunAsync("copy", "--plain-http", $"{served.Host}/{ServedBundleFixture.TargetPath(image)}", $"oci:{layout}:{image.Reference}");

            Assert.True(run.ExitCode == 0, run.ToString());
        }

        using var index = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(layout, "index.json")));
        var digests = index.RootElement.GetProperty("manifests").EnumerateArray()
            .ToDictionary(m => m.GetProperty("annotations").GetProperty("org.opencontainers.image.ref.name").GetString()!, m => m.GetProperty("digest").GetString());
        foreach (var image in served.Bundle.Platform.Images)
        {
            Assert.Equal(image.Digest, digests[image.Reference]);
        }
    }

    [Fact]
    public async Task OurCopy_ServeIntoDistribution_DigestsIdentical()
    {
        var prefix = $"{registry.Host}/servecopy{Guid.NewGuid().ToString("N")[..8]}";
        var image = served.Bundle.Platform.Images.First(i => i.Kind == TestKit.SampleImageKind.OciIndex);

        var run = await MirrorCli.RunAsync("copy", "--plain-http", $"{served.Host}/{ServedBundleFixture.SourcePath(image)}", $"{prefix}/{ServedBundleFixture.SourcePath(image)}");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(image.Digest, await Tools.SkopeoRawDigestAsync($"docker://{prefix}/{ServedBundleFixture.SourcePath(image)}"));
    }

    [Fact]
    public async Task Tls_ServeWithPemCertificate_SkopeoTrustingTheCaInspectsTheImage()
    {
        using var tls = TlsCertificates.Create();
        var dir = served.Sub("tls-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "server.crt"), tls.ServerCertificatePem);
        await File.WriteAllTextAsync(Path.Combine(dir, "server.key"), tls.ServerPrivateKeyPem);
        // skopeo's --cert-dir takes *.crt as CAs and wants a *.cert for every *.key: the CA goes alone.
        var caDir = Path.Combine(dir, "ca");
        Directory.CreateDirectory(caDir);
        tls.WriteCaCertificate(Path.Combine(caDir, "ca.crt"));
        using var key = VerificationKey.Load(served.Bundle.PublicKey);
        await using var server = await BundleRegistryServer.StartAsync(new ServeRequest
        {
            BundlePath = served.Bundle.Path,
            Key = key,
            Address = "127.0.0.1:0",
            TlsCertificatePath = Path.Combine(dir, "server.crt"),
            TlsKeyPath = Path.Combine(dir, "server.key"),
        });
        var image = served.Bundle.Platform.Images[0];

        var (exit, raw, error) = await Tools.RunAsync("skopeo", "inspect", "--raw", "--cert-dir", caDir, $"docker://{server.Authority}/{ServedBundleFixture.SourcePath(image)}");

        Assert.StartsWith("https://", server.Address.ToString());
        Assert.True(exit == 0, error);
        Assert.Equal(image.Digest, "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(raw)));
    }

    /// <summary>Why rootful podman with vfs storage cannot pull here, or null.</summary>
    private static async Task<string?> PodmanUnavailableAsync()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return "rootful podman needs root";
        }

        try
        {
            var (exit, _, error) = await Tools.RunAsync("podman", "--version");
            return exit == 0 ? null : $"podman --version failed: {error}";
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return $"podman is not installed (scripts/install-deps.sh installs it): {ex.Message}";
        }
    }
}

internal static class OutputExtensions
{
    public static void WriteLineIfAny(this ITestOutputHelper output, string text)
    {
        if (!string.IsNullOrWhiteSpace(text))
        {
            output.WriteLine(text);
        }
    }
}
