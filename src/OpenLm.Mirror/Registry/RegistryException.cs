using System.Net;
using System.Text.Json;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Registry;

/// <summary>One entry of the OCI distribution <c>errors</c> array; <paramref name="Detail"/> is its <c>detail</c> as raw JSON text (a digest for <c>MANIFEST_BLOB_UNKNOWN</c>).</summary>
public sealed record RegistryError(string Code, string Message, string? Detail = null);

/// <summary>A registry answered with an error status. Carries method, URI (without query), status and the OCI error list.</summary>
public sealed class RegistryException : MirrorException
{
    public RegistryException(string method, Uri uri, HttpStatusCode status, IReadOnlyList<RegistryError> errors, TimeSpan? retryAfter, string? context = null)
        : base(KindFor(status, errors), BuildMessage(method, uri, status, errors, context))
    {
        Method = method;
        Uri = StripQuery(uri);
        StatusCode = status;
        Errors = errors;
        RetryAfter = retryAfter;
    }

    public string Method { get; }

    public Uri Uri { get; }

    public HttpStatusCode StatusCode { get; }

    public IReadOnlyList<RegistryError> Errors { get; }

    public TimeSpan? RetryAfter { get; }

    public bool HasCode(string code) => Errors.Any(e => string.Equals(e.Code, code, StringComparison.OrdinalIgnoreCase));

    public static async Task<RegistryException> FromResponseAsync(HttpResponseMessage response, string? context, CancellationToken cancellationToken)
    {
        var request = response.RequestMessage!;
        var errors = await ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false);
        return new RegistryException(request.Method.Method, request.RequestUri!, response.StatusCode, errors, RetryAfterOf(response), context);
    }

    public static TimeSpan? RetryAfterOf(HttpResponseMessage response)
    {
        var header = response.Headers.RetryAfter;
        if (header?.Delta is { } delta)
        {
            return delta;
        }

        if (header?.Date is { } date)
        {
            var wait = date - DateTimeOffset.UtcNow;
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }

        return null;
    }

    internal static async Task<IReadOnlyList<RegistryError>> ReadErrorsAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.RequestMessage?.Method == HttpMethod.Head)
        {
            return [];
        }

        try
        {
            // Error bodies are small; never read more than 64 KiB of one.
            var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var buffer = new byte[64 * 1024];
            var total = 0;
            int n;
            while (total < buffer.Length && (n = await stream.ReadAsync(buffer.AsMemory(total), cancellationToken).ConfigureAwait(false)) > 0)
            {
                total += n;
            }

            if (total == 0)
            {
                return [];
            }

            using var doc = JsonDocument.Parse(buffer.AsMemory(0, total));
            if (doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("errors", out var list)
                && list.ValueKind == JsonValueKind.Array)
            {
                return list.EnumerateArray()
                    .Where(e => e.ValueKind == JsonValueKind.Object)
                    .Select(e => new RegistryError(
                        e.TryGetProperty("code", out var c) ? c.GetString() ?? "UNKNOWN" : "UNKNOWN",
                        e.TryGetProperty("message", out var m) ? m.GetString() ?? string.Empty : string.Empty,
                        e.TryGetProperty("detail", out var d) && d.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined) ? d.GetRawText() : null))
                    .ToList();
            }
        }
        catch (JsonException)
        {
        }
        catch (IOException)
        {
        }
        catch (HttpRequestException)
        {
        }

        return [];
    }

    private static FailureKind KindFor(HttpStatusCode status, IReadOnlyList<RegistryError> errors) =>
        errors.Any(e => e.Code is "DIGEST_INVALID" or "SIZE_INVALID") ? FailureKind.Integrity : FailureKind.Operational;

    private static string BuildMessage(string method, Uri uri, HttpStatusCode status, IReadOnlyList<RegistryError> errors, string? context)
    {
        var what = errors.Count > 0
            ? string.Join("; ", errors.Select(e => string.IsNullOrEmpty(e.Message) ? e.Code : $"{e.Code}: {e.Message}"))
            : DescribeStatus(status);
        var prefix = context is null ? string.Empty : context + ": ";
        return $"{prefix}{method} {StripQuery(uri)} returned {(int)status} {status} ({what})";
    }

    private static string DescribeStatus(HttpStatusCode status) => status switch
    {
        HttpStatusCode.NotFound => "not found",
        HttpStatusCode.Unauthorized => "authentication required or credentials rejected",
        HttpStatusCode.Forbidden => "access denied",
        HttpStatusCode.TooManyRequests => "rate limited",
        _ => "no error details in the response",
    };

    internal static Uri StripQuery(Uri uri) =>
        string.IsNullOrEmpty(uri.Query) ? uri : new UriBuilder(uri) { Query = string.Empty }.Uri;
}
