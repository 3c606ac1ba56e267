using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Import;

/// <summary>import reports its progress while it pushes (it used to print nothing until the end): one line per image and a total.</summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ImportProgressTests(SharedRegistryFixture registry) : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private TestBundle _bundle = null!;

    public async Task InitializeAsync() => _bundle = await TestBundle.CreateAsync(_temp.Sub("b"), seed: 47);

    public Task DisposeAsync()
    {
        _temp.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Import_ProgressPlain_OneLinePerImageNamedByTheImageAndAPushTotal()
    {
        var to = $"{registry.Host}/prg{Guid.NewGuid().ToString("N")[..8]}";
        var count = _bundle.Platform.Images.Count;

        var run = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, "--plain-http", "--progress", "plain");

        Assert.True(run.ExitCode == 0, run.ToString());
        var lines = run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Contains(lines, l => l.StartsWith($"push: {count} images, ", StringComparison.Ordinal));
        foreach (var image in _bundle.Platform.Images)
        {
            var name = $"{image.Repository.Split('/')[^1]}:{image.Tag}";
            Assert.Contains(lines, l => l.StartsWith($"pushed {name} sha256:", StringComparison.Ordinal));
        }

        Assert.Contains(lines, l => l.StartsWith($"tag: {count} images", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Import_Quiet_PrintsNothingOnStderr()
    {
        var to = $"{registry.Host}/prq{Guid.NewGuid().ToString("N")[..8]}";

        var run = await MirrorCli.RunAsync("import", _bundle.Path, "--key", _bundle.PublicKey, "--to", to, "--plain-http", "--quiet");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(string.Empty, run.Error.Trim());
    }
}
