namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>A user the registry accepts with HTTP basic auth (stored bcrypt-hashed in an htpasswd file).</summary>
public sealed record RegistryUser(string Username, string Password);

/// <summary>PEM-encoded server certificate and private key the registry serves HTTPS with.</summary>
/// <remarks>Use <see cref="TlsCertificates.ToRegistryTls"/> to get one signed by a test CA.</remarks>
public sealed record RegistryTls(byte[] CertificatePem, byte[] PrivateKeyPem);

/// <summary>How a <see cref="RegistryContainer"/> is configured. The defaults give a plain HTTP,
/// anonymous registry on 127.0.0.1 and a free port.</summary>
public sealed record RegistryContainerOptions
{
    /// <summary>The loopback address the registry listens on: 127.0.0.1 (default) or another
    /// address of 127.0.0.0/8 such as 127.0.0.2 when a test needs a second "host".</summary>
    public string BindAddress { get; init; } = "127.0.0.1";

    /// <summary>When non-empty the registry requires basic auth (htpasswd) for these users.</summary>
    public IReadOnlyList<RegistryUser> Users { get; init; } = [];

    /// <summary>The basic-auth realm announced in <c>WWW-Authenticate</c> when <see cref="Users"/> is set.</summary>
    public string Realm { get; init; } = "openlm-mirror-test";

    /// <summary>When set the registry serves HTTPS with this certificate instead of HTTP.</summary>
    public RegistryTls? Tls { get; init; }

    /// <summary>Extra <c>REGISTRY_*</c> environment variables (override any config.yml key).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>The image to run (built by <c>scripts/build-registry-image.sh</c>).</summary>
    public string Image { get; init; } = RegistryContainer.DefaultImage;

    /// <summary>How long to wait for the registry to be ready after a start or restart.</summary>
    public TimeSpan StartupTimeout { get; init; } = TimeSpan.FromSeconds(60);
}
