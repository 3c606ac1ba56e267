using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.Serve;

/// <summary>The OCI distribution error codes this read-only registry answers with (distribution-spec, "Error Codes").</summary>
public static class RegistryErrorCodes
{
    public const string BlobUnknown = "BLOB_UNKNOWN";
    public const string DigestInvalid = "DIGEST_INVALID";
    public const string ManifestUnknown = "MANIFEST_UNKNOWN";
    public const string NameInvalid = "NAME_INVALID";
    public const string NameUnknown = "NAME_UNKNOWN";
    public const string Unsupported = "UNSUPPORTED";

    /// <summary>Not in the OCI table; Distribution's code for <c>n</c> that is not a non-negative integer.</summary>
    public const string PaginationNumberInvalid = "PAGINATION_NUMBER_INVALID";

    /// <summary>Not in the OCI table; Distribution's code for a 416 answer.</summary>
    public const string RangeInvalid = "RANGE_INVALID";

    public const string Unknown = "UNKNOWN";
}

/// <summary>Writes the distribution-spec error body <c>{"errors":[{"code","message","detail"}]}</c>.</summary>
internal static class RegistryErrors
{
    public static async Task WriteAsync(HttpContext context, int status, string code, string message, IReadOnlyDictionary<string, string>? detail = null)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json; charset=utf-8";
        var body = Body(code, message, detail);
        response.ContentLength = body.Length;
        if (!HttpMethods.IsHead(context.Request.Method))
        {
            await response.Body.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
        }
    }

    public static byte[] Body(string code, string message, IReadOnlyDictionary<string, string>? detail)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("errors");
            json.WriteStartObject();
            json.WriteString("code", code);
            json.WriteString("message", message);
            if (detail is null)
            {
                json.WriteNull("detail");
            }
            else
            {
                json.WriteStartObject("detail");
                foreach (var (key, value) in detail)
                {
                    json.WriteString(key, value);
                }

                json.WriteEndObject();
            }

            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
        }

        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }
}
