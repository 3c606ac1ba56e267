using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Content;

/// <summary>Writes a file by writing a sibling temporary file, flushing it to disk and renaming it over the target.</summary>
public static class AtomicFile
{
    /// <summary>
    /// The one policy for every output file, applied before any work starts and again when writing: the directory
    /// exists or is created, is writable, and the path is not a directory, device, FIFO or socket (a rename over
    /// <c>/dev/null</c> would replace the machine's device with a regular file). Errors name <paramref name="path"/>.
    /// </summary>
    public static void CheckTarget(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            throw new InputException($"'{path}' is a directory; give a file name (e.g. {Path.Combine(path, "out")})") { Subject = path };
        }

        if (UnixFileType.IsSpecial(full) is { } kind)
        {
            throw new InputException($"'{path}' is a {kind}, not a regular file; it is never replaced: give the path of a file") { Subject = path };
        }

        var dir = Path.GetDirectoryName(full)!;
        var probe = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.probe");
        try
        {
            Directory.CreateDirectory(dir);
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"cannot write '{path}': {Reason(ex, probe, dir)}", ex) { Subject = path };
        }
    }

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> content)
    {
        CheckTarget(path);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                file.Write(content);
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The user's path, not the temporary file's, and the reason in plain words.
            throw new OperationException($"cannot write '{path}': {Reason(ex, temp, dir)}", ex) { Subject = path };
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    private static string Reason(Exception ex, string temporary, string directory) => ex switch
    {
        UnauthorizedAccessException => $"permission denied in {directory}",
        _ => ex.Message.Replace(temporary, directory, StringComparison.Ordinal),
    };

    public static Task WriteAllTextAsync(string path, string content)
    {
        WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(content));
        return Task.CompletedTask;
    }
}

/// <summary>The file type of a path on Unix (statx: the same structure layout on every architecture).</summary>
internal static class UnixFileType
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;
    private const int ModeOffset = 28;

    /// <summary>"device", "FIFO" or "socket" when <paramref name="path"/> exists (links followed) and is one; else null.</summary>
    public static string? IsSpecial(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var buffer = new byte[256];
        if (Statx(AtFdCwd, path, 0, StatxType, buffer) != 0)
        {
            return null; // Missing (or not inspectable): the write itself reports what is wrong.
        }

        var type = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(ModeOffset)) & 0xF000;
        return type switch
        {
            0x2000 or 0x6000 => "device",
            0x1000 => "FIFO",
            0xC000 => "socket",
            _ => null,
        };
    }

    // A byte[] of a blittable type is pinned and passed as a pointer: no unsafe code needed for the out buffer.
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "statx", SetLastError = false)]
    [System.Runtime.InteropServices.DefaultDllImportSearchPaths(System.Runtime.InteropServices.DllImportSearchPath.SafeDirectories)]
    private static extern int Statx(int directory, [System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, [System.Runtime.InteropServices.Out] byte[] buffer);
}

/// <summary>An exclusive lock held through an open file (works across processes).</summary>
public sealed class FileLock : IDisposable
{
    private readonly FileStream _stream;

    private FileLock(FileStream stream) => _stream = stream;

    public static async Task<FileLock> AcquireAsync(string path, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                return new FileLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None));
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public void Dispose() => _stream.Dispose();
}
