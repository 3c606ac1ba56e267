using OpenLm.Mirror.Errors;
using ZstdSharp;

namespace OpenLm.Mirror.Bundle;

/// <summary>Opens a bundle stream, undoing zstd compression when the first bytes are the zstd magic.</summary>
internal static class BundleStreams
{
    public static async Task<(Stream Tar, bool Compressed)> OpenAsync(Stream input, string source, CancellationToken cancellationToken)
    {
        var head = new byte[4];
        var n = await input.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        Stream prefixed = new PrefixedStream(head.AsMemory(0, n), input);
        if (n == 4 && head.AsSpan().SequenceEqual(BundleFormat.ZstdMagic))
        {
            var zstd = new DecompressionStream(prefixed, bufferSize: 1 << 17, checkEndOfStream: true, leaveOpen: true);
            return (new GuardedStream(zstd, source), true);
        }

        if (n >= 2 && head[0] == 0x1F && head[1] == 0x8B)
        {
            throw new InputException($"{source}: the file is gzip-compressed; a bundle is a plain tar or a zstd-compressed tar (.tar.zst)");
        }

        if (input.CanSeek)
        {
            // A plain tar in a file: read it directly, so entries a visitor claims can be skipped by seeking.
            input.Seek(-n, SeekOrigin.Current);
            return (input, false);
        }

        return (prefixed, false);
    }

    /// <summary>Replays a few already-read bytes, then reads the rest of the inner stream.</summary>
    private sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream inner) : Stream
    {
        private ReadOnlyMemory<byte> _prefix = prefix;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_prefix.Length > 0 && buffer.Length > 0)
            {
                var n = Math.Min(buffer.Length, _prefix.Length);
                _prefix.Span[..n].CopyTo(buffer);
                _prefix = _prefix[n..];
                return n;
            }

            return inner.Read(buffer);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_prefix.Length > 0 && buffer.Length > 0)
            {
                var n = Math.Min(buffer.Length, _prefix.Length);
                _prefix.Span[..n].CopyTo(buffer.Span);
                _prefix = _prefix[n..];
                return ValueTask.FromResult(n);
            }

            return inner.ReadAsync(buffer, cancellationToken);
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>Turns zstd decoding failures (corrupt or truncated frames) into <see cref="IntegrityException"/>.</summary>
    private sealed class GuardedStream(Stream inner, string source) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            try
            {
                return inner.Read(buffer);
            }
            catch (Exception ex) when (ex is ZstdException or EndOfStreamException)
            {
                throw Fail(ex);
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ZstdException or EndOfStreamException)
            {
                throw Fail(ex);
            }
        }

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
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        private IntegrityException Fail(Exception ex) =>
            new($"{source}: the zstd-compressed bundle is truncated or corrupt: {ex.Message}", ex);
    }
}
