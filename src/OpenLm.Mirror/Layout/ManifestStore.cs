using System.Text;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Layout;

/// <summary>
/// Manifests (and indexes) already fetched and verified, kept by digest beside an export cache
/// (<c>&lt;cache&gt;/.openlm-manifests/sha256/&lt;hex&gt;</c>) so the next step of a release does not ask the registry for
/// them again: resolve fetches every manifest of the release, export needs the same ones, and against ECR Public's
/// 1 request/s anonymous quota each saved GET is a second. Kept apart from the layout's <c>blobs/</c> on purpose: there,
/// a stored manifest means its children are stored too. Every read is hashed again; a file whose bytes do not match
/// its name is deleted and treated as absent, so a store can be trusted exactly as far as a registry.
/// </summary>
public sealed class ManifestStore
{
    public const string DirectoryName = ".openlm-manifests";

    public ManifestStore(string root)
    {
        Root = Path.GetFullPath(root);
    }

    public string Root { get; }

    /// <summary>The store of the export cache <paramref name="cacheDirectory"/> (which need not be a layout yet).</summary>
    public static ManifestStore In(string cacheDirectory) => new(Path.Combine(cacheDirectory, DirectoryName));

    /// <summary>The store beside the cache layout <paramref name="cache"/>.</summary>
    public static ManifestStore Beside(OciLayoutStore cache) => In(cache.Root);

    /// <summary>The stored manifest <paramref name="digest"/> (its media type and bytes, verified), or null.</summary>
    public (string MediaType, byte[] Bytes)? TryGet(Digest digest)
    {
        var path = PathOf(digest);
        byte[] file;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists || info.Length > ManifestDocument.MaxManifestBytes + 256)
            {
                return null;
            }

            file = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        var newline = Array.IndexOf(file, (byte)'\n');
        var bytes = newline < 0 ? null : file.AsSpan(newline + 1).ToArray();
        if (bytes is null || Digest.Sha256(bytes) != digest)
        {
            TryDelete(path);
            return null;
        }

        return (Encoding.UTF8.GetString(file, 0, newline), bytes);
    }

    /// <summary>Keeps a manifest the caller verified against <paramref name="digest"/> (checked again here).</summary>
    public void Put(Digest digest, string mediaType, ReadOnlySpan<byte> bytes)
    {
        if (Digest.Sha256(bytes) != digest)
        {
            throw new ArgumentException($"the bytes given for {digest} do not have that digest", nameof(bytes));
        }

        if (mediaType.Contains('\n', StringComparison.Ordinal))
        {
            throw new ArgumentException("a media type has no line breaks", nameof(mediaType));
        }

        var path = PathOf(digest);
        if (File.Exists(path))
        {
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var header = Encoding.UTF8.GetBytes(mediaType + "\n");
        var content = new byte[header.Length + bytes.Length];
        header.CopyTo(content, 0);
        bytes.CopyTo(content.AsSpan(header.Length));
        AtomicFile.WriteAllBytes(path, content);
    }

    private string PathOf(Digest digest) => Path.Combine(Root, digest.Algorithm, digest.Hex);

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }
}
