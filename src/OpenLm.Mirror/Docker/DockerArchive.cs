using System.Text.Json;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.EngineLoad;

/// <summary>One file of a <see cref="DockerArchive"/>: a layer or config spooled to disk.</summary>
/// <param name="Name">The entry name, e.g. <c>&lt;hex&gt;/layer.tar</c>.</param>
/// <param name="Path">The file on disk.</param>
/// <param name="Size">Its exact length.</param>
public sealed record DockerArchiveFile(string Name, string Path, long Size);

/// <summary>One <c>manifest.json</c> entry: an image (config and layers) and the tags it gets.</summary>
/// <param name="Config">The config file (<c>&lt;hex&gt;.json</c>).</param>
/// <param name="RepoTags">Tags, <c>repository:tag</c>.</param>
/// <param name="Layers">Layer files, base first.</param>
public sealed record DockerArchiveImage(DockerArchiveFile Config, IReadOnlyList<string> RepoTags, IReadOnlyList<DockerArchiveFile> Layers);

/// <summary>
/// The <c>docker save</c> layout that <c>docker load</c> reads on every engine version (Docker 20.10 does not read
/// OCI archives): <c>manifest.json</c> (<c>[{"Config":"&lt;hex&gt;.json","RepoTags":[…],"Layers":["&lt;hex&gt;/layer.tar",…]}]</c>),
/// each config, and one file per layer (gzip-compressed or plain tar; the engine detects the compression). Files shared
/// by several images are stored once. The archive is produced on demand by <see cref="OpenRead"/>, never in memory.
/// </summary>
public sealed class DockerArchive
{
    public const string ManifestEntry = "manifest.json";

    public DockerArchive(IReadOnlyList<DockerArchiveImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        Images = images;
        var files = new List<DockerArchiveFile>();
        var byName = new Dictionary<string, DockerArchiveFile>(StringComparer.Ordinal);
        foreach (var file in images.SelectMany(i => i.Layers.Prepend(i.Config)))
        {
            if (byName.TryGetValue(file.Name, out var known))
            {
                if (known.Size != file.Size || known.Path != file.Path)
                {
                    throw new ArgumentException($"archive entry '{file.Name}' is given twice with different content", nameof(images));
                }

                continue;
            }

            byName[file.Name] = file;
            files.Add(file);
        }

        ManifestJson = BuildManifest(images);
        Files = files;
        Length = TarHeaders.EntryLength(ManifestEntry, ManifestJson.Length)
            + files.Sum(f => TarHeaders.EntryLength(f.Name, f.Size))
            + TarHeaders.EndOfArchive.Length;
    }

    public IReadOnlyList<DockerArchiveImage> Images { get; }

    /// <summary>The <c>manifest.json</c> bytes.</summary>
    public byte[] ManifestJson { get; }

    /// <summary>Every file after <c>manifest.json</c>, each once, in archive order.</summary>
    public IReadOnlyList<DockerArchiveFile> Files { get; }

    /// <summary>The exact length of the tar stream.</summary>
    public long Length { get; }

    /// <summary>The entry name of a config: <c>&lt;hex&gt;.json</c>.</summary>
    public static string ConfigName(Digest digest) => digest.Hex + ".json";

    /// <summary>The entry name of a layer: <c>&lt;hex&gt;/layer.tar</c> (hex of the blob digest).</summary>
    public static string LayerName(Digest digest) => digest.Hex + "/layer.tar";

    /// <summary>A fresh read-only stream producing the tar: <c>manifest.json</c>, then every file.</summary>
    public Stream OpenRead() => new ArchiveStream(this);

