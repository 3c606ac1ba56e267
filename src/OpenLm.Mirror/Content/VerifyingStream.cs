using System.Security.Cryptography;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Content;

/// <summary>A pass-through stream (progress counting, say) over a <see cref="VerifyingStream"/>: a push reads through it and checks the verifier.</summary>
public interface IVerifiedSource
{
    /// <summary>The verifier every byte read from this stream passed through.</summary>
    VerifyingStream? Verifier { get; }
}

/// <summary>
/// Wraps an untrusted stream: hashes bytes as they pass, refuses to read past the expected size, and
/// throws <see cref="IntegrityException"/> at end of stream when size or digest differ. Every fetched
/// blob passes through exactly one of these.
/// </summary>
public sealed class VerifyingStream : Stream
{
    private readonly Stream _untrusted;
    private readonly Descriptor _expected;
    private readonly IncrementalHash _hash;
    private readonly string _source;
    private readonly bool _leaveOpen;
    private readonly Action<Descriptor>? _onVerified;
    private long _position;
    private bool _verified;

    /// <param name="untrusted">The bytes as they come from their source (a socket, a file, a tar entry).</param>
    /// <param name="expected">The descriptor they must match.</param>
    /// <param name="source">Names the source in error messages.</param>
    /// <param name="leaveOpen">Leave <paramref name="untrusted"/> open on dispose.</param>
    /// <param name="onVerified">Called once, when the whole content matched (e.g. a source recording what it has proven).</param>
    public VerifyingStream(Stream untrusted, Descriptor expected, string source, bool leaveOpen = false, Action<Descriptor>? onVerified = null)
    {
        _untrusted = untrusted;
        _expected = expected;
        _source = source;
        _leaveOpen = leaveOpen;
        _onVerified = onVerified;
        _hash = IncrementalHash.CreateHash(expected.Digest.HashAlgorithm);
    }

    /// <summary>
    /// How a store's push reads <paramref name="content"/>: through the stream's own verifier when it already is (or
    /// wraps, see <see cref="IVerifiedSource"/>) a verifier of this very content, so a copy hashes each blob once, at its
    /// fetch; otherwise through a new verifier (content from anywhere else is untrusted). Read from
    /// <see cref="PushContent.Stream"/>, check <see cref="PushContent.Verifier"/>, and dispose the result.
    /// </summary>
    public static PushContent Ensure(Stream content, Descriptor expected, string source)
    {
        ArgumentNullException.ThrowIfNull(content);
        var existing = content as VerifyingStream ?? (content as IVerifiedSource)?.Verifier;
        if (existing is not null && existing.Expected.SameContent(expected) && existing.BytesRead == 0)
        {
            return new PushContent(content, existing, owned: false);
        }

        var verifier = new VerifyingStream(content, expected, source, leaveOpen: true);
        return new PushContent(verifier, verifier, owned: true);
    }

    /// <summary>The descriptor the content must match.</summary>
    public Descriptor Expected => _expected;

    /// <summary>True once the whole content was read and matched.</summary>
    public bool Verified => _verified;

    public long BytesRead => _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => _expected.Size;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            // A zero-length read says nothing about the end of the content.
            return 0;
        }

        var limited = Limit(buffer);
        var n = _untrusted.Read(limited);
        if (n == 0 && limited.Length == 0 && buffer.Length > 0 && _untrusted.Read(new byte[1]) > 0)
        {
            throw new IntegrityException($"{_source}: {_expected.Digest} is longer than its declared size {_expected.Size}");
        }

        return Account(buffer[..n], n);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }

        var limited = LimitMemory(buffer);
        var n = await _untrusted.ReadAsync(limited, cancellationToken).ConfigureAwait(false);
        if (n == 0 && _position == _expected.Size && limited.Length == 0 && buffer.Length > 0)
        {
            // We stopped at the expected size; make sure the source has nothing more.
            n = await ProbeForExtraAsync(cancellationToken).ConfigureAwait(false);
        }

        return Account(buffer.Span[..n], n);
    }

    private async ValueTask<int> ProbeForExtraAsync(CancellationToken cancellationToken)
    {
        var probe = new byte[1];
        var extra = await _untrusted.ReadAsync(probe, cancellationToken).ConfigureAwait(false);
        if (extra > 0)
        {
            throw new IntegrityException($"{_source}: {_expected.Digest} is longer than its declared size {_expected.Size}");
        }

        return 0;
    }

    private Span<byte> Limit(Span<byte> buffer)
    {
        var remaining = _expected.Size - _position;
        return remaining < buffer.Length ? buffer[..(int)Math.Max(remaining, 0)] : buffer;
    }

    private Memory<byte> LimitMemory(Memory<byte> buffer)
    {
        var remaining = _expected.Size - _position;
        return remaining < buffer.Length ? buffer[..(int)Math.Max(remaining, 0)] : buffer;
    }

    private int Account(ReadOnlySpan<byte> data, int n)
    {
        if (n > 0)
        {
            _hash.AppendData(data);
            _position += n;
            return n;
        }

        Finish();
        return 0;
    }

    private void Finish()
    {
        if (_verified)
        {
            return;
        }

        if (_position != _expected.Size)
        {
            throw new IntegrityException($"{_source}: {_expected.Digest} ended after {_position} bytes, expected {_expected.Size}");
        }

        var actual = Digest.FromHash(_expected.Digest.Algorithm, _hash.GetHashAndReset());
        if (actual != _expected.Digest)
        {
            throw new IntegrityException($"{_source}: digest mismatch: expected {_expected.Digest}, content hashes to {actual}");
        }

        _verified = true;
        _onVerified?.Invoke(_expected);
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
            _hash.Dispose();
            if (!_leaveOpen)
            {
                _untrusted.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        _hash.Dispose();
        if (!_leaveOpen)
        {
            await _untrusted.DisposeAsync().ConfigureAwait(false);
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>What <see cref="VerifyingStream.Ensure"/> gives a push: the stream to read and the verifier to check at the end.</summary>
public readonly struct PushContent : IAsyncDisposable
{
    private readonly bool _owned;

    internal PushContent(Stream stream, VerifyingStream verifier, bool owned)
    {
        Stream = stream;
        Verifier = verifier;
        _owned = owned;
    }

    /// <summary>Read the content from here.</summary>
    public Stream Stream { get; }

    /// <summary>True at the end of <see cref="Stream"/> only if size and digest matched.</summary>
    public VerifyingStream Verifier { get; }

    /// <summary>Disposes the verifier if <see cref="VerifyingStream.Ensure"/> created it (never the caller's stream).</summary>
    public ValueTask DisposeAsync() => _owned ? Verifier.DisposeAsync() : ValueTask.CompletedTask;
}
