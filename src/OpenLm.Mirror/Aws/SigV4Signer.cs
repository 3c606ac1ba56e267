using System.Globalization;
using System.Text;
using Amazon.Runtime;
using Amazon.Runtime.Internal.Auth;

namespace OpenLm.Mirror.Aws;

/// <summary>AWS credentials as resolved from the standard chain (environment, profile, container or instance role).</summary>
public sealed record AwsCredentials(string AccessKeyId, string SecretAccessKey, string? SessionToken);

/// <summary>
/// AWS Signature Version 4 over one request, after the AWS documentation's four steps: canonical request, string to
/// sign, signing key (derived by AWSSDK.Core's <see cref="AWS4Signer"/>), signature. Headers are signed by lower-case
/// name, trimmed values, sorted; the body is signed by its SHA-256.
/// </summary>
public static class SigV4Signer
{
    public const string Algorithm = "AWS4-HMAC-SHA256";

    /// <summary>The <c>Authorization</c> header value for a request with these (already set) headers.</summary>
    public static string Authorization(
        string method,
        Uri uri,
        IReadOnlyDictionary<string, string> headers,
        ReadOnlySpan<byte> body,
        AwsCredentials credentials,
        string region,
        string service,
        DateTimeOffset time)
    {
        ArgumentNullException.ThrowIfNull(uri);
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(credentials);
        var amzDate = AmzDate(time);
        var date = amzDate[..8];
        var signed = headers
            .Select(h => (Name: h.Key.ToLowerInvariant(), Value: string.Join(' ', h.Value.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries))))
            .OrderBy(h => h.Name, StringComparer.Ordinal)
            .ToList();
        var signedHeaders = string.Join(';', signed.Select(h => h.Name));
        var canonical = new StringBuilder()
            .Append(method.ToUpperInvariant()).Append('\n')
            .Append(string.IsNullOrEmpty(uri.AbsolutePath) ? "/" : uri.AbsolutePath).Append('\n')
            .Append(CanonicalQuery(uri.Query)).Append('\n');
        foreach (var (name, value) in signed)
        {
            canonical.Append(name).Append(':').Append(value).Append('\n');
        }

        canonical.Append('\n').Append(signedHeaders).Append('\n').Append(Hex(AWS4Signer.ComputeHash(body.ToArray())));
        var scope = $"{date}/{region}/{service}/aws4_request";
        var toSign = $"{Algorithm}\n{amzDate}\n{scope}\n{Hex(AWS4Signer.ComputeHash(canonical.ToString()))}";
        var key = AWS4Signer.ComposeSigningKey(credentials.SecretAccessKey, region, date, service);
        var signature = Hex(AWS4Signer.ComputeKeyedHash(SigningAlgorithm.HmacSHA256, key, toSign));
        return $"{Algorithm} Credential={credentials.AccessKeyId}/{scope}, SignedHeaders={signedHeaders}, Signature={signature}";
    }

    /// <summary>The <c>X-Amz-Date</c> form of a time: <c>yyyyMMddTHHmmssZ</c> in UTC.</summary>
    public static string AmzDate(DateTimeOffset time) => time.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);

    private static string CanonicalQuery(string query)
    {
        if (string.IsNullOrEmpty(query) || query == "?")
        {
            return string.Empty;
        }

        return string.Join('&', query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(p =>
            {
                var eq = p.IndexOf('=');
                var name = Uri.EscapeDataString(Uri.UnescapeDataString(eq < 0 ? p : p[..eq]));
                var value = eq < 0 ? string.Empty : Uri.EscapeDataString(Uri.UnescapeDataString(p[(eq + 1)..]));
                return (name, value);
            })
            .OrderBy(p => p.name, StringComparer.Ordinal)
            .ThenBy(p => p.value, StringComparer.Ordinal)
            .Select(p => p.name + "=" + p.value));
    }

    private static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);
}
