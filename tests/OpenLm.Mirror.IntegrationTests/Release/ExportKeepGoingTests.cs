using System.Text.Json;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.IntegrationTests.Support;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Release;

/// <summary>
/// Export keeps going: with two repositories whose blobs the registry never serves, every other image is still pulled
/// into the cache, the failed ones are tried again at the end, and only then does export fail, naming both images with
/// the registry's error code, leaving no bundle and no partial file. The next export resumes from the cache.
/// </summary>
[Trait("Category", "Integration")]
[Collection(FaultMatrixFixture.Collection)]
public sealed class ExportKeepGoingTests(FaultMatrixFixture fixture)
{
    private static readonly string[] Broken = ["fault/app03", "fault/app11"];

    [Fact]
    public async Task Export_TwoRepositoriesNeverServeTheirBlobs_PullsAllOthersThenFailsListingBothAndWritesNoBundle()
    {
        // Given the fault-free lock, and a registry that answers 503 to every blob request of two repositories
        var faults = fixture.Proxy.Options;
        faults.Clear();
        fixture.Proxy.Reset();
        foreach (var repository in Broken)
        {
            faults.FailBlobsOfRepositories.Add(repository);
        }

        var output = fixture.Temp.Sub("keep-going-out");
        Directory.CreateDirectory(output);
        var bundle = Path.Combine(output, "release.tar");
        var cache = fixture.Temp.Sub("keep-going-cache");
        CliRun failed;
        try
        {
            // When the release is exported
            failed = await MirrorCli.RunAsync(
                "export", "--plain-http", "--lock", fixture.BaselineLockPath, "--key", fixture.PrivateKeyPath, "-o", bundle, "--cache", cache, "--retries", "1");
        }
        finally
        {
            faults.Clear();
        }

        // Then it fails with exit 1 naming exactly the two images and the registry's code, after trying them again
        Assert.True(failed.ExitCode == 1, failed.ToString());
        Assert.Contains($"2 of {FaultMatrixFixture.ImageCount} images could not be pulled", failed.Error, StringComparison.Ordinal);
        foreach (var repository in Broken)
        {
            Assert.Contains($"[UNAVAILABLE] {fixture.Proxy.RegistryHost}/{repository}:1.0", failed.Error, StringComparison.Ordinal);
        }

        Assert.Equal(2, failed.Error.Split('\n').Count(line => line.Contains("[UNAVAILABLE]", StringComparison.Ordinal)));
        Assert.True(fixture.Proxy.PermanentFailures >= 2 * 2, $"{fixture.Proxy.PermanentFailures} refused blob requests: the failed images were not tried again");

        // And nothing of a bundle is left: no output file, no temporary or partial file, in the output or the cache
        Assert.Empty(Directory.GetFileSystemEntries(output));
        Assert.Empty(Directory.GetFiles(cache, "*.partial*", SearchOption.AllDirectories));

        // And every other image was pulled: the next export (registry healthy again) downloads only the two images' blobs
        var resumed = await MirrorCli.RunAsync(
            "export", "--plain-http", "--lock", fixture.BaselineLockPath, "--key", fixture.PrivateKeyPath, "-o", bundle, "--cache", cache, "--json");
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        using var summary = JsonDocument.Parse(resumed.Output);
        var lockBlobs = JsonDocument.Parse(File.ReadAllText(fixture.BaselineLockPath)).RootElement.GetProperty("blobs").GetArrayLength();
        // Each image of the fixture is an index, two manifests, two configs and two layers of its own: 7 blobs.
        Assert.Equal(lockBlobs - (Broken.Length * 7), Find(summary.RootElement, "blobsReused").GetInt32());
        var verify = await MirrorCli.RunAsync("verify", bundle, "--key", fixture.PublicKeyPath);
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }

    /// <summary>The first property called <paramref name="name"/>, at any depth of objects.</summary>
    private static JsonElement Find(JsonElement element, string name) =>
        TryFind(element, name) ?? throw new InvalidOperationException($"no '{name}' in {element}");

    private static JsonElement? TryFind(JsonElement element, string name)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        foreach (var property in element.EnumerateObject())
        {
            if ((property.Name == name ? property.Value : TryFind(property.Value, name)) is { } found)
            {
                return found;
            }
        }

        return null;
    }
}
