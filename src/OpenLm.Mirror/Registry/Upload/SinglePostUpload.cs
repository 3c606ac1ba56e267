using System.Net;
using System.Net.Http.Headers;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Registry.Upload;

namespace OpenLm.Mirror.Registry;

/// <summary>
/// The single-request monolithic upload of the OCI distribution spec: <c>POST /v2/&lt;name&gt;/blobs/uploads/?digest=</c>
/// with the whole blob as the body, answered 201 Created — one round trip per blob instead of the POST that opens a
/// session and the PUT that fills it. A registry that does not support it answers 202 with a session
/// <c>Location</c> (the spec's fallback): when the body was not sent yet (a big blob asks 100-continue first) the same
/// stream goes to that session; when it was, the session is dropped and the push fails transiently so the caller's
/// retry streams the blob again the old way. Either way the registry is remembered as not supporting it.
/// </summary>
public sealed partial class RemoteRepository
{
    /// <summary>
    /// Pushes <paramref name="expected"/> by single POST; false (nothing read from <paramref name="content"/>) when the
    /// caller should use a session. A <paramref name="trial"/> asks 100-continue whatever the size, so a registry that
    /// answers 202 without reading the body never gets it and the same stream goes to the session it opened.
    /// </summary>
    private async Task<bool> TryPostMonolithicAsync(Descriptor expected, Stream content, UploadTuning tuning, bool trial, string context, CancellationToken cancellationToken)
    {
        try
        {
            return await PostMonolithicAsync(expected, content, tuning, trial, context, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (trial)
            {
                tuning.EndTrial();
            }
        }
    }

    private async Task<bool> PostMonolithicAsync(Descriptor expected, Stream content, UploadTuning tuning, bool trial, string context, CancellationToken cancellationToken)
    {
        var untrusted = VerifyingStream.Ensure(content, expected, context);
        await using (untrusted.ConfigureAwait(false))
        {
            var body = LengthLimitedStream.PassThrough(untrusted.Stream);
            var query = $"?digest={Uri.EscapeDataString(expected.Digest.ToString())}";
            using var response = await _client.SendAsync(
                HttpMethod.Post,
                _client.ApiUri($"v2/{RepositoryName}/blobs/uploads/{query}"),
                _pushScope,
                cancellationToken,
                configure: trial || tuning.ShouldExpectContinue(expected.Size) ? r => r.Headers.ExpectContinue = true : null,
                content: () =>
                {
                    var streamed = new StreamContent(body, 1 << 20);
                    streamed.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                    streamed.Headers.ContentLength = expected.Size;
                    return streamed;
                },
                replayableContent: false).ConfigureAwait(false);
            switch (response.StatusCode)
            {
                case HttpStatusCode.Created:
                    await EnsureEndOfContentAsync(untrusted, context, cancellationToken).ConfigureAwait(false);
                    if (!untrusted.Verifier.Verified)
                    {
                        throw new IntegrityException($"{context}: the registry accepted the upload before the content was verified");
                    }

                    if (response.Headers.TryGetValues("Docker-Content-Digest", out var values)
                        && Digest.TryParse(values.FirstOrDefault(), out var stored)
                        && stored != expected.Digest)
                    {
                        throw new IntegrityException($"{context}: registry stored the blob as {stored}, expected {expected.Digest}");
                    }

                    tuning.SinglePostAccepted();
                    tuning.Accepted(expected.Size);
                    return true;
                case HttpStatusCode.RequestEntityTooLarge when body.Consumed == 0:
                    // A body-size limit in front of the registry: chunked from now on (a session is opened for it).
                    tuning.MonolithicTooLarge();
                    _client.Log.Warn($"{DisplayName}: the registry refused a {expected.Size}-byte upload as too large (413); uploading in chunks of {tuning.ChunkBytes >> 10} KiB from now on");
                    return false;
                case HttpStatusCode.Accepted:
                    tuning.SinglePostRefused();
                    var location = response.Headers.Location is { } l ? (l.IsAbsoluteUri ? l : new Uri(_client.BaseUri, l)) : null;
                    if (body.Consumed == 0 && location is not null)
                    {
                        await CompleteUploadAsync(location, expected, untrusted.Stream, context, cancellationToken).ConfigureAwait(false);
                        return true;
                    }

                    if (location is not null)
                    {
                        try
                        {
                            using var cancel = await _client.SendAsync(HttpMethod.Delete, location, _pushScope, cancellationToken).ConfigureAwait(false);
                        }
                        catch (HttpRequestException)
                        {
                        }
                    }

                    throw new IOException($"{context}: the registry opened an upload session instead of taking the blob in one request; sending it again as a session upload");
                default:
                    await RegistryClient.EnsureSuccessAsync(response, context, cancellationToken).ConfigureAwait(false);
                    throw new OperationException($"{context}: unexpected status {(int)response.StatusCode} to a single-request upload");
            }
        }
    }
}
