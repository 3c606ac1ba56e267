using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Preflight;

/// <summary>
/// The transport checks of one endpoint, each on its own so a failure names its layer: DNS, TCP, the proxy's CONNECT
/// tunnel, and the TLS handshake with the certificate's subject and issuer. Trust is the connector's own decision (its
/// CA file, or none when verification is off), so preflight says exactly what a transfer would meet.
/// </summary>
internal sealed class NetworkProbe(RegistryConnector connector, TimeSpan timeout)
{
    private const int MaxProxyAnswerBytes = 16 * 1024;

    /// <summary>
    /// Runs the checks of <paramref name="endpoint"/> into <paramref name="checks"/>; true when the endpoint is reachable
    /// (every check passed or did not apply). <paramref name="proxy"/>: the proxy this endpoint's requests go through,
    /// with whether it is itself reachable.
    /// </summary>
    public async Task<bool> ProbeAsync(PreflightEndpoint endpoint, (Uri Uri, bool Reachable)? proxy, List<PreflightCheck> checks, CancellationToken cancellationToken)
    {
        if (proxy is not { } via)
        {
            var addresses = await ResolveAsync(endpoint, checks, cancellationToken).ConfigureAwait(false);
            if (addresses is null)
            {
                Skip(endpoint, checks, "the host name does not resolve", PreflightCheckKind.Tcp, PreflightCheckKind.Tls);
                return false;
            }

            var client = await ConnectAsync(endpoint, addresses, checks, cancellationToken).ConfigureAwait(false);
            if (client is null)
            {
                Skip(endpoint, checks, "no TCP connection", PreflightCheckKind.Tls);
                return false;
            }

            using (client)
            {
                checks.Add(PreflightCheck.Skipped(endpoint, PreflightCheckKind.Proxy, ProxySkipReason()));
                return await HandshakeAsync(endpoint, client.GetStream(), direct: true, checks, cancellationToken).ConfigureAwait(false);
            }
        }

        var proxyName = via.Uri.Authority;
        checks.Add(PreflightCheck.Skipped(endpoint, PreflightCheckKind.Dns, $"resolved by the proxy {proxyName}"));
        checks.Add(PreflightCheck.Skipped(endpoint, PreflightCheckKind.Tcp, $"connected by the proxy {proxyName}"));
        if (!via.Reachable)
        {
            Skip(endpoint, checks, $"the proxy {proxyName} is not reachable", PreflightCheckKind.Proxy, PreflightCheckKind.Tls);
            return false;
        }

        if (!endpoint.UsesTls)
        {
            // Plain HTTP goes to the proxy as absolute-form requests: the requests that follow are the proof.
            checks.Add(PreflightCheck.Skipped(endpoint, PreflightCheckKind.Proxy, $"plain HTTP requests are forwarded by the proxy {proxyName} (the requests below go through it)"));
            checks.Add(PreflightCheck.Skipped(endpoint, PreflightCheckKind.Tls, "plain HTTP"));
            return true;
        }

        var tunnel = await ConnectThroughProxyAsync(endpoint, via.Uri, checks, cancellationToken).ConfigureAwait(false);
        if (tunnel is null)
        {
            Skip(endpoint, checks, "no tunnel through the proxy", PreflightCheckKind.Tls);
            return false;
        }

        using (tunnel)
        {
            return await HandshakeAsync(endpoint, tunnel.GetStream(), direct: false, checks, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>DNS and TCP of the proxy itself.</summary>
    public async Task<bool> ProbeProxyAsync(PreflightEndpoint proxy, List<PreflightCheck> checks, CancellationToken cancellationToken)
    {
        var addresses = await ResolveAsync(proxy, checks, cancellationToken).ConfigureAwait(false);
        if (addresses is null)
        {
            Skip(proxy, checks, "the proxy's host name does not resolve", PreflightCheckKind.Tcp);
            return false;
        }

        using var client = await ConnectAsync(proxy, addresses, checks, cancellationToken).ConfigureAwait(false);
        return client is not null;
    }

    private string ProxySkipReason() =>
        connector.ProxySettings.Enabled ? "direct: NO_PROXY matches this host" : "direct: no proxy configured";

    private static void Skip(PreflightEndpoint endpoint, List<PreflightCheck> checks, string why, params PreflightCheckKind[] kinds)
    {
        foreach (var kind in kinds)
        {
            if (kind == PreflightCheckKind.Tls && !endpoint.UsesTls)
            {
                checks.Add(PreflightCheck.Skipped(endpoint, kind, "plain HTTP"));
                continue;
            }

            checks.Add(PreflightCheck.Skipped(endpoint, kind, why));
        }
    }

    private async Task<IPAddress[]?> ResolveAsync(PreflightEndpoint endpoint, List<PreflightCheck> checks, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(endpoint.Host, out var literal))
        {
            checks.Add(PreflightCheck.Ok(endpoint, PreflightCheckKind.Dns, $"{endpoint.Host} is an IP address (no lookup)"));
            return [literal];
        }

        using var limit = Limit(cancellationToken);
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(endpoint.Host, limit.Token).ConfigureAwait(false);
            if (addresses.Length == 0)
            {
                checks.Add(PreflightCheck.Failed(endpoint, PreflightCheckKind.Dns, $"host name '{endpoint.Host}' resolves to no address on this machine: check its spelling and this machine's DNS"));
                return null;
            }

            checks.Add(PreflightCheck.Ok(endpoint, PreflightCheckKind.Dns, $"{endpoint.Host} resolves to {string.Join(", ", addresses.Take(4).Select(a => a.ToString()))}{(addresses.Length > 4 ? ", …" : string.Empty)}"));
            return addresses;
        }
        catch (SocketException ex)
        {
            checks.Add(PreflightCheck.Failed(endpoint, PreflightCheckKind.Dns, $"host name '{endpoint.Host}' does not resolve on this machine ({ex.SocketErrorCode}: {ex.Message}): check its spelling and this machine's DNS"));
            return null;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            checks.Add(PreflightCheck.Failed(endpoint, PreflightCheckKind.Dns, $"looking up host name '{endpoint.Host}' took longer than {timeout.TotalSeconds:0}s: check this machine's DNS"));
            return null;
        }
    }

    private async Task<TcpClient?> ConnectAsync(PreflightEndpoint endpoint, IPAddress[] addresses, List<PreflightCheck> checks, CancellationToken cancellationToken)
    {
        var client = new TcpClient(addresses[0].AddressFamily);
        using var limit = Limit(cancellationToken);
        try
        {
            // Every address of the name, as the HTTP stack would try them (the client's family is the first one's).
            await client.ConnectAsync(addresses.Where(a => a.AddressFamily == addresses[0].AddressFamily).ToArray(), endpoint.Port, limit.Token).ConfigureAwait(false);
            checks.Add(PreflightCheck.Ok(endpoint, PreflightCheckKind.Tcp, $"connected to {client.Client.RemoteEndPoint}"));
            return client;
        }
        catch (SocketException ex)
        {
            client.Dispose();
            var why = ex.SocketErrorCode == SocketError.ConnectionRefused
                ? "connection refused: nothing listens there (check the host and port)"
                : $"{ex.SocketErrorCode}: {ex.Message} (a firewall may drop the connection: allow {endpoint.Address})";
            checks.Add(PreflightCheck.Failed(endpoint, PreflightCheckKind.Tcp, $"cannot connect to {endpoint.Address}: {why}"));
            return null;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            client.Dispose();
            checks.Add(PreflightCheck.Failed(endpoint, PreflightCheckKind.Tcp, $"no TCP connection to {endpoint.Address} within {timeout.TotalSeconds:0}s (a firewall may drop it: allow {endpoint.Address})"));
            return null;
        }
    }

    /// <summary>Opens a <c>CONNECT</c> tunnel to the endpoint through the proxy (credentials from the proxy URL, never shown).</summary>
    private async Task<TcpClient?> ConnectThroughProxyAsync(PreflightEndpoint endpoint, Uri proxy, List<PreflightCheck> checks, CancellationToken cancellationToken)
    {
        var client = new TcpClient();
        using var limit = Limit(cancellationToken);
        try
        {
            await client.ConnectAsync(proxy.IdnHost.Trim('[', ']'), proxy.Port, limit.Token).ConfigureAwait(false);
            var stream = client.GetStream();
            var request = new StringBuilder($"CONNECT {endpoint.Address} HTTP/1.1\r\nHost: {endpoint.Address}\r\n");
            if (connector.ProxySettings.Credentials?.GetCredential(proxy, "Basic") is { } credential)
            {
                request.Append("Proxy-Authorization: Basic ")
                    .Append(Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credential.UserName}:{credential.Password}")))
                    .Append("\r\n");
            }

            request.Append("\r\n");
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request.ToString()), limit.Token).ConfigureAwait(false);
            var status = await ReadProxyStatusAsync(stream, limit.Token).ConfigureAwait(false);
            if (status is >= 200 and < 300)
            {
                checks.Add(PreflightCheck.Ok(endpoint, PreflightCheckKind.Proxy, $"CONNECT {endpoint.Address} through the proxy {proxy.Authority} answered {status}"));
                return client;
            }

            client.Dispose();
            var refused = ProxySettings.Refused(proxy, new Uri($"https://{endpoint.Address}/"), status is null ? null : (HttpStatusCode)status, null);
            checks.Add(PreflightCheck.Failed(endpoint, PreflightCheckKind.Proxy, status is null ? $"the proxy {proxy.Authority} did not answer CONNECT {endpoint.Address} with an HTTP status" : refused.Message, refused.Remedy));
            return null;
        }
        catch (Exception ex) when (ex is SocketException or IOException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            client.Dispose();
            checks.Add(PreflightCheck.Failed(endpoint, PreflightCheckKind.Proxy, $"CONNECT {endpoint.Address} through the proxy {proxy.Authority} failed: {(ex is OperationCanceledException ? $"no answer within {timeout.TotalSeconds:0}s" : ex.Message)}"));
            return null;
        }
    }

    /// <summary>The status code of the proxy's answer to CONNECT (its head read up to the blank line), or null when it is not HTTP.</summary>
    private static async Task<int?> ReadProxyStatusAsync(Stream stream, CancellationToken cancellationToken)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (head.Count < MaxProxyAnswerBytes)
        {
            if (await stream.ReadAsync(one, cancellationToken).ConfigureAwait(false) == 0)
            {
                break;
            }

            head.Add(one[0]);
            if (head.Count >= 4 && head[^1] == '\n' && head[^2] == '\r' && head[^3] == '\n' && head[^4] == '\r')
            {
                break;
            }
        }

        var statusLine = Encoding.ASCII.GetString(head.ToArray()).Split("\r\n", 2)[0];
        var parts = statusLine.Split(' ', 3);
        return parts.Length >= 2 && parts[0].StartsWith("HTTP/", StringComparison.Ordinal) && int.TryParse(parts[1], out var code) ? code : null;
    }

    private async Task<bool> HandshakeAsync(PreflightEndpoint endpoint, Stream transport, bool direct, List<PreflightCheck> checks, CancellationToken cancellationToken)
    {
        if (!endpoint.UsesTls)
        {
            checks.Add(PreflightCheck.Skipped(endpoint, PreflightCheckKind.Tls, "plain HTTP"));
            return true;
        }

        X509Certificate2? leaf = null;
        string? root = null;
        var errors = SslPolicyErrors.None;
        var chainStatus = string.Empty;
        var trusted = false;
        bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors policyErrors)
        {
            leaf = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            errors = policyErrors;
            if (chain is { ChainElements.Count: > 1 })
            {
                root = chain.ChainElements[^1].Certificate.Subject;
            }

            chainStatus = string.Join(", ", (chain?.ChainStatus ?? []).Select(s => s.Status.ToString()).Distinct());
            trusted = connector.ValidateCertificate(sender, certificate, chain, policyErrors);
            return trusted;
        }

        using var limit = Limit(cancellationToken);
        var ssl = new SslStream(transport, leaveInnerStreamOpen: true);
        await using (ssl.ConfigureAwait(false))
        {
            try
            {
                await ssl.AuthenticateAsClientAsync(
                    new SslClientAuthenticationOptions
                    {
                        TargetHost = endpoint.Host,
                        RemoteCertificateValidationCallback = Validate,
                    },
                    limit.Token).ConfigureAwait(false);
                checks.Add(PreflightCheck.Ok(endpoint, PreflightCheckKind.Tls, $"{ssl.SslProtocol}; {Describe(leaf, root)}; trusted by {TrustSource(errors)}"));
                return true;
            }
            catch (AuthenticationException) when (leaf is not null && !trusted)
            {
                var nameMismatch = errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch);
                var why = nameMismatch && !errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors)
                    ? $"its names do not include {endpoint.Host} (connect by a name the certificate lists)"
                    : $"it is not trusted ({(chainStatus.Length > 0 ? chainStatus : errors.ToString())}): trust the CA that issued it";
                checks.Add(PreflightCheck.Failed(endpoint, PreflightCheckKind.Tls, $"TLS handshake with {endpoint.Address}: {Describe(leaf, root)}; {why}", nameMismatch && !errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors) ? Remedy.None : Remedy.TrustCaFile));
                return false;
            }
            catch (Exception ex) when (ex is AuthenticationException or IOException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                if (direct && leaf is null && await TransportDiagnosis.AnswersPlainHttpAsync(endpoint.Host, endpoint.Port, cancellationToken).ConfigureAwait(false))
                {
                    checks.Add(PreflightCheck.Failed(endpoint, PreflightCheckKind.Tls, $"{endpoint.Address} answers plain HTTP, not TLS", Remedy.PlainHttp));
                    return false;
                }

                var what = ex is OperationCanceledException ? $"no handshake within {timeout.TotalSeconds:0}s" : ex.Message;
                checks.Add(PreflightCheck.Failed(endpoint, PreflightCheckKind.Tls, $"TLS handshake with {endpoint.Address} failed: {what}"));
                return false;
            }
        }
    }

    private string TrustSource(SslPolicyErrors errors) =>
        errors == SslPolicyErrors.None ? "the system trust store"
        : connector.Options.Insecure ? "nothing: verification is switched off"
        : "the CA file";

    private static string Describe(X509Certificate2? leaf, string? root) =>
        leaf is null
            ? "no certificate"
            : $"certificate '{leaf.Subject}' issued by '{leaf.Issuer}'{(root is not null && root != leaf.Issuer ? $" (root CA '{root}')" : string.Empty)}, valid until {leaf.NotAfter.ToUniversalTime():yyyy-MM-dd}";

    private CancellationTokenSource Limit(CancellationToken cancellationToken)
    {
        var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        return limit;
    }
}
