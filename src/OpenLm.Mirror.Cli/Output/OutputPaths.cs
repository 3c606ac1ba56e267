using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Cli.Output;

/// <summary>
/// Every output path a command will write, checked before its first network request or long read, with one policy
/// (<see cref="AtomicFile.CheckTarget"/>): a late "cannot write" after an hour of pulling is the failure this prevents.
/// </summary>
internal static class OutputPaths
{
    /// <summary>Checks <paramref name="path"/> (null: nothing to check); errors are prefixed with <paramref name="flag"/>.</summary>
    public static void Check(string? path, string flag)
    {
        if (path is null)
        {
            return;
        }

        try
        {
            AtomicFile.CheckTarget(path);
        }
        catch (InputException ex)
        {
            throw new InputException($"{flag}: {ex.Message}", ex) { Subject = path };
        }
    }

    /// <summary>A bundle's name says how it is compressed: <c>.tar.zst</c> exactly when zstd is asked for.</summary>
    public static void CheckBundleName(string path, bool zstd)
    {
        var named = path.EndsWith(".tar.zst", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".tzst", StringComparison.OrdinalIgnoreCase);
        if (zstd && !named)
        {
            throw new InputException($"-o '{path}': --compress zstd writes a zstd bundle; name it {Path.ChangeExtension(path, null)}.tar.zst (or drop --compress zstd)");
        }

        if (!zstd && named)
        {
            throw new InputException($"-o '{path}' names a zstd bundle; add --compress zstd (or name it .tar)");
        }
    }
}
