namespace OpenLm.Mirror.TestKit;

/// <summary>Content-addressed <c>blobs/sha256/&lt;hex&gt;</c> directory (the blob part of an OCI layout).</summary>
internal sealed class BlobStore
{
    private readonly string _tempDir;

    public BlobStore(string root)
    {
        Root = Path.GetFullPath(root);
        BlobDir = Path.Combine(Root, "blobs", "sha256");
        _tempDir = Path.Combine(Root, ".testkit-tmp");
        Directory.CreateDirectory(BlobDir);
        Directory.CreateDirectory(_tempDir);
    }

    public string Root { get; }
    public string BlobDir { get; }

    public string PathFor(string digest) => Path.Combine(BlobDir, Digests.Hex(digest));

    public string NewTempPath() => Path.Combine(_tempDir, Guid.NewGuid().ToString("N"));

    /// <summary>Moves a fully written temp file to its content address (drops it if that blob already exists).</summary>
    public void Commit(string tempPath, string digest)
    {
        var final = PathFor(digest);
        try
        {
            File.Move(tempPath, final, overwrite: true);
        }
        catch (IOException) when (File.Exists(final))
        {
            File.Delete(tempPath);
        }
    }

    public (string Digest, long Size) Write(byte[] content)
    {
        var digest = Digests.Of(content);
        var final = PathFor(digest);
        if (File.Exists(final) && new FileInfo(final).Length == content.Length) return (digest, content.Length);
        var temp = NewTempPath();
        File.WriteAllBytes(temp, content);
        Commit(temp, digest);
        return (digest, content.Length);
    }

    public void DeleteTemp()
    {
        try { Directory.Delete(_tempDir, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }
}
