namespace OpenLm.Mirror.Errors;

/// <summary>
/// What the caller can change to get past a failure. The library states the fix in its own words and names it here;
/// a front end (the CLI) turns it into the switch that does it, so no library message has to know a flag.
/// </summary>
public enum Remedy
{
    /// <summary>No particular change is suggested.</summary>
    None = 0,

    /// <summary>Give registry credentials for <see cref="MirrorException.Subject"/> (the registry host).</summary>
    Credentials,

    /// <summary>Trust the CA that issued the registry's certificate (or, not recommended, skip TLS verification).</summary>
    TrustCaFile,

    /// <summary>Talk plain HTTP to a registry that does not serve HTTPS.</summary>
    PlainHttp,

    /// <summary>Talk TLS (HTTPS) to a registry that was reached with plain HTTP but serves HTTPS.</summary>
    DropPlainHttp,

    /// <summary>Give the release public key so the signature can be checked.</summary>
    ReleaseKey,

    /// <summary>Give the release public key, or opt out of the signature check explicitly.</summary>
    ReleaseKeyOrUnsignedOptOut,

    /// <summary>The signature check was skipped because the caller opted out explicitly (a warning's cause, not a fix).</summary>
    UnsignedOptOut,

    /// <summary>Allow overwriting the existing output named by <see cref="MirrorException.Subject"/>.</summary>
    Overwrite,

    /// <summary>Add a name-mapping rule (FROM=TO) so the images get distinct or non-empty names.</summary>
    NameMapRule,

    /// <summary>Choose the platform explicitly.</summary>
    Platform,

    /// <summary>Choose a temporary directory on a file system with more free space.</summary>
    TempDirectory,

    /// <summary>Give the right Docker engine address (or start the engine).</summary>
    EngineAddress,

    /// <summary>Give the earlier bundle file(s) a delta bundle was made against.</summary>
    BaseBundle,

    /// <summary>Give the HTTP proxy's user and password (in the proxy URL) for the proxy <see cref="MirrorException.Subject"/>.</summary>
    ProxyCredentials,
}

/// <summary>
/// The caller-supplied setting an input error is about. The library names the setting; a front end names the flag or
/// field it came from.
/// </summary>
public enum Setting
{
    /// <summary>The error is not about one setting.</summary>
    None = 0,

    /// <summary><see cref="Registry.RegistryOptions.CaFile"/>.</summary>
    CaFile,

    /// <summary>A name-mapping rule (FROM=TO).</summary>
    NameMap,

    /// <summary>The Docker engine address.</summary>
    DockerHost,

    /// <summary>The values file to rewrite.</summary>
    ValuesInput,

    /// <summary>Where the Helm values are written.</summary>
    ValuesOutput,

    /// <summary>Where the k3s/RKE2 registries.yaml is written.</summary>
    K3sRegistriesOutput,

    /// <summary>Where the containerd hosts.toml tree is written.</summary>
    ContainerdHostsDirectory,

    /// <summary>Which of the bundle's top-level charts (Helm releases) the values are for.</summary>
    ValuesChart,

    /// <summary>Where the bundle's chart archives (.tgz) are written.</summary>
    ChartOutputDirectory,

    /// <summary>Where the node image archive is written.</summary>
    NodeArchiveOutput,

    /// <summary>The registry the bundle was imported into.</summary>
    Target,

    /// <summary>The largest part of a bundle split over several files.</summary>
    SplitSize,

    /// <summary>How the bundle is compressed.</summary>
    Compression,

    /// <summary>The most path components a target repository may have.</summary>
    MaxPathComponents,

    /// <summary>A pull-through mirror rule (SOURCE=MIRROR[/prefix]).</summary>
    RegistryMirror,
}
