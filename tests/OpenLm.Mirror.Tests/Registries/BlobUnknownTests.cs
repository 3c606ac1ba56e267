using System.Net;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.Registries;

/// <summary>Which manifest refusals mean "a blob the HEAD claimed is not there", and which digests they name.</summary>
public sealed class BlobUnknownTests
{
    private static readonly Uri Uri = new("http://127.0.0.1:5000/v2/team/a/manifests/sha256:x");
    private static readonly string A = "sha256:" + new string('a', 64);
    private static readonly string B = "sha256:" + new string('b', 64);

    [Theory]
    [InlineData(HttpStatusCode.BadRequest, "MANIFEST_BLOB_UNKNOWN", true)]
    [InlineData(HttpStatusCode.NotFound, "BLOB_UNKNOWN", true)]
    [InlineData(HttpStatusCode.BadRequest, "MANIFEST_INVALID", false)]
    [InlineData(HttpStatusCode.Unauthorized, "BLOB_UNKNOWN", false)]
    public void IsBlobUnknown_ByStatusAndCode(HttpStatusCode status, string code, bool expected) =>
        Assert.Equal(expected, GraphCopier.IsBlobUnknown(new RegistryException("PUT", Uri, status, [new RegistryError(code, "blob unknown to registry")], null)));

    [Fact]
    public void NamedDigests_DistributionDetailAndNexusMessage_AreBothRead()
    {
        // Distribution puts the digest in detail (a JSON string); Nexus and others in the message text
        var error = new RegistryException("PUT", Uri, HttpStatusCode.BadRequest,
            [new RegistryError("MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", $"\"{A}\""), new RegistryError("BLOB_UNKNOWN", $"blob unknown to registry - {B}")], null);

        var named = GraphCopier.NamedDigests(error);

        Assert.Equal([Digest.Parse(A), Digest.Parse(B)], named.OrderBy(d => d.ToString(), StringComparer.Ordinal));
    }

    [Fact]
    public void NamedDigests_NoDigestInTheError_IsEmpty() =>
        Assert.Empty(GraphCopier.NamedDigests(new RegistryException("PUT", Uri, HttpStatusCode.BadRequest, [new RegistryError("MANIFEST_BLOB_UNKNOWN", "blob unknown to registry")], null)));
}
