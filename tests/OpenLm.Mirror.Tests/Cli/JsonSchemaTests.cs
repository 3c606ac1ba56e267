using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary>The schemas reject what the contract forbids, so a test that validates against them can fail.</summary>
public sealed class JsonSchemaTests
{
    private const string Keygen = "\"privateKey\": \"a.key\", \"publicKey\": \"a.pub\", \"keyId\": \"sha256:ab\", \"encrypted\": false";

    [Fact]
    public void Keygen_ValidDocument_Accepted() =>
        Assert.True(JsonContract.IsValid("keygen", $$"""{"schemaVersion": 1, "command": "keygen", "ok": true, "exitCode": 0, {{Keygen}}}"""));

    [Theory]
    [InlineData("""{"schemaVersion": 1, "command": "keygen", "ok": true, "exitCode": 0, "signerKeyId": "x", KEYGEN}""")] // unknown field
    [InlineData("""{"schemaVersion": 1, "command": "keygen", "ok": true, "exitCode": 0}""")] // success without its fields
    [InlineData("""{"schemaVersion": 1, "command": "keygen", "ok": false, "exitCode": 2}""")] // failure without error
    [InlineData("""{"schemaVersion": 1, "command": "keygen", "ok": true, "exitCode": 1, KEYGEN}""")] // ok with a failing code
    [InlineData("""{"schemaVersion": 2, "command": "keygen", "ok": true, "exitCode": 0, KEYGEN}""")] // unknown schema version
    [InlineData("""{"schemaVersion": 1, "command": "keygen", "ok": false, "exitCode": 2, "error": {"kind": "usage", "code": "Bad Code", "message": "m", "hint": null}}""")]
    [InlineData("""{"schemaVersion": 1, "command": "verify", "ok": false, "exitCode": 2, "error": {"kind": "usage", "code": "usage", "message": "m", "hint": null}}""")] // another command's document
    public void Keygen_BrokenDocument_Rejected(string json) =>
        Assert.False(JsonContract.IsValid("keygen", json.Replace("KEYGEN", Keygen, StringComparison.Ordinal)));
}
