using System.Net;
using System.Net.Http.Headers;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Registry;

/// <summary>
/// The body of a blob GET that survives broken connections: when a read fails (reset, idle timeout)
/// it asks again with <c>Range: bytes=&lt;offset&gt;-</c> and carries on where it stopped. Content is
/// still untrusted: callers wrap it in a <see cref="Content.VerifyingStream"/>.
/// </summary>
internal sealed class ResumableBlobStream : Stream
{
    private readonly RemoteRepository _repository;
    private readonly Descriptor _descriptor;
    private readonly RegistryOptions _options;
    private HttpResponseMessage? _response;
    private Stream? _body;
    private long _position;
    private int _resumes;
    private long _attemptStart;

    private ResumableBlobStream(RemoteRepository repository, Descriptor descriptor)
    {
        _repository = repository;
        _descriptor = descriptor;
        _options = repository.Client.Options;
    }

    public static async Task<ResumableBlobStream> OpenAsync(RemoteRepository repository, Descriptor descriptor, CancellationToken cancellationToken)
    {
        var stream = new ResumableBlobStream(repository, descriptor);
        await stream.ConnectAsync(cancellationToken).ConfigureAwait(false);
        return stream;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => _descriptor.Size;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            try
            {
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                idle.CancelAfter(_options.IdleTimeout);
                int n;
                try
                {
                    n = await _body!.ReadAsync(buffer, idle.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new IOException($"no data for {_options.IdleTimeout.TotalSeconds:0}s", ex);
                }

                if (n == 0 && _position < _descriptor.Size)
                {
                    throw new IOException($"connection closed after {_position} of {_descriptor.Size} bytes");
                }

                _position += n;
                return n;
            }
            catch (Exception ex) when (ex is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
            {
                if (MadeProgress(_attemptStart, _position, _descriptor.Size))
                {
                    // The cap counts resumes in a row that got nowhere: a body cut off again and again, each time
                    // further on, is delivered (every resume keeps what was read), however many cuts it takes.
                    _resumes = 0;
                }

                if (_resumes >= _options.ResumeAttempts)
                {
                    throw new IOException($"{_repository.DisplayName}@{_descriptor.Digest}: download failed after {_resumes} resumes at byte {_position}: {ex.Message}", ex);
                }

                _resumes++;
                _options.Log.Warn($"{_repository.DisplayName}@{_descriptor.Digest.Short}: {ex.Message}; resuming at byte {_position} (attempt {_resumes}/{_options.ResumeAttempts})");
                await TransferSlots.DelayAsync(ResumeDelay(_resumes), _options.Time, cancellationToken).ConfigureAwait(false);
                _attemptStart = _position;
                await ReconnectAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Whether the connection that just broke moved the download on enough to not count against the resume cap: at
    /// least 64 KiB, or a quarter of what it had left to read. A server that dribbles a few bytes per connection
    /// still uses up the cap.
    /// </summary>
    internal static bool MadeProgress(long start, long position, long size) =>
        position - start >= Math.Min(ProgressFloor, Math.Max(1, (size - start) / 4));

    private const long ProgressFloor = 64 * 1024;

    /// <summary>
    /// The wait before resume number <paramref name="resume"/> (1-based): none for the first (a reset connection is
    /// usually one broken connection, and the bytes already read are kept), then 200 ms more per resume up to 2 s, so a
    /// registry that keeps cutting the body off is not hammered.
    /// </summary>
    internal static TimeSpan ResumeDelay(int resume) =>
        resume <= 1 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Math.Min(200 * (resume - 1), 2000));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _body?.Dispose();
            _response?.Dispose();
        }

        base.Dispose(disposing);
    }

    private async Task ReconnectAsync(CancellationToken cancellationToken)
    {
        _body?.Dispose();
        _response?.Dispose();
        _body = null;
        _response = null;
        try
        {
            await ConnectAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw new IOException($"reconnect failed: {ex.Message}", ex);
        }
    }

    private async Task ConnectAsync(CancellationToken cancellationToken)
    {
        var offset = _position;
        var context = $"{_repository.DisplayName}@{_descriptor.Digest}";
        var response = await _repository.Client.SendAsync(
            HttpMethod.Get,
            _repository.BlobUri(_descriptor.Digest),
            _repository.PullScope,
            cancellationToken,
            request =>
            {
                if (offset > 0)
                {
                    request.Headers.Range = new RangeHeaderValue(offset, null);
                }
            }).ConfigureAwait(false);

        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            var error = await RegistryException.FromResponseAsync(response, context, cancellationToken).ConfigureAwait(false);
            response.Dispose();
            throw new NotFoundException($"{context}: blob unknown (404)", error);
        }

        await RegistryClient.EnsureSuccessAsync(response, context, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        if (offset > 0)
        {
            if (response.StatusCode == HttpStatusCode.PartialContent)
            {
                var start = response.Content.Headers.ContentRange?.From;
                if (start != offset)
                {
                    response.Dispose();
                    throw new IOException($"{context}: asked to resume at byte {offset}, the server answered from byte {start}");
                }
            }
            else
            {
                // The server ignored Range: skip what we already have.
                await SkipAsync(body, offset, cancellationToken).ConfigureAwait(false);
            }
        }

        _response = response;
        _body = body;
    }

    private static async Task SkipAsync(Stream body, long count, CancellationToken cancellationToken)
    {
        var buffer = new byte[81920];
        while (count > 0)
        {
            var n = await body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                throw new IOException("connection closed while skipping already received bytes");
            }

            count -= n;
        }
    }
}
