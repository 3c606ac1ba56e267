using System.Net;
using System.Net.Http.Headers;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry.Upload;

namespace OpenLm.Mirror.Registry;

/// <summary>
/// The single-request monolithic upload of the OCI distribution spec: <c>POST /v2/&lt;name&gt;/blobs/uploads/?digest=</c>
/// with the whole blob as the body, answered 201 Created — one round trip per blob instead of the POST that opens a
/// session and the PUT that fills it (CNCF Distribution takes it from v3 on). A registry that does not support it
/// answers 202 with a session <c>Location</c> (the spec's fallback; Distribution 2.8 does). So the first such upload
/// of a run is a trial with a small blob, read (and verified) into memory first: whatever the registry did with the
/// body — ignored it, or let a buffering proxy read it — the same bytes go to the session it opened, and the registry
/// is remembered as supporting it (201) or not (202) for the rest of the run. No blob ever costs more round trips than
/// POST + PUT.
/// </summary>
public sealed partial class RemoteRepository
{
    /// <summary>Pushes <paramref name="expected"/> by single POST; false (nothing read from <paramref name="content"/>) when the caller should use a session.</summary>
    private async Task<bool> TryPostMonolithicAsync(Descriptor expected, Stream content, UploadTuning tuning, bool trial, string context, CancellationToken cancellationToken)
    {
        if (!trial)
        {
            return await PostStreamAsync(expected, content, tuning, context, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            await PostTrialAsync(expected, content, tuning, context, cancellationToken).ConfigureAwait(false);
            return true;
        }
        finally
        {
            tuning.EndTrial();
        }
    }

    /// <summary>The trial: a blob of at most <see cref="UploadTuning.SinglePostTrialBytes"/>, verified in memory before it is sent.</summary>
    private async Task PostTrialAsync(Descriptor expected, Stream content, UploadTuning tuning, string context, CancellationToken cancellationToken)
    {
        var bytes = new byte[expected.Size];
        var untrusted = VerifyingStream.Ensure(content, expected, context);
        await using (untrusted.ConfigureAwait(false))
        {
            await untrusted.Stream.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
            await EnsureEndOfContentAsync(untrusted, context, cancellationToken).ConfigureAwait(false);
            if (!untrusted.Verifier.Verified)
            {
                throw new IntegrityException($"{context}: the content did not verify");
            }
        }

        using var response = await SendSinglePostAsync(expected, () => new ByteArrayContent(bytes), expectContinue: false, cancellationToken).ConfigureAwait(false);
        switch (response.StatusCode)
        {
            case HttpStatusCode.Created:
                EnsureStoredDigest(response, expected, context);
                tuning.SinglePostAccepted();
                tuning.Accepted(expected.Size);
                return;
            case HttpStatusCode.Accepted when SessionLocation(response) is { } location:
                tuning.SinglePostRefused();
                await CompleteUploadAsync(location, expected, new MemoryStream(bytes, writable: false), context, cancellationToken).ConfigureAwait(false);
                return;
            case HttpStatusCode.RequestEntityTooLarge:
                tuning.MonolithicTooLarge();
                WarnTooLarge(expected, tuning);
                var session = await StartUploadAsync(null, expected, cancellationToken).ConfigureAwait(false)
                    ?? throw new OperationException($"{context}: the registry did not start an upload session");
                await CompleteUploadAsync(session, expected, new MemoryStream(bytes, writable: false), context, cancellationToken).ConfigureAwait(false);
                return;
            default:
                await RegistryClient.EnsureSuccessAsync(response, context, cancellationToken).ConfigureAwait(false);
                throw new OperationException($"{context}: unexpected status {(int)response.StatusCode} to a single-request upload");
        }
    }

    /// <summary>A registry that took a single-request upload before: the blob streams, verified on the way, as a monolithic PUT would.</summary>
    private async Task<bool> PostStreamAsync(Descriptor expected, Stream content, UploadTuning tuning, string context, CancellationToken cancellationToken)
    {
        var untrusted = VerifyingStream.Ensure(content, expected, context);
        await using (untrusted.ConfigureAwait(false))
        {
            var body = LengthLimitedStream.PassThrough(untrusted.Stream);
            using var response = await SendSinglePostAsync(
                expected,
                () =>
                {
                    var streamed = new StreamContent(body, 1 << 20);
                    streamed.Headers.ContentLength = expected.Size;
                    return streamed;
                },
                tuning.ShouldExpectContinue(expected.Size),
                cancellationToken,
                replayable: false).ConfigureAwait(false);
            switch (response.StatusCode)
            {
                case HttpStatusCode.Created:
                    await EnsureEndOfContentAsync(untrusted, context, cancellationToken).ConfigureAwait(false);
                    if (!untrusted.Verifier.Verified)
                    {
                        throw new IntegrityException($"{context}: the registry accepted the upload before the content was verified");
                    }

                    EnsureStoredDigest(response, expected, context);
                    tuning.Accepted(expected.Size);
                    return true;
                case HttpStatusCode.RequestEntityTooLarge when body.Consumed == 0:
                    // A body-size limit in front of the registry (asked with 100-continue): chunked from now on.
                    tuning.MonolithicTooLarge();
                    WarnTooLarge(expected, tuning);
                    return false;
                case HttpStatusCode.Accepted when SessionLocation(response) is { } location:
                    // Took single requests before, and now opened a session instead (a load balancer between two
                    // versions?): use it when the body is still unsent; else let the caller's retry send it again.
                    tuning.SinglePostRefused();
                    if (body.Consumed == 0)
                    {
                        await CompleteUploadAsync(location, expected, untrusted.Stream, context, cancellationToken).ConfigureAwait(false);
                        return true;
                    }

                    await CancelSessionAsync(location, cancellationToken).ConfigureAwait(false);
                    throw new IOException($"{context}: the registry opened an upload session instead of taking the blob in one request; sending it again as a session upload");
                default:
                    await RegistryClient.EnsureSuccessAsync(response, context, cancellationToken).ConfigureAwait(false);
                    throw new OperationException($"{context}: unexpected status {(int)response.StatusCode} to a single-request upload");
            }
        }
    }

    private Task<HttpResponseMessage> SendSinglePostAsync(Descriptor expected, Func<HttpContent> body, bool expectContinue, CancellationToken cancellationToken, bool replayable = true) =>
        _client.SendAsync(
            HttpMethod.Post,
            _client.ApiUri($"v2/{RepositoryName}/blobs/uploads/?digest={Uri.EscapeDataString(expected.Digest.ToString())}"),
            _pushScope,
            cancellationToken,
            configure: expectContinue ? r => r.Headers.ExpectContinue = true : null,
            content: () =>
            {
                var content = body();
                content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                return content;
            },
            replayableContent: replayable);

    private Uri? SessionLocation(HttpResponseMessage response) =>
        response.Headers.Location is { } location ? (location.IsAbsoluteUri ? location : new Uri(_client.BaseUri, location)) : null;

    private static void EnsureStoredDigest(HttpResponseMessage response, Descriptor expected, string context)
    {
        if (response.Headers.TryGetValues("Docker-Content-Digest", out var values)
            && Digest.TryParse(values.FirstOrDefault(), out var stored)
            && stored != expected.Digest)
        {
            throw new IntegrityException($"{context}: registry stored the blob as {stored}, expected {expected.Digest}");
        }
    }

    private void WarnTooLarge(Descriptor expected, UploadTuning tuning) =>
        _client.Log.Warn($"{DisplayName}: the registry refused a {expected.Size}-byte upload as too large (413); uploading in chunks of {tuning.ChunkBytes >> 10} KiB from now on");

    private async Task CancelSessionAsync(Uri location, CancellationToken cancellationToken)
    {
        try
        {
            using var cancel = await _client.SendAsync(HttpMethod.Delete, location, _pushScope, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
        }
    }
}
