using System.Text.Json;
using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.Tests.TestKit;

/// <summary>Generates <see cref="SamplePlatform.Small"/> once per test class into a temp OCI layout.</summary>
public sealed class SmallLayoutFixture : IDisposable
{
    public SmallLayoutFixture()
    {
        Directory = TempDir.Create();
        Platform = SamplePlatform.Small(seed: 7).WriteLayout(Directory);
    }

    public string Directory { get; }
    public GeneratedPlatform Platform { get; }

    public JsonElement ReadJson(string digest) => JsonDocument.Parse(Platform.ReadBlob(digest)).RootElement;

    public void Dispose() => TempDir.Delete(Directory);
}

internal static class TempDir
{
    public static string Create()
    {
        var path = Path.Combine(Path.GetTempPath(), "openlm-testkit-test-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(path);
        return path;
    }

    public static void Delete(string path)
    {
        try { System.IO.Directory.Delete(path, recursive: true); }
        catch (IOException) { }
    }
}
