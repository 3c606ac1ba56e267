namespace OpenLm.Mirror.TestKit;

/// <summary>Media types emitted by the generator (kept local on purpose: no dependency on the product library).</summary>
public static class MediaTypes
{
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";
    public const string DockerLayer = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    public const string OciLayer = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string OciEmpty = "application/vnd.oci.empty.v1+json";

    public const string HelmConfig = "application/vnd.cncf.helm.config.v1+json";
    public const string HelmChartContent = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

    /// <summary>artifactType of the generic test artifact.</summary>
    public const string TestArtifact = "application/vnd.openlm.test.artifact.v1";
    /// <summary>Layer media type of the generic test artifact's payload (raw random bytes, not a tar).</summary>
    public const string TestArtifactPayload = "application/vnd.openlm.test.payload.v1";

    /// <summary>The OCI empty descriptor's content (<c>{}</c>), its digest and size.</summary>
    public const string EmptyJsonDigest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    public const long EmptyJsonSize = 2;

    public static bool IsIndex(string mediaType) => mediaType is DockerManifestList or OciIndex;
}
