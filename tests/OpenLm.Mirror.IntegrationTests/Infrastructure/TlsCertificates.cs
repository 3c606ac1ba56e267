using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// A throw-away test PKI made in-process: a CA and a server certificate signed by it, valid for
/// <c>localhost</c>, <c>127.0.0.1</c>, <c>127.0.0.2</c> and <c>::1</c> by default. ECDSA P-256.
/// </summary>
/// <remarks>
/// Nothing is installed into any trust store: a client trusts the CA explicitly
/// (<see cref="CreateTrustingHandler"/>, or <see cref="CaCertificatePem"/> written to a file for a CLI).
/// </remarks>
public sealed class TlsCertificates : IDisposable
{
    private TlsCertificates(X509Certificate2 ca, X509Certificate2 server, string serverPrivateKeyPem)
    {
        Ca = ca;
        Server = server;
        CaCertificatePem = ca.ExportCertificatePem() + "\n";
        ServerCertificatePem = server.ExportCertificatePem() + "\n";
        ServerPrivateKeyPem = serverPrivateKeyPem;
    }

    /// <summary>The CA certificate (public part only).</summary>
    public X509Certificate2 Ca { get; }

    /// <summary>The server certificate (public part only).</summary>
    public X509Certificate2 Server { get; }

    /// <summary>The CA certificate as PEM.</summary>
    public string CaCertificatePem { get; }

    /// <summary>The server certificate as PEM.</summary>
    public string ServerCertificatePem { get; }

    /// <summary>The server's private key as PKCS#8 PEM.</summary>
    public string ServerPrivateKeyPem { get; }

    /// <summary>The default subject alternative names: localhost and the loopback addresses tests use.</summary>
    public static IReadOnlyList<string> DefaultDnsNames { get; } = ["localhost"];

    /// <inheritdoc cref="DefaultDnsNames"/>
    public static IReadOnlyList<IPAddress> DefaultIpAddresses { get; } =
        [IPAddress.Parse("127.0.0.1"), IPAddress.Parse("127.0.0.2"), IPAddress.IPv6Loopback];

    /// <summary>Creates a new CA and a server certificate signed by it.</summary>
    /// <param name="dnsNames">DNS SANs of the server certificate (default: localhost).</param>
    /// <param name="ipAddresses">IP SANs of the server certificate (default: 127.0.0.1, 127.0.0.2, ::1).</param>
    /// <param name="validity">How long the server certificate is valid from now (default: 30 days).</param>
    public static TlsCertificates Create(
        IEnumerable<string>? dnsNames = null,
        IEnumerable<IPAddress>? ipAddresses = null,
        TimeSpan? validity = null)
    {
        var now = DateTimeOffset.UtcNow;
        var notBefore = now.AddDays(-1); // tolerate clock skew between host and container
        var notAfter = now.Add(validity ?? TimeSpan.FromDays(30));

        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=OpenLm.Mirror Test CA, O=OpenLm.Mirror tests", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var caWithKey = caRequest.CreateSelfSigned(notBefore.AddDays(-1), notAfter.AddDays(1));

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest("CN=localhost, O=OpenLm.Mirror tests", serverKey, HashAlgorithmName.SHA256);
        serverRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        serverRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1", "Server Authentication")], false));
        serverRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(serverRequest.PublicKey, false));
        serverRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(caWithKey, true, false));
        var san = new SubjectAlternativeNameBuilder();
        foreach (var dns in dnsNames ?? DefaultDnsNames)
        {
            san.AddDnsName(dns);
        }

        foreach (var ip in ipAddresses ?? DefaultIpAddresses)
        {
            san.AddIpAddress(ip);
        }

        serverRequest.CertificateExtensions.Add(san.Build());
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F; // positive
        using var serverPublic = serverRequest.Create(caWithKey, notBefore, notAfter, serial);

        var ca = X509CertificateLoader.LoadCertificate(caWithKey.RawData);
        var server = X509CertificateLoader.LoadCertificate(serverPublic.RawData);
        return new TlsCertificates(ca, server, serverKey.ExportPkcs8PrivateKeyPem() + "\n");
    }

    /// <summary>The server certificate and key in the form <see cref="RegistryContainerOptions.Tls"/> takes.</summary>
    public RegistryTls ToRegistryTls() =>
        new(Encoding.ASCII.GetBytes(ServerCertificatePem), Encoding.ASCII.GetBytes(ServerPrivateKeyPem));

    /// <summary>Writes the CA certificate PEM to <paramref name="path"/> (for a CLI's CA-file option) and returns the path.</summary>
    public string WriteCaCertificate(string path)
    {
        File.WriteAllText(path, CaCertificatePem, Encoding.ASCII);
        return path;
    }

    /// <summary>An <see cref="HttpClientHandler"/> that trusts exactly this CA (and still checks the host name).</summary>
    public HttpClientHandler CreateTrustingHandler() => CreateHandlerTrusting(Ca);

    /// <summary>An <see cref="HttpClientHandler"/> that accepts server certificates chaining to <paramref name="ca"/>
    /// (and only those), with the host name still checked.</summary>
    public static HttpClientHandler CreateHandlerTrusting(X509Certificate2 ca)
    {
        ArgumentNullException.ThrowIfNull(ca);
        return new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, certificate, _, errors) => IsTrustedBy(ca, certificate, errors),
        };
    }

    /// <summary>
    /// True when <paramref name="certificate"/> chains to <paramref name="ca"/> as the only trusted root
    /// and the TLS layer found no host-name problem. For <c>ServerCertificateCustomValidationCallback</c>.
    /// </summary>
    public static bool IsTrustedBy(X509Certificate2 ca, X509Certificate2? certificate, SslPolicyErrors errors)
    {
        ArgumentNullException.ThrowIfNull(ca);
        if (certificate is null
            || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable)
            || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.NoFlag;
        return chain.Build(certificate);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Ca.Dispose();
        Server.Dispose();
    }
}
