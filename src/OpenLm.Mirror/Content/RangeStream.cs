namespace OpenLm.Mirror.Content;

/// <summary>A read-only window of <c>length</c> bytes starting at <c>offset</c> of a file.</summary>
public sealed class RangeStream(string path, long offset, long length) : WindowStream(OpenAt(path, offset), length)
{
    private static FileStream OpenAt(string path, long offset)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        try
        {
            file.Seek(offset, SeekOrigin.Begin);
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }
}
