using System.Diagnostics;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.PlatformSpec.ChartSources;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.ChartsUpstream;

/// <summary>A resolve or export killed with -9 cannot dispose its chart downloads; the next run removes them.</summary>
public sealed class ChartDownloadDirectoryTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("openlm-chart-tmp-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void ChartDownloader_Start_RemovesTheDirectoryOfADeadProcess_AndKeepsALiveOnes()
    {
        // Given a download directory left by a process that has exited, and one of a process still running
        var deadPid = ExitedProcessId();
        var dead = Leftover($"openlm-charts-{deadPid}-0123456789abcdef");
        using var live = Process.Start(new ProcessStartInfo("sleep", "30") { UseShellExecute = false })!;
        var alive = Leftover($"openlm-charts-{live.Id}-fedcba9876543210");
        var unowned = Leftover("openlm-charts-0123456789abcdef0123456789abcdef");
        try
        {
            // When the next run starts downloading charts
            using var connector = new RegistryConnector(new RegistryOptions());
            string own;
            using (var downloads = new ChartDownloader(connector, NullMirrorLog.Instance, _root))
            {
                own = downloads.DirectoryPath;

                // Then the dead process's directory is gone, the live one's and one without an owner are untouched
                Assert.False(Directory.Exists(dead));
                Assert.True(File.Exists(Path.Combine(alive, "001-chart.tgz.partial")));
                Assert.True(File.Exists(Path.Combine(unowned, "001-chart.tgz.partial")));
                Assert.StartsWith($"openlm-charts-{Environment.ProcessId}-", Path.GetFileName(own), StringComparison.Ordinal);
                Assert.True(Directory.Exists(own));
            }

            // And its own directory goes on dispose
            Assert.False(Directory.Exists(own));
        }
        finally
        {
            live.Kill();
            live.WaitForExit();
        }
    }

    private string Leftover(string name)
    {
        var path = Directory.CreateDirectory(Path.Combine(_root, name)).FullName;
        File.WriteAllText(Path.Combine(path, "001-chart.tgz.partial"), "half a chart");
        return path;
    }

    private static int ExitedProcessId()
    {
        using var process = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        process.WaitForExit();
        return process.Id;
    }
}
