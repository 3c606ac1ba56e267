using OpenLm.Mirror.Aws;
using Xunit;

namespace OpenLm.Mirror.Tests.Registries;

public sealed class SigV4SignerTests
{
    [Fact]
    public void Authorization_AwsDocumentedIamExample_GivesTheDocumentedSignature()
    {
        // Given the request of the AWS SigV4 documentation's worked example (IAM ListUsers, 2015-08-30 12:36:00 UTC)
        var uri = new Uri("https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08");
        var headers = new Dictionary<string, string>
        {
            ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8",
            ["Host"] = "iam.amazonaws.com",
            ["X-Amz-Date"] = "20150830T123600Z",
        };
        var credentials = new AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", null);

        // When signing it
        var authorization = SigV4Signer.Authorization("GET", uri, headers, [], credentials, "us-east-1", "iam", new DateTimeOffset(2015, 8, 30, 12, 36, 0, TimeSpan.Zero));

        // Then the header is the documented one, byte for byte
        Assert.Equal(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
            authorization);
    }

    [Fact]
    public void Authorization_BodyChanges_SignatureChanges()
    {
        var uri = new Uri("https://api.ecr.us-east-1.amazonaws.com/");
        var headers = new Dictionary<string, string> { ["host"] = "api.ecr.us-east-1.amazonaws.com", ["x-amz-date"] = "20260101T000000Z" };
        var credentials = new AwsCredentials("AKIDEXAMPLE", "secret", null);
        var time = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        var a = SigV4Signer.Authorization("POST", uri, headers, "{}"u8, credentials, "us-east-1", "ecr", time);
        var b = SigV4Signer.Authorization("POST", uri, headers, "{ }"u8, credentials, "us-east-1", "ecr", time);

        Assert.NotEqual(a, b);
        Assert.StartsWith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/ecr/aws4_request, SignedHeaders=host;x-amz-date, Signature=", a);
    }
}
