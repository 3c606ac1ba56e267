using System.Security.Cryptography;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Tests.Core;
using Xunit;

namespace OpenLm.Mirror.Tests.Bundle;

public sealed class IncrementalWritebackTests
{
    [Fact]
    public async Task Wrote_AFileGrowingPastSeveralIntervals_StartsWritebackOncePerIntervalAndLeavesTheBytesAlone()
    {
        // Given a file written in 256 KiB pieces, told to a writeback with a 1 MiB interval
        using var directory = new TempDirectory();
        var path = directory.Sub("grow.bin");
        var data = RandomNumberGenerator.GetBytes(5 << 20);
        IncrementalWriteback writeback;
        await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
        {
            writeback = new IncrementalWriteback(file.SafeFileHandle, 1 << 20);
            for (var at = 0; at < data.Length; at += 256 << 10)
            {
                await file.WriteAsync(data.AsMemory(at, 256 << 10));
                await file.FlushAsync();
                writeback.Wrote(at + (256 << 10));
            }

            file.Flush(flushToDisk: true);
        }

        // Then writeback started at 1, 2, 3, 4 and 5 MiB on Linux (never elsewhere), and the file is what was written
        Assert.Equal(OperatingSystem.IsLinux() ? 5 : 0, writeback.Started);
        Assert.Equal(data, await File.ReadAllBytesAsync(path));
    }

    [Fact]
    public async Task Wrote_LessThanOneInterval_StartsNothing()
    {
        // Given a file that stays below the interval
        using var directory = new TempDirectory();
        await using var file = new FileStream(directory.Sub("small.bin"), FileMode.CreateNew, FileAccess.Write);
        var writeback = new IncrementalWriteback(file.SafeFileHandle, 1 << 20);

        // When 1 MiB less one byte has been written
        await file.WriteAsync(new byte[(1 << 20) - 1]);
        writeback.Wrote((1 << 20) - 1);

        // Then no writeback was started: small files are left to the closing fsync
        Assert.Equal(0, writeback.Started);
    }
}
