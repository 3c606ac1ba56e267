using System.Text;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Serve;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.TestKit;
using Xunit;
using Xunit.Abstractions;

namespace OpenLm.Mirror.IntegrationTests.NodeArchive;

/// <summary>
/// Plain containerd cannot rename repositories, so the default mapping (the platform namespace dropped) leaves the
/// platform images without a mirror. Imported with <c>--map &lt;source&gt;=&lt;same path&gt;</c>, they keep their path
/// below the target, and the generated <c>hosts.toml</c> then redirects a pull of the source name: checked with
/// <c>ctr images pull --hosts-dir</c> on a containerd of the test's own against a real registry.
/// </summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class SamePathMirrorTests(SharedRegistryFixture registry, ITestOutputHelper output) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private TestBundle _bundle = null!;

    public async Task InitializeAsync() => _bundle = await TestBundle.CreateAsync(_temp.Sub("b"), seed: 53);

    public Task DisposeAsync()
    {
        _temp.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task CtrPull_SourceName_ComesFromTheTargetWhenTheImportKeptThePath()
    {
        if (PrivateContainerd.Unavailable() is { } why)
        {
            Assert.Fail($"containerd cannot run here: {why}");
        }

        // Given the bundle imported with the platform path kept, and the hosts.toml values writes for the same rule
        var to = $"{registry.Host}/same{Guid.NewGuid().ToString("N")[..6]}";
        const string keep = "--map=public.ecr.aws/r3q3q2f4=r3q3q2f4";
        var import = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, keep, "--plain-http");
        Assert.True(import.ExitCode == 0, import.ToString());
        var hosts = _temp.Sub("certs.d");
        var values = await MirrorCli.RunAsync("values", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, keep, "--plain-http", "--containerd-hosts-dir", hosts);
        Assert.True(values.ExitCode == 0, values.ToString());
        Assert.True(File.Exists(Path.Combine(hosts, "public.ecr.aws", "hosts.toml")), values.ToString());
        output.WriteLine(File.ReadAllText(Path.Combine(hosts, "public.ecr.aws", "hosts.toml")));

        // When containerd pulls platform images by their source names through those hosts files
        await using var containerd = await PrivateContainerd.StartAsync();
        foreach (var image in _bundle.Platform.Images.Where(i => i.Kind is SampleImageKind.OciIndex or SampleImageKind.DockerImage or SampleImageKind.OciImage).Take(2))
        {
            var source = _bundle.SourceRef(image);
            var (exit, stdout, error) = await containerd.CtrAsync("images", "pull", "--all-platforms", "--hosts-dir", hosts, source);
            output.WriteLine(Encoding.UTF8.GetString(stdout));

            // Then the pull succeeds (public.ecr.aws is not reachable from here: it came from the target) with the bundle's digest
            Assert.True(exit == 0, $"ctr images pull {source}: {error}");
            var (_, list, _) = await containerd.CtrAsync("images", "ls");
            var row = Encoding.UTF8.GetString(list).Split('\n').Single(l => l.StartsWith(source + " ", StringComparison.Ordinal));
            Assert.Contains(image.Digest, row, StringComparison.Ordinal);
        }
    }
}
