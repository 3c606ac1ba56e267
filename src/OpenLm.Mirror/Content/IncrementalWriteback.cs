using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace OpenLm.Mirror.Content;

/// <summary>
/// Starts the kernel writing a file's dirty pages to disk while the file is still being written, every
/// <see cref="Interval"/> bytes (Linux <c>sync_file_range(SYNC_FILE_RANGE_WRITE)</c>, what RocksDB's
/// <c>bytes_per_sync</c> does). Without it a fresh file's pages sit in the page cache until the closing fsync, which
/// then writes the whole file while nothing else happens; with it the disk writes overlap the rest of the work and the
/// fsync waits for the tail only. It does not make anything durable by itself (the fsync still does), never waits for
/// the disk, and does nothing on other systems or where the call is refused.
/// </summary>
internal sealed class IncrementalWriteback(SafeFileHandle file, long interval = IncrementalWriteback.DefaultInterval)
{
    public const long DefaultInterval = 16L << 20;

    private const uint SyncFileRangeWrite = 2;
    private const int EINVAL = 22;
    private const int ESPIPE = 29;
    private const int ENOSYS = 38;

    private static volatile bool s_unavailable = !OperatingSystem.IsLinux();

    private long _next = interval;

    public long Interval { get; } = interval;

    /// <summary>How many times writeback was started (for tests).</summary>
    public int Started { get; private set; }

    /// <summary>
    /// Tells that the file now holds <paramref name="written"/> bytes (a count that only grows); past the next interval,
    /// starts writeback of every dirty page of the file (pages already being written or clean are skipped).
    /// </summary>
    public void Wrote(long written)
    {
        if (written < _next || s_unavailable || file.IsClosed)
        {
            return;
        }

        _next = written + Interval;
        // Offset 0, length 0: the whole file. Pages under writeback are not submitted again.
        if (SyncFileRange(file, 0, 0, SyncFileRangeWrite) != 0)
        {
            // No such call, or a file that does not take it: the fsync at the end does all the work, as before. Any other
            // error (EIO) is the fsync's to report.
            if (Marshal.GetLastPInvokeError() is ENOSYS or EINVAL or ESPIPE)
            {
                s_unavailable = true;
            }

            return;
        }

        Started++;
    }

    [DllImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int SyncFileRange(SafeFileHandle fd, long offset, long nbytes, uint flags);
}
