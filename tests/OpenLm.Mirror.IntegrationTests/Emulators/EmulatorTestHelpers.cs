using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;

namespace OpenLm.Mirror.IntegrationTests.Emulators;

internal static class EmulatorTestHelpers
{
    public static string Sha256(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    public static async Task<string> GetTokenAsync(HttpClient client, Uri realm, string scope = "aws", AuthenticationHeaderValue? basic = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(realm, "?service=public.ecr.aws&scope=" + Uri.EscapeDataString(scope)));
        request.Headers.Authorization = basic;
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"Token request failed: {(int)response.StatusCode} {body}");
        }

        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("token").GetString() ?? throw new InvalidOperationException("null token");
    }

    public static HttpRequestMessage Request(HttpMethod method, Uri uri, string? bearer = null, string? accept = null)
    {
        var request = new HttpRequestMessage(method, uri);
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        if (accept is not null)
        {
            request.Headers.Accept.ParseAdd(accept);
        }

        return request;
    }

    /// <summary>Raw (unparsed) header value, or null.</summary>
    public static string? RawHeader(HttpResponseMessage response, string name)
    {
        if (response.Headers.NonValidated.TryGetValues(name, out var values)
            || response.Content.Headers.NonValidated.TryGetValues(name, out values))
        {
            return string.Join(", ", values);
        }

        return null;
    }

    /// <summary>Reads a streamed body to the end, returning what arrived and the IO error that cut it short, if any.</summary>
    public static async Task<(byte[] Bytes, Exception? Error)> ReadBodyAsync(HttpResponseMessage response)
    {
        using var buffer = new MemoryStream();
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync();
            await stream.CopyToAsync(buffer);
            return (buffer.ToArray(), null);
        }
        catch (IOException ex)
        {
            return (buffer.ToArray(), ex);
        }
    }
}
