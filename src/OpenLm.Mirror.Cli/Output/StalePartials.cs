using OpenLm.Mirror.Diagnostics;

namespace OpenLm.Mirror.Cli.Output;

/// <summary>
/// Removes <c>NAME.partial-*</c> files that earlier runs killed outright (SIGKILL, power loss) left beside an output:
/// each is a whole bundle's worth of disk. A partial another run is still writing is kept: its writer holds it open,
/// and the exclusive open here fails (on Unix .NET takes an flock for every open file).
/// </summary>
internal static class StalePartials
{
    public static void Remove(string outputPath, IMirrorLog log)
    {
        var full = Path.GetFullPath(outputPath);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir))
        {
            return;
        }

        foreach (var partial in Directory.EnumerateFiles(dir, Path.GetFileName(full) + ".partial-*"))
        {
            try
            {
                long size;
                using (var probe = new FileStream(partial, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                {
                    size = probe.Length;
                }

                File.Delete(partial);
                log.Info($"removed {partial} ({Format.Bytes(size)}), left by an interrupted run");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                log.Debug($"kept {partial}: {ex.Message} (another run may be writing it)");
            }
        }
    }
}
