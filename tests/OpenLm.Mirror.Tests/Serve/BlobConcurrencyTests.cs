using Microsoft.AspNetCore.Http;
using Xunit;

namespace OpenLm.Mirror.Tests.Serve;

/// <summary>The blob stream limit, checked on the handler itself with response bodies the test holds back.</summary>
public sealed class BlobConcurrencyTests(ServeFixture fixture) : IClassFixture<ServeFixture>
{
    [Fact]
    public async Task Blobs_LimitOne_SecondWaitsUntilTheFirstStreamEnds()
    {
        // Given a registry allowing one blob stream, and a first blob whose client does not read yet
        await using var server = await fixture.StartAsync(null, [], maxBlobs: 1);
        var worker = fixture.Image("olm-worker").Manifests[0];
        var firstBody = new GatedStream();
        var first = server.Registry.HandleAsync(Blob($"/v2/r3q3q2f4/olm-worker/blobs/{worker.Layers[^1].Digest}", firstBody));
        await firstBody.FirstWrite.Task.WaitAsync(TimeSpan.FromSeconds(10));

        // When a second blob is asked for, it waits; a manifest is not held up by the limit
        var secondBody = new GatedStream { Open = true };
        var second = server.Registry.HandleAsync(Blob($"/v2/r3q3q2f4/olm-worker/blobs/{worker.ConfigDigest}", secondBody));
        await server.Registry.HandleAsync(Blob("/v2/r3q3q2f4/olm-worker/manifests/1.0.0", new GatedStream { Open = true }));
        await Task.Delay(300);
        Assert.False(second.IsCompleted);
        Assert.Equal(0, secondBody.Written);

        // Then releasing the first lets the second stream
        firstBody.Release();
        await first.WaitAsync(TimeSpan.FromSeconds(10));
        await second.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(worker.Layers[^1].Size, firstBody.Written);
        Assert.Equal(worker.ConfigSize, secondBody.Written);
    }

    private static DefaultHttpContext Blob(string path, Stream body)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Path = path;
        context.Response.Body = body;
        return context;
    }

    /// <summary>A response body whose writes wait until <see cref="Release"/> (or at once when <see cref="Open"/>).</summary>
    private sealed class GatedStream : Stream
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private long _written;

        public bool Open { get; init; }

        public TaskCompletionSource FirstWrite { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long Written => Interlocked.Read(ref _written);

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => Written;

        public override long Position { get => Written; set => throw new NotSupportedException(); }

        public void Release() => _gate.TrySetResult();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            FirstWrite.TrySetResult();
            if (!Open)
            {
                await _gate.Task.WaitAsync(cancellationToken);
            }

            Interlocked.Add(ref _written, buffer.Length);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
