using System.Text.Json;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Import;
using OpenLm.Mirror.Tests.Core;
using Xunit;

namespace OpenLm.Mirror.Tests.ImportReceipts;

public sealed class ImportReceiptTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static ImportResult Result(bool dryRun) => new()
    {
        Registry = "registry.corp:5000/openlm",
        BundleDigest = "sha256:" + new string('a', 64),
        Platform = "openlm-platform",
        Version = "1.260716.1540",
        SignatureVerified = true,
        DryRun = dryRun,
        Images = [new ImportedImage("public.ecr.aws/r3q3q2f4/olm-server:1.2", "registry.corp:5000/openlm/olm-server:1.2", "sha256:" + new string('b', 64), "application/vnd.oci.image.index.v1+json", TagOutcome.Created)],
    };

    [Fact]
    public void ImportReceipt_Write_FinishedImport_VersionedShapeWithEveryImage()
    {
        // Given a finished import, When its receipt is written
        var path = _temp.Sub("receipt.json");
        ImportReceipt.From(Result(dryRun: false), DateTimeOffset.Parse("2026-12-01T10:00:00Z")).Write(path);

        // Then it has the documented fields
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;
        Assert.Equal(1, root.GetProperty("receiptVersion").GetInt32());
        Assert.Equal("registry.corp:5000/openlm", root.GetProperty("registry").GetString());
        Assert.Equal("1.260716.1540", root.GetProperty("platform").GetProperty("version").GetString());
        var image = Assert.Single(root.GetProperty("images").EnumerateArray().ToList());
        Assert.Equal("registry.corp:5000/openlm/olm-server:1.2", image.GetProperty("target").GetString());
        Assert.Equal("sha256:" + new string('b', 64), image.GetProperty("digest").GetString());
    }

    [Fact]
    public void ImportReceipt_From_DryRun_Refused() =>
        Assert.Throws<ArgumentException>(() => ImportReceipt.From(Result(dryRun: true), DateTimeOffset.UtcNow));
}
