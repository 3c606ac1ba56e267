using OpenLm.Mirror.Registry.Upload;
using Xunit;

namespace OpenLm.Mirror.Tests.Registries;

public sealed class UploadTuningTests
{
    [Fact]
    public void ChunkTooLarge_HalvesFrom16MiBDownTo256KiBThenGivesUp()
    {
        var tuning = new UploadTuning();
        tuning.MonolithicTooLarge();
        var sizes = new List<long> { tuning.ChunkBytes };
        while (tuning.ChunkTooLarge(tuning.ChunkBytes))
        {
            sizes.Add(tuning.ChunkBytes);
            if (sizes.Count > 20)
            {
                break;
            }
        }

        Assert.True(tuning.Chunked);
        Assert.Equal([16L << 20, 8L << 20, 4L << 20, 2L << 20, 1L << 20, 512L << 10, 256L << 10], sizes);
    }

    [Fact]
    public void ChunkTooLarge_EcrMinimum_NeverBelowFiveMiB()
    {
        var tuning = new UploadTuning { MinChunkBytes = 5L << 20 };

        Assert.True(tuning.ChunkTooLarge(16L << 20));
        Assert.Equal(8L << 20, tuning.ChunkBytes);
        Assert.True(tuning.ChunkTooLarge(8L << 20));
        Assert.Equal(5L << 20, tuning.ChunkBytes);
        Assert.False(tuning.ChunkTooLarge(5L << 20));
    }

    [Fact]
    public void ShouldExpectContinue_OnlyForBodiesBiggerThanAnyAccepted()
    {
        var tuning = new UploadTuning();
        Assert.False(tuning.ShouldExpectContinue(32 << 10));
        Assert.True(tuning.ShouldExpectContinue(2 << 20));

        tuning.Accepted(4 << 20);

        Assert.False(tuning.ShouldExpectContinue(2 << 20));
        Assert.True(tuning.ShouldExpectContinue(8 << 20));
    }
}
