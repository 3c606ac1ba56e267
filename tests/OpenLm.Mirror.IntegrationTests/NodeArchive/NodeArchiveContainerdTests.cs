using System.Text;
using OpenLm.Mirror.IntegrationTests.Serve;
using OpenLm.Mirror.IntegrationTests.Support;
using OpenLm.Mirror.TestKit;
using Xunit;
using Xunit.Abstractions;

namespace OpenLm.Mirror.IntegrationTests.NodeArchive;

/// <summary>
/// The node archive imported by a real containerd of the test's own, as k3s/RKE2 import it at start: with the default
/// unpack (native snapshotter, which needs no kernel support), every image listed by its source reference and by its
/// digest reference, with the bundle's digests.
/// </summary>
public sealed class NodeArchiveContainerdTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private TestBundle _bundle = null!;

    public async Task InitializeAsync() => _bundle = await TestBundle.CreateAsync(_dir.Sub("bundle"), seed: 23);

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }

    [Theory]
    [InlineData("openlm-images.tar.zst", "linux/amd64")]
    [InlineData("openlm-images.tar", null)]
    public async Task CtrImport_DefaultUnpack_ListsEveryImageBySourceAndDigestReference(string name, string? platform)
    {
        if (PrivateContainerd.Unavailable() is { } why)
        {
            Assert.Fail($"containerd cannot run here: {why}");
        }

        // Given the node archive of a bundle holding single images, Docker lists, OCI indexes, an artifact and a chart
        var archive = _dir.Sub(name);
        string[] args = ["node-archive", _bundle.Path, "--key", _bundle.PublicKey, "-o", archive];
        var run = await MirrorCli.RunAsync(platform is null ? args : [.. args, "--platform", platform]);
        Assert.True(run.ExitCode == 0, run.ToString());
        output.WriteLine(run.Output);

        // (k3s/RKE2 decompress by the file's extension with a 32 MiB window limit; ctr reads plain tar: the zstd CLI
        // decompresses it under that same memory limit, refusing any larger window)
        var tar = archive;
        if (name.EndsWith(".zst", StringComparison.Ordinal))
        {
            tar = _dir.Sub("decompressed.tar");
            var (zstdExit, _, zstdError) = await Tools.RunAsync("zstd", "-d", "-q", "--memory=32MB", "-o", tar, archive);
            Assert.True(zstdExit == 0, $"zstd -d --memory=32MB: {zstdError}");
        }

        // When a containerd imports it with ctr's defaults (unpack for the host platform)
        await using var containerd = await PrivateContainerd.StartAsync();
        var (exit, stdout, error) = await containerd.CtrAsync("images", "import", "--snapshotter", "native", tar);
        output.WriteLine(Encoding.UTF8.GetString(stdout));
        Assert.True(exit == 0, $"ctr images import: {error}");

        // Then every image of the bundle is there under its source reference and its digest reference, with the bundle's digest
        var (_, list, _) = await containerd.CtrAsync("images", "ls");
        var rows = Encoding.UTF8.GetString(list).Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .ToDictionary(c => c[0], c => c[2], StringComparer.Ordinal);
        var images = _bundle.Platform.Images.Where(i => i.Kind is not (SampleImageKind.Artifact or SampleImageKind.HelmChart)).ToList();
        Assert.NotEmpty(images);
        foreach (var image in images)
        {
            var source = _bundle.SourceRef(image);
            Assert.True(rows.TryGetValue(source, out var digest), $"{source} not in:\n{string.Join('\n', rows.Keys)}");
            Assert.Equal(image.Digest, digest);
            var byDigest = $"{source[..source.LastIndexOf(':')]}@{image.Digest}";
            Assert.True(rows.TryGetValue(byDigest, out var same), $"{byDigest} not listed");
            Assert.Equal(image.Digest, same);
        }

        // And nothing else: no chart, no artifact
        Assert.Equal(2 * images.Count, rows.Count);

        // And the default unpack made a snapshot of every host-platform image (ctr check: complete content)
        var (checkExit, check, checkError) = await containerd.CtrAsync("images", "check");
        var checkText = Encoding.UTF8.GetString(check);
        output.WriteLine(checkText);
        Assert.True(checkExit == 0, checkError);
        foreach (var image in images)
        {
            var row = checkText.Split('\n').Single(l => l.StartsWith(_bundle.SourceRef(image) + " ", StringComparison.Ordinal));
            Assert.Contains("complete", row, StringComparison.Ordinal);
        }

        var (_, snapshots, _) = await containerd.CtrAsync("snapshots", "--snapshotter", "native", "ls");
        Assert.True(Encoding.UTF8.GetString(snapshots).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length > 1, "no snapshot was unpacked");
    }
}