    private static byte[] BuildManifest(IReadOnlyList<DockerArchiveImage> images)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            foreach (var image in images)
            {
                w.WriteStartObject();
                w.WriteString("Config", image.Config.Name);
                w.WriteStartArray("RepoTags");
                foreach (var tag in image.RepoTags)
                {
                    w.WriteStringValue(tag);
                }

                w.WriteEndArray();
                w.WriteStartArray("Layers");
                foreach (var layer in image.Layers)
                {
                    w.WriteStringValue(layer.Name);
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        return buffer.ToArray();
    }

    /// <summary>Produces the tar entry by entry as it is read: header, data (from memory or the spooled file), padding.</summary>
    private sealed class ArchiveStream(DockerArchive archive) : Stream
    {
        private static readonly byte[] Zeros = new byte[TarHeaders.BlockSize];
        private readonly Queue<Segment> _segments = BuildSegments(archive);
        private Segment? _current;
        private long _offset;
        private FileStream? _file;
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => archive.Length;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (buffer.Length > 0 && NextSegment() is { } segment)
            {
                int n;
                if (segment.Path is null)
                {
                    n = CopyBytes(segment, buffer);
                }
                else
                {
                    n = OpenFile(segment).Read(buffer[..(int)Math.Min(buffer.Length, segment.Length - _offset)]);
                    CheckFileRead(segment, n);
                }

                return Advance(n);
            }

            return 0;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (buffer.Length > 0 && NextSegment() is { } segment)
            {
                int n;
                if (segment.Path is null)
                {
                    n = CopyBytes(segment, buffer.Span);
                }
                else
                {
                    n = await OpenFile(segment).ReadAsync(buffer[..(int)Math.Min(buffer.Length, segment.Length - _offset)], cancellationToken).ConfigureAwait(false);
                    CheckFileRead(segment, n);
                }

                return Advance(n);
            }

            return 0;
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _file?.Dispose();
                _file = null;
            }

            base.Dispose(disposing);
        }

        private static Queue<Segment> BuildSegments(DockerArchive archive)
        {
            var segments = new Queue<Segment>();
            void Add(string name, byte[]? bytes, string? path, long size)
            {
                var header = TarHeaders.RegularFile(name, size, 0);
                segments.Enqueue(new Segment(header, null, header.Length));
                if (size > 0)
                {
                    segments.Enqueue(new Segment(bytes, path, size));
                }

                var padding = TarHeaders.Padding(size);
                if (padding > 0)
                {
                    segments.Enqueue(new Segment(Zeros, null, padding));
                }
            }

            Add(ManifestEntry, archive.ManifestJson, null, archive.ManifestJson.Length);
            foreach (var file in archive.Files)
            {
                Add(file.Name, null, file.Path, file.Size);
            }

            segments.Enqueue(new Segment(TarHeaders.EndOfArchive, null, TarHeaders.EndOfArchive.Length));
            return segments;
        }

        private Segment? NextSegment()
        {
            while (_current is null || _offset == _current.Length)
            {
                _file?.Dispose();
                _file = null;
                _offset = 0;
                if (!_segments.TryDequeue(out _current))
                {
                    _current = null;
                    return null;
                }
            }

            return _current;
        }

        private int CopyBytes(Segment segment, Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, segment.Length - _offset);
            segment.Bytes.AsSpan((int)_offset, n).CopyTo(buffer);
            return n;
        }

        private FileStream OpenFile(Segment segment)
        {
            if (_file is null)
            {
                _file = new FileStream(segment.Path!, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
                if (_file.Length != segment.Length)
                {
                    throw new IOException($"spooled file '{segment.Path}' is {_file.Length} bytes, expected {segment.Length}");
                }
            }

            return _file;
        }

        private static void CheckFileRead(Segment segment, int read)
        {
            if (read == 0)
            {
                throw new IOException($"spooled file '{segment.Path}' ended early");
            }
        }

        private int Advance(int n)
        {
            _offset += n;
            _position += n;
            return n;
        }

        /// <summary>A run of bytes: from <see cref="Bytes"/> (from offset 0), or from the file at <see cref="Path"/>.</summary>
        private sealed record Segment(byte[]? Bytes, string? Path, long Length);
    }
}
