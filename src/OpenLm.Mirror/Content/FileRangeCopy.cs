using System.Buffers;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace OpenLm.Mirror.Content;

/// <summary>How <see cref="FileRangeCopy"/> moved the bytes of one range.</summary>
public enum FileCopyMethod
{
    /// <summary><c>copy_file_range</c>: in the kernel (a reflink on XFS/btrfs, a page-cache copy elsewhere).</summary>
    Kernel,

    /// <summary>Positional reads and writes through a user-space buffer (other systems, or the kernel refused).</summary>
    Stream,
}

/// <summary>
/// Copies a byte range from one open file into another at a given offset without a user-space copy where the
/// system can: Linux <c>copy_file_range</c>, which clones extents on file systems that share them (XFS, btrfs) when
/// both offsets are block-aligned and copies in the kernel otherwise. When the kernel refuses (<c>EXDEV</c> before
/// Linux 5.3 or across some file systems, <c>ENOSYS</c>, <c>EINVAL</c>, <c>EOPNOTSUPP</c>), and on other systems, the
/// range is copied with positional reads and writes instead. Neither file's position is used or changed.
/// </summary>
public static class FileRangeCopy
{
    private const int BufferSize = 1 << 20;
    private const long KernelChunk = 8L << 20;

    // errno values (Linux, all architectures .NET runs on).
    private const int EINTR = 4;
    private const int EBADF = 9;
    private const int EAGAIN = 11;
    private const int EXDEV = 18;
    private const int EINVAL = 22;
    private const int ETXTBSY = 26;
    private const int ENOSYS = 38;
    private const int EOPNOTSUPP = 95;

    /// <summary>Set once the kernel refused for a reason that holds for the whole process (no such call).</summary>
    private static volatile bool s_kernelUnavailable = !OperatingSystem.IsLinux();

    /// <summary>For tests: pretends the kernel path is not there, so the stream fallback is what runs.</summary>
    internal static bool ForceStreamFallback { get; set; }

    /// <summary>
    /// Copies <paramref name="length"/> bytes from <paramref name="source"/> at <paramref name="sourceOffset"/> to
    /// <paramref name="destination"/> at <paramref name="destinationOffset"/>. <paramref name="progress"/>, when given,
    /// receives the byte count of each piece as it lands. Throws <see cref="EndOfStreamException"/> when the source
    /// ends before the range does.
    /// </summary>
    public static FileCopyMethod Copy(SafeFileHandle source, long sourceOffset, SafeFileHandle destination, long destinationOffset, long length, Action<long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentOutOfRangeException.ThrowIfNegative(sourceOffset);
        ArgumentOutOfRangeException.ThrowIfNegative(destinationOffset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);

        long done = 0;
        if (!s_kernelUnavailable && !ForceStreamFallback)
        {
            done = KernelCopy(source, sourceOffset, destination, destinationOffset, length, progress);
            if (done == length)
            {
                return FileCopyMethod.Kernel;
            }
        }

        StreamCopy(source, sourceOffset + done, destination, destinationOffset + done, length - done, progress);
        return FileCopyMethod.Stream;
    }

    /// <summary>What the kernel copied before it finished or refused; the caller copies the rest another way.</summary>
    private static long KernelCopy(SafeFileHandle source, long sourceOffset, SafeFileHandle destination, long destinationOffset, long length, Action<long>? progress)
    {
        var inOffset = sourceOffset;
        var outOffset = destinationOffset;
        long done = 0;
        while (done < length)
        {
            // 8 MiB a call (a multiple of any block size, so clones stay possible): progress stays fine-grained.
            var chunk = (nuint)Math.Min(length - done, KernelChunk);
            nint n;
            try
            {
                n = CopyFileRange(source, ref inOffset, destination, ref outOffset, chunk, 0);
            }
            catch (EntryPointNotFoundException)
            {
                s_kernelUnavailable = true; // a libc without the wrapper (glibc < 2.27)
                return done;
            }
            catch (DllNotFoundException)
            {
                s_kernelUnavailable = true;
                return done;
            }

            if (n > 0)
            {
                done += n;
                progress?.Invoke(n);
                continue;
            }

            if (n == 0)
            {
                // The source ended early: a short source is the stream copy's to report.
                return done;
            }

            var errno = Marshal.GetLastPInvokeError();
            switch (errno)
            {
                case EINTR or EAGAIN:
                    continue;
                case ENOSYS:
                    s_kernelUnavailable = true;
                    return done;
                case EXDEV or EINVAL or EOPNOTSUPP or EBADF or ETXTBSY:
                    // This pair of files (file systems, flags, an fd the kernel will not use): copy them another way.
                    return done;
                default:
                    throw new IOException($"copy_file_range failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
            }
        }

        return done;
    }

    private static void StreamCopy(SafeFileHandle source, long sourceOffset, SafeFileHandle destination, long destinationOffset, long length, Action<long>? progress)
    {
        if (length == 0)
        {
            return;
        }

        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(BufferSize, length));
        try
        {
            long done = 0;
            while (done < length)
            {
                var want = (int)Math.Min(buffer.Length, length - done);
                var n = RandomAccess.Read(source, buffer.AsSpan(0, want), sourceOffset + done);
                if (n == 0)
                {
                    throw new EndOfStreamException($"the source file ended {length - done} bytes before the range to copy did");
                }

                RandomAccess.Write(destination, buffer.AsSpan(0, n), destinationOffset + done);
                done += n;
                progress?.Invoke(n);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    [DllImport("libc", EntryPoint = "copy_file_range", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern nint CopyFileRange(SafeFileHandle fdIn, ref long offIn, SafeFileHandle fdOut, ref long offOut, nuint length, uint flags);
}
