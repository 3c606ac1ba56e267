using System.Net;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Serve;

/// <summary>What <see cref="BundleRegistryServer.StartAsync"/> serves and how.</summary>
public sealed record ServeRequest
{
    /// <summary>The loopback address and port served by default.</summary>
    public const string DefaultAddress = "127.0.0.1:5000";

    public required string BundlePath { get; init; }

    /// <summary>The release public key; null only with <see cref="AllowUnsigned"/>.</summary>
    public VerificationKey? Key { get; init; }

    /// <summary>Serve without checking the signature (digests are verified regardless).</summary>
    public bool AllowUnsigned { get; init; }

    /// <summary><c>IP:PORT</c> (<c>[::1]:PORT</c> for IPv6; <c>localhost:PORT</c> is the IPv4 loopback); port 0 picks a free one.</summary>
    public string Address { get; init; } = DefaultAddress;

    /// <summary>PEM certificate (chain) for TLS; with <see cref="TlsKeyPath"/>. Null: plain HTTP.</summary>
    public string? TlsCertificatePath { get; init; }

    /// <summary>PEM private key of <see cref="TlsCertificatePath"/>.</summary>
    public string? TlsKeyPath { get; init; }

    /// <summary>Also answer under the import's names for this target (<c>HOST[:PORT][/PREFIX]</c>); null: source names only.</summary>
    public string? TargetNames { get; init; }

    /// <summary>The import's <c>FROM=TO</c> rename rules for <see cref="TargetNames"/>.</summary>
    public IReadOnlyList<string> Maps { get; init; } = [];

    /// <summary>The import's <c>MaxPathComponents</c> for <see cref="TargetNames"/> (null: the host's default): names are served flattened as the import stored them.</summary>
    public int? MaxPathComponents { get; init; }

    /// <summary>Blob bodies streamed at once; further blob requests wait for a free slot.</summary>
    public int MaxConcurrentBlobs { get; init; } = 16;

    /// <summary>Open client connections at once; further connections are refused until one closes.</summary>
    public int MaxConnections { get; init; } = 128;

    /// <summary>Where the bundle is decompressed to when it is an old single-stream zstd file (default: the temp directory).</summary>
    public string? TempDirectory { get; init; }

    /// <summary>Hears every answered request (the access log).</summary>
    public Action<ServedRequest>? OnRequest { get; init; }

    /// <summary>Parses <see cref="Address"/>.</summary>
    public static IPEndPoint ParseAddress(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var text = address.Trim();
        if (text.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase))
        {
            text = "127.0.0.1" + text["localhost".Length..];
        }

        if (!IPEndPoint.TryParse(text, out var endpoint) || !text.Contains(':', StringComparison.Ordinal) || endpoint.Port > IPEndPoint.MaxPort)
        {
            throw new InputException($"listen address '{address}' is not IP:PORT (e.g. 127.0.0.1:5000, [::1]:5000, 0.0.0.0:5000)");
        }

        if (text.StartsWith('[') != text.Contains(']', StringComparison.Ordinal) || (endpoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && !text.StartsWith('[')))
        {
            throw new InputException($"listen address '{address}': write an IPv6 address in brackets, e.g. [::1]:5000");
        }

        return endpoint;
    }
}
