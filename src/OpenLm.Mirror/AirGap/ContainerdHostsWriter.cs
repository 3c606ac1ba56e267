using System.Text;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.AirGap;

/// <summary>One <c>hosts.toml</c>: <see cref="Directory"/> is the registry host namespace directory under containerd's
/// <c>config_path</c> (<c>docker.io</c>, <c>registry.corp_5000_</c>).</summary>
public sealed record ContainerdHostsFile(string Directory, string Content)
{
    public const string FileName = "hosts.toml";

    /// <summary><c>Directory/hosts.toml</c>.</summary>
    public string RelativePath => $"{Directory}/{FileName}";
}

/// <summary>
/// The containerd hosts configuration for a bundle. <see cref="NotRedirected"/> lists images whose target name a
/// containerd mirror cannot produce (containerd can only put a path prefix in front of the upstream repository, not
/// rename it): pods must name those images by their target names, as the generated Helm values do.
/// </summary>
public sealed record ContainerdHostsConfig(IReadOnlyList<ContainerdHostsFile> Files, IReadOnlyList<ImageMapping> NotRedirected);

/// <summary>
/// Writes containerd <c>hosts.toml</c> files (the <c>config_path</c> / hosts.d format, containerd 1.5+): one per
/// upstream registry in the bundle whose images the air-gapped registry can serve through a mirror entry
/// (<c>[host."https://TARGET/v2/PREFIX"]</c> with <c>override_path = true</c> when a prefix is needed), plus one for the
/// target itself carrying the CA file. See docs/node-mirrors.md.
/// </summary>
public sealed class ContainerdHostsWriter
{
    private readonly TargetNameMapper _mapper;
    private readonly NodeMirrorOptions _options;

    public ContainerdHostsWriter(TargetNameMapper mapper, NodeMirrorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(mapper);
        _mapper = mapper;
        _options = options ?? new NodeMirrorOptions();
    }

    /// <summary>
    /// The registry host namespace directory containerd looks up for <paramref name="host"/>: the host itself, or
    /// <c>host_port_</c> when it has a port (containerd tries that form first, and it is a valid file name everywhere).
    /// </summary>
    public static string HostDirectory(string host)
    {
        var colon = host.LastIndexOf(':');
        return colon > 0 && !host.EndsWith(']') ? $"{host[..colon]}_{host[(colon + 1)..]}_" : host;
    }

    /// <summary>Builds the files for the images in the bundle (target name collisions are refused).</summary>
    public ContainerdHostsConfig Build(IEnumerable<Reference> images)
    {
        var scheme = NodeMirrors.Scheme(_options);
        var files = new List<ContainerdHostsFile>();
        var notRedirected = new List<ImageMapping>();
        foreach (var group in NodeMirrors.Group(_mapper, images))
        {
            var candidates = group.Images.Select(m => (Mapping: m, Prefix: PrefixFor(m))).ToList();
            var prefix = candidates
                .Where(c => c.Prefix is not null)
                .GroupBy(c => c.Prefix!, StringComparer.Ordinal)
                .OrderByDescending(g => g.Count())
                .ThenBy(g => g.Key == _mapper.Target.Prefix ? 0 : 1)
                .ThenBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => g.Key)
                .FirstOrDefault();
            var skipped = candidates.Where(c => c.Prefix != prefix || prefix is null).Select(c => c.Mapping).ToList();
            notRedirected.AddRange(skipped);
            if (prefix is null)
            {
                continue;
            }

            var hostUrl = prefix.Length == 0 ? $"{scheme}://{_mapper.Target.Host}" : $"{scheme}://{_mapper.Target.Host}/v2/{prefix}";
            var sb = Header(group.Registry);
            if (skipped.Count > 0)
            {
                sb.Append("# ").Append(skipped.Count).Append(" image(s) of ").Append(group.Registry)
                    .Append(" in the bundle are stored under names this mirror cannot produce (containerd can only\n")
                    .Append("# add a path prefix); pods must name them by their air-gapped names, as the generated Helm values do.\n");
            }

            sb.Append("server = ").Append(NodeMirrors.TomlString(UpstreamServer(group.Registry))).Append("\n\n");
            sb.Append("[host.").Append(NodeMirrors.TomlString(hostUrl)).Append("]\n");
            sb.Append("  capabilities = [\"pull\", \"resolve\"]\n");
            if (_options.CaFile is { } ca)
            {
                sb.Append("  ca = ").Append(NodeMirrors.TomlString(ca)).Append('\n');
            }

            if (prefix.Length > 0)
            {
                sb.Append("  override_path = true\n");
            }

            files.Add(new ContainerdHostsFile(HostDirectory(group.Registry), sb.ToString()));
        }

        var own = Header(_mapper.Target.Host);
        own.Append("server = ").Append(NodeMirrors.TomlString($"{scheme}://{_mapper.Target.Host}")).Append('\n');
        if (_options.CaFile is { } caFile)
        {
            own.Append("ca = ").Append(NodeMirrors.TomlString(caFile)).Append('\n');
        }

        files.Add(new ContainerdHostsFile(HostDirectory(_mapper.Target.Host), own.ToString()));
        return new ContainerdHostsConfig(files, notRedirected);
    }

    /// <summary>Writes every file as <c>DIRECTORY/&lt;host namespace&gt;/hosts.toml</c>, replacing existing ones.</summary>
    public static void WriteTo(ContainerdHostsConfig config, string directory)
    {
        ArgumentNullException.ThrowIfNull(config);
        foreach (var file in config.Files)
        {
            AtomicFile.WriteAllBytes(Path.Combine(directory, file.Directory, ContainerdHostsFile.FileName), Encoding.UTF8.GetBytes(file.Content));
        }
    }

    private StringBuilder Header(string registry)
    {
        var sb = new StringBuilder();
        sb.Append("# containerd hosts.toml for ").Append(registry).Append(", air-gapped registry ").Append(_mapper.Target)
            .Append(", generated by openlm-mirror.\n");
        sb.Append("# Install as /etc/containerd/certs.d/").Append(HostDirectory(registry))
            .Append("/hosts.toml with config_path = \"/etc/containerd/certs.d\". See docs/node-mirrors.md.\n");
        return sb;
    }

    /// <summary>The prefix P for which a mirror at <c>TARGET/v2/P</c> serves <paramref name="mapping"/>, or null if none does.</summary>
    private static string? PrefixFor(ImageMapping mapping)
    {
        var source = mapping.Source.Repository;
        var target = mapping.Target.Repository;
        if (target == source)
        {
            return string.Empty;
        }

        return target.EndsWith("/" + source, StringComparison.Ordinal) ? target[..^(source.Length + 1)] : null;
    }

    private static string UpstreamServer(string registry) =>
        registry == Reference.DockerHub ? "https://registry-1.docker.io" : $"https://{registry}";
}
