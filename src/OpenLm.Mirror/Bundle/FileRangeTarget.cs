using Microsoft.Win32.SafeHandles;
using OpenLm.Mirror.Content;

namespace OpenLm.Mirror.Bundle;

/// <summary>A bundle output that can take a blob's bytes straight from the cache's file (no user-space copy).</summary>
internal interface IFileRangeTarget
{
    /// <summary>Appends <paramref name="length"/> bytes of <paramref name="source"/> from <paramref name="sourceOffset"/> at the output's position.</summary>
    Task CopyFromFileAsync(SafeFileHandle source, long sourceOffset, long length, Action<long>? progress, CancellationToken ct);
}

/// <summary>A single bundle file: flushes what the stream buffered, copies the range at the file's position, moves past it.</summary>
internal sealed class FileStreamRangeTarget(FileStream file) : IFileRangeTarget
{
    public async Task CopyFromFileAsync(SafeFileHandle source, long sourceOffset, long length, Action<long>? progress, CancellationToken ct)
    {
        await file.FlushAsync(ct).ConfigureAwait(false);
        var at = file.Position;
        await Task.Run(() => FileRangeCopy.Copy(source, sourceOffset, file.SafeFileHandle, at, length, progress), ct).ConfigureAwait(false);
        file.Position = at + length;
    }
}
