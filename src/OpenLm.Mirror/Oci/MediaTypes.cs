namespace OpenLm.Mirror.Oci;

/// <summary>Media types the tool understands.</summary>
public static class MediaTypes
{
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";
    public const string DockerLayer = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    public const string DockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    public const string OciLayer = "application/vnd.oci.image.layer.v1.tar";
    public const string OciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string OciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    public const string OciEmpty = "application/vnd.oci.empty.v1+json";
    public const string HelmConfig = "application/vnd.cncf.helm.config.v1+json";
    public const string HelmChart = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

    /// <summary>The <c>Accept</c> list sent on manifest requests, most specific first.</summary>
    public static readonly IReadOnlyList<string> ManifestAccept =
    [
        OciIndex,
        OciManifest,
        DockerManifestList,
        DockerManifest,
    ];

    public static bool IsIndex(string? mediaType) => mediaType is OciIndex or DockerManifestList;

    public static bool IsImageManifest(string? mediaType) => mediaType is OciManifest or DockerManifest;

    public static bool IsManifest(string? mediaType) => IsIndex(mediaType) || IsImageManifest(mediaType);
}
