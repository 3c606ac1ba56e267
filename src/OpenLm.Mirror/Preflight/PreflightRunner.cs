using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.PlatformSpec.ChartSources;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.Preflight;

/// <summary>How patient preflight is with each transport step.</summary>
public sealed class PreflightOptions
{
    private TimeSpan _connectTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The longest a DNS lookup, TCP connect, CONNECT or TLS handshake may take (default 10 s).</summary>
    public TimeSpan ConnectTimeout
    {
        get => _connectTimeout;
        set => _connectTimeout = value > TimeSpan.Zero && value <= TimeSpan.FromMinutes(10) ? value : throw new ArgumentOutOfRangeException(nameof(ConnectTimeout), value, "must be positive and at most 10 minutes");
    }
}

/// <summary>
/// <c>preflight</c>: before a release is pulled (or imported), checks every endpoint it needs, layer by layer, and
/// lists the exact allow-list. Per registry host: DNS, TCP, the proxy's CONNECT, TLS (who issued the certificate),
/// authentication (the token endpoint, anonymous or with the configured credentials), one manifest, and one blob GET
/// with redirects not followed, so the CDN host a registry sends blobs to (ECR Public: a CloudFront name) is found and
/// checked too. Charts from a registry are checked the same way (their Helm chart manifest and chart layer); a Helm
/// repository's host is probed, its <c>index.yaml</c> must list the chart at its version, and the host of the archive
/// URL (resolved as the chart download resolves it, often another host) is probed and its archive fetched. Everything
/// goes through the same <see cref="RegistryConnector"/> (proxy, CA file, credentials) a transfer would use.
/// </summary>
public static class PreflightRunner
{
    /// <summary>Blobs up to this size are read and verified after the redirect is followed; larger ones only answer.</summary>
    private const long VerifiedBlobBytes = 4 * 1024 * 1024;

    /// <summary>Redirects of a chart archive followed (GitHub releases use one).</summary>
    private const int MaxArchiveRedirects = 5;

    public static async Task<PreflightReport> RunAsync(PreflightRequest request, RegistryConnector connector, PreflightOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(connector);
        options ??= new PreflightOptions();
        // Mirrors given by the caller win; the manifest's apply to the other registries (as in resolve).
        connector.Options.Mirrors = connector.Options.Mirrors.WithDefaults(request.ManifestMirrors);
        var run = new Run(connector, new NetworkProbe(connector, options.ConnectTimeout));
        if (request.Target is { } target)
        {
            await run.CheckRegistryAsync(target.Host, null, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            // One image per registry host (the first in the release's order): reachability is per host, not per image.
            foreach (var group in request.Images.Select(connector.Options.Mirrors.Locate).GroupBy(r => r.Registry, StringComparer.OrdinalIgnoreCase))
            {
                await run.CheckRegistryAsync(group.Key, group.First(), cancellationToken).ConfigureAwait(false);
            }
        }

        if (request.Charts.Count > 0)
        {
            // The chart download code reads the index and resolves archive URLs: preflight asks it, so both agree.
            using var downloads = new ChartDownloader(connector, NullMirrorLog.Instance);
            foreach (var chart in request.Charts)
            {
                switch (chart.Source)
                {
                    case OciChartSource oci:
                        var located = connector.Options.Mirrors.Locate(oci.Reference);
                        await run.CheckRegistryAsync(located.Registry, located, cancellationToken, chart).ConfigureAwait(false);
                        break;
                    case HelmRepositoryChartSource repository:
                        await run.CheckRepositoryAsync(repository, chart.Pinned, downloads, cancellationToken).ConfigureAwait(false);
                        break;
                }
            }
        }

        return new PreflightReport(request.Input, run.Endpoints, run.Checks, connector.ProxySettings.ToString());
    }

    private static Reference Locate(this RegistryMirrors mirrors, Reference reference) =>
        mirrors.For(reference.Registry) is { } mirror ? mirror.Locate(reference) : reference;

    /// <summary>The state of one preflight: endpoints found so far (each probed once) and the verdicts.</summary>
    private sealed class Run(RegistryConnector connector, NetworkProbe probe)
    {
        private readonly Dictionary<string, bool> _reachable = new(StringComparer.OrdinalIgnoreCase);
        private readonly HashSet<string> _followedCdns = new(StringComparer.OrdinalIgnoreCase);

        public List<PreflightEndpoint> Endpoints { get; } = [];

        public List<PreflightCheck> Checks { get; } = [];

        /// <summary>Checks a registry host; with <paramref name="image"/> one of its manifests and blobs (with <paramref name="chart"/>, the chart's Helm manifest and chart layer).</summary>
        public async Task CheckRegistryAsync(string host, Reference? image, CancellationToken cancellationToken, PreflightChart? chart = null)
        {
            var client = connector.Client(host);
            var registry = PreflightEndpoint.Of(client.BaseUri, PreflightRole.Registry, null);
            if (!await EnsureReachableAsync(registry, client.BaseUri, cancellationToken).ConfigureAwait(false))
            {
                SkipRest(registry, image is not null, $"{registry.Address} is not reachable");
                return;
            }

            IReadOnlyList<string> scopes = image is null ? [] : [$"repository:{image.Repository}:pull"];
            var authenticated = await AuthenticateAsync(client, registry, scopes, cancellationToken).ConfigureAwait(false);
            if (client.LastBearerChallenge?.TokenEndpoint is { } realm)
            {
                await EnsureReachableAsync(PreflightEndpoint.Of(realm, PreflightRole.TokenRealm, host), realm, cancellationToken).ConfigureAwait(false);
            }

            if (image is null)
            {
                return;
            }

            if (!authenticated)
            {
                SkipRest(registry, manifests: true, "authentication failed", auth: false);
                return;
            }

            var blob = chart is null
                ? await FetchManifestAsync(connector.Repository(image), image, registry, cancellationToken).ConfigureAwait(false)
                : await FetchChartManifestAsync(connector.Repository(image), image, chart, registry, cancellationToken).ConfigureAwait(false);
            if (blob is not null)
            {
                await FollowBlobAsync(client, image, blob, registry, scopes, cancellationToken).ConfigureAwait(false);
            }
        }

        /// <summary>Probes an endpoint the first time it is met (it joins the allow-list then); later calls return the first answer.</summary>
        private async Task<bool> EnsureReachableAsync(PreflightEndpoint endpoint, Uri uri, CancellationToken cancellationToken)
        {
            if (_reachable.TryGetValue(endpoint.Address, out var known))
            {
                return known;
            }

            var proxy = await ProxyForAsync(uri, cancellationToken).ConfigureAwait(false);
            Endpoints.Add(endpoint);
            var reachable = await probe.ProbeAsync(endpoint, proxy, Checks, cancellationToken).ConfigureAwait(false);
            _reachable[endpoint.Address] = reachable;
            return reachable;
        }

        /// <summary>The proxy requests to <paramref name="uri"/> go through (probed once, listed as an endpoint), or null when direct.</summary>
        private async Task<(Uri Uri, bool Reachable)?> ProxyForAsync(Uri uri, CancellationToken cancellationToken)
        {
            if (!connector.ProxySettings.Enabled || connector.ProxySettings.GetProxy(uri) is not { } proxyUri)
            {
                return null;
            }

            var endpoint = PreflightEndpoint.Of(proxyUri, PreflightRole.Proxy, null);
            if (!_reachable.TryGetValue(endpoint.Address, out var reachable))
            {
                Endpoints.Add(endpoint);
                reachable = await probe.ProbeProxyAsync(endpoint, Checks, cancellationToken).ConfigureAwait(false);
                _reachable[endpoint.Address] = reachable;
            }

            return (proxyUri, reachable);
        }

        private void SkipRest(PreflightEndpoint registry, bool manifests, string why, bool auth = true)
        {
            if (auth)
            {
                Checks.Add(PreflightCheck.Skipped(registry, PreflightCheckKind.Auth, why));
            }

            if (manifests)
            {
                Checks.Add(PreflightCheck.Skipped(registry, PreflightCheckKind.Manifest, why));
                Checks.Add(PreflightCheck.Skipped(registry, PreflightCheckKind.Blob, why));
            }
        }

        /// <summary>
        /// <c>GET /v2/</c> as a transfer would send it: the client answers the challenge (a token for the repository's
        /// pull scope, or Basic) with the configured credentials, or anonymously. A refusal names who was presented and
        /// where the credentials came from, never the secret.
        /// </summary>
        private async Task<bool> AuthenticateAsync(RegistryClient client, PreflightEndpoint registry, IReadOnlyList<string> scopes, CancellationToken cancellationToken)
        {
            var credential = connector.Options.Credentials.GetCredential(client.Host);
            var who = credential is null ? "anonymously" : $"as {credential.Describe()}";
            try
            {
                using var response = await client.SendAsync(HttpMethod.Get, client.ApiUri("v2/"), scopes, cancellationToken).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    var how = client.LastBearerChallenge?.TokenEndpoint is { } realm
                        ? $"bearer token from {realm.GetLeftPart(UriPartial.Path)} {who}"
                        : response.RequestMessage?.Headers.Authorization?.Scheme == "Basic" ? $"Basic authentication {who}"
                        : "no authentication required";
                    Checks.Add(PreflightCheck.Ok(registry, PreflightCheckKind.Auth, $"GET /v2/ answered {(int)response.StatusCode}: {how}"));
                    return true;
                }

                var error = await RegistryException.FromResponseAsync(response, $"GET {client.ApiUri("v2/")}", cancellationToken).ConfigureAwait(false);
                Checks.Add(response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden
                    ? PreflightCheck.Failed(registry, PreflightCheckKind.Auth, $"registry {client.Host} refused access {who} ({(int)response.StatusCode}): {error.Message}", Remedy.Credentials)
                    : PreflightCheck.Failed(registry, PreflightCheckKind.Auth, response.StatusCode == HttpStatusCode.NotFound
                        ? $"GET /v2/ answered 404: {registry.Address} does not serve the OCI Distribution API there (is this the registry's address, or its web UI?)"
                        : error.Message));
                return false;
            }
            catch (Exception ex) when (IsCheckFailure(ex, cancellationToken))
            {
                Checks.Add(PreflightCheck.Failed(registry, PreflightCheckKind.Auth, Message(ex), RemedyOf(ex)));
                return false;
            }
        }

        /// <summary>Fetches the image's manifest (and, for an index, its first child): the smallest blob it references, or null.</summary>
        private async Task<Descriptor?> FetchManifestAsync(RemoteRepository repository, Reference image, PreflightEndpoint registry, CancellationToken cancellationToken)
        {
            try
            {
                var (descriptor, bytes) = await repository.FetchManifestAsync(image.TagOrDigest, cancellationToken).ConfigureAwait(false);
                var document = ManifestDocument.Parse(bytes, descriptor.MediaType, image.ToString());
                var detail = $"{image}: {descriptor.MediaType} {descriptor.Digest} ({bytes.Length} bytes)";
                if (ImageGraph.Dependencies(document).FirstOrDefault(e => e.IsManifest) is { Descriptor: { } child })
                {
                    var (_, childBytes) = await repository.FetchManifestAsync(child.Digest.ToString(), cancellationToken).ConfigureAwait(false);
                    document = ManifestDocument.Parse(childBytes, child.MediaType, $"{image.Name}@{child.Digest}");
                    detail += $", child {child.Digest}";
                }

                Checks.Add(PreflightCheck.Ok(registry, PreflightCheckKind.Manifest, detail));
                var blob = ImageGraph.Dependencies(document).Where(e => !e.IsManifest).Select(e => e.Descriptor).OrderBy(d => d.Size).FirstOrDefault();
                if (blob is null)
                {
                    Checks.Add(PreflightCheck.Skipped(registry, PreflightCheckKind.Blob, $"{image} references no blob"));
                }

                return blob;
            }
            catch (Exception ex) when (IsCheckFailure(ex, cancellationToken))
            {
                Checks.Add(PreflightCheck.Failed(registry, PreflightCheckKind.Manifest, Message(ex), RemedyOf(ex)));
                Checks.Add(PreflightCheck.Skipped(registry, PreflightCheckKind.Blob, "no manifest"));
                return null;
            }
        }

        /// <summary>
        /// Fetches an OCI chart's manifest: it must be a Helm chart (config <c>application/vnd.cncf.helm.config.v1+json</c>,
        /// one chart layer), and under a lock its chart layer must be the archive the lock pins. Returns the chart layer, or null.
        /// </summary>
        private async Task<Descriptor?> FetchChartManifestAsync(RemoteRepository repository, Reference reference, PreflightChart chart, PreflightEndpoint registry, CancellationToken cancellationToken)
        {
            var what = $"chart {chart.Source}";
            try
            {
                var (descriptor, bytes) = await repository.FetchManifestAsync(reference.TagOrDigest, cancellationToken).ConfigureAwait(false);
                var document = ManifestDocument.Parse(bytes, descriptor.MediaType, chart.Source.ToString());
                string? problem = null;
                if (document.IsIndex || document.Config is null || document.Config.MediaType != MediaTypes.HelmConfig)
                {
                    problem = $"{what} is not a Helm chart: its manifest is {(document.IsIndex ? "an image index" : $"{descriptor.MediaType} with config {document.Config?.MediaType ?? "none"}")}, a Helm chart's config is {MediaTypes.HelmConfig} (is it a container image? list it under images)";
                }

                // helm push writes one chart layer; Helm 3.0-3.7 used application/tar+gzip (as the chart download accepts).
                var layers = document.Layers.Where(l => l.MediaType is MediaTypes.HelmChart or "application/tar+gzip").ToList();
                if (problem is null && layers.Count != 1)
                {
                    problem = FormattableString.Invariant($"{what} has {layers.Count} chart content layers ({MediaTypes.HelmChart}), Helm needs exactly one");
                }

                if (problem is null && chart.Pinned is { } pinned && layers[0].Digest != pinned)
                {
                    problem = $"{what} changed since it was locked: its chart layer is now {layers[0].Digest}, the lock pins {pinned}; resolve the release again if the change is intended";
                }

                if (problem is not null)
                {
                    Checks.Add(PreflightCheck.Failed(registry, PreflightCheckKind.Manifest, problem));
                    Checks.Add(PreflightCheck.Skipped(registry, PreflightCheckKind.Blob, "no chart layer"));
                    return null;
                }

                Checks.Add(PreflightCheck.Ok(registry, PreflightCheckKind.Manifest, $"{what}: Helm chart manifest {descriptor.Digest} ({bytes.Length} bytes), chart layer {layers[0].Digest}{(chart.Pinned is null ? string.Empty : " as locked")}"));
                return layers[0];
            }
            catch (Exception ex) when (IsCheckFailure(ex, cancellationToken))
            {
                Checks.Add(PreflightCheck.Failed(registry, PreflightCheckKind.Manifest, $"{what}: {Message(ex)}", RemedyOf(ex)));
                Checks.Add(PreflightCheck.Skipped(registry, PreflightCheckKind.Blob, "no manifest"));
                return null;
            }
        }

        /// <summary>
        /// A Helm repository chart: the repository's host (DNS, TCP, proxy, TLS), its <c>index.yaml</c> (the chart at its
        /// version must be listed; under a lock, with the pinned digest when the index lists one), then the host of the
        /// archive URL, which joins the allow-list, and the archive itself.
        /// </summary>
        public async Task CheckRepositoryAsync(HelmRepositoryChartSource source, Digest? pinned, ChartDownloader downloads, CancellationToken cancellationToken)
        {
            var indexUri = source.IndexUri;
            var repository = PreflightEndpoint.Of(indexUri, PreflightRole.ChartRepository, null);
            if (!await EnsureReachableAsync(repository, indexUri, cancellationToken).ConfigureAwait(false))
            {
                Checks.Add(PreflightCheck.Skipped(repository, PreflightCheckKind.Index, $"{repository.Address} is not reachable"));
                Checks.Add(PreflightCheck.Skipped(repository, PreflightCheckKind.Blob, $"{repository.Address} is not reachable"));
                return;
            }

            HelmIndexEntry entry;
            Uri archiveUrl;
            try
            {
                (entry, archiveUrl) = await downloads.LocateAsync(source, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsCheckFailure(ex, cancellationToken))
            {
                Checks.Add(PreflightCheck.Failed(repository, PreflightCheckKind.Index, Message(ex), RemedyOf(ex)));
                Checks.Add(PreflightCheck.Skipped(repository, PreflightCheckKind.Blob, "the chart is not in the index"));
                return;
            }

            if (pinned is { } locked && entry.Digest is { } listed && listed != locked)
            {
                Checks.Add(PreflightCheck.Failed(repository, PreflightCheckKind.Index, $"chart from {source} changed since it was locked: {RegistryException.StripQuery(indexUri)} now lists digest {listed}, the lock pins {locked}; resolve the release again if the change is intended"));
                Checks.Add(PreflightCheck.Skipped(repository, PreflightCheckKind.Blob, "the index lists another archive"));
                return;
            }

            var archive = PreflightEndpoint.Of(archiveUrl, PreflightRole.ChartArchive, source.Repository.Authority);
            Checks.Add(PreflightCheck.Ok(repository, PreflightCheckKind.Index, $"{RegistryException.StripQuery(indexUri)} lists chart '{source.Name}' {entry.Version}; archive at {RegistryException.StripQuery(archiveUrl)}{(archive.Address == repository.Address ? string.Empty : $" (host {archive.Address})")}"));
            if (!await EnsureReachableAsync(archive, archiveUrl, cancellationToken).ConfigureAwait(false))
            {
                Checks.Add(PreflightCheck.Skipped(archive, PreflightCheckKind.Blob, $"{archive.Address} is not reachable"));
                return;
            }

            await FetchArchiveAsync(source, archiveUrl, archive, pinned ?? entry.Digest, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// GETs a chart archive as the download would, but following redirects one by one so every host they lead to
        /// (GitHub releases: a storage host) is probed and listed; a small archive is hashed against what is expected.
        /// </summary>
        private async Task FetchArchiveAsync(HelmRepositoryChartSource source, Uri url, PreflightEndpoint at, Digest? expected, CancellationToken cancellationToken)
        {
            var what = $"chart archive of {source}";
            var location = url;
            try
            {
                for (var hop = 0; ; hop++)
                {
                    var client = connector.Client(location.Authority);
                    using var response = await client.SendAsync(HttpMethod.Get, location, [], cancellationToken, r => r.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("*/*")), followRedirects: false).ConfigureAwait(false);
                    var status = (int)response.StatusCode;
                    if (status is >= 300 and < 400 && response.Headers.Location is { } redirect)
                    {
                        if (hop >= MaxArchiveRedirects)
                        {
                            Checks.Add(PreflightCheck.Failed(at, PreflightCheckKind.Blob, FormattableString.Invariant($"{what}: more than {MaxArchiveRedirects} redirects")));
                            return;
                        }

                        var next = redirect.IsAbsoluteUri ? redirect : new Uri(location, redirect);
                        var target = PreflightEndpoint.Of(next, PreflightRole.Cdn, at.Address);
                        Checks.Add(PreflightCheck.Ok(at, PreflightCheckKind.Blob, $"{what}: redirected ({status}) to {target.Address}"));
                        if (!await EnsureReachableAsync(target, next, cancellationToken).ConfigureAwait(false))
                        {
                            Checks.Add(PreflightCheck.Skipped(target, PreflightCheckKind.Blob, $"{target.Address} is not reachable"));
                            return;
                        }

                        (location, at) = (next, target);
                        continue;
                    }

                    if (!response.IsSuccessStatusCode)
                    {
                        var error = await RegistryException.FromResponseAsync(response, $"GET {what}", cancellationToken).ConfigureAwait(false);
                        Checks.Add(PreflightCheck.Failed(at, PreflightCheckKind.Blob, error.Message, response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden ? Remedy.Credentials : RemedyOf(error)));
                        return;
                    }

                    var verdict = await HashArchiveAsync(response, expected, cancellationToken).ConfigureAwait(false);
                    Checks.Add(verdict.Matches
                        ? PreflightCheck.Ok(at, PreflightCheckKind.Blob, $"{what}: served ({status}){verdict.Detail}")
                        : PreflightCheck.Failed(at, PreflightCheckKind.Blob, $"{what}: {RegistryException.StripQuery(location)} hashes to {verdict.Detail}, but {expected} is expected (the index's digest, or the lock's pin)"));
                    return;
                }
            }
            catch (Exception ex) when (IsCheckFailure(ex, cancellationToken))
            {
                Checks.Add(PreflightCheck.Failed(at, PreflightCheckKind.Blob, $"{what}: {Message(ex)}", RemedyOf(ex)));
            }
        }

        /// <summary>Hashes an archive up to <see cref="VerifiedBlobBytes"/> (a Helm chart is kilobytes); a larger one is only answered.</summary>
        private static async Task<(bool Matches, string Detail)> HashArchiveAsync(HttpResponseMessage response, Digest? expected, CancellationToken cancellationToken)
        {
            if (expected is null || response.Content.Headers.ContentLength > VerifiedBlobBytes)
            {
                return (true, string.Empty);
            }

            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (body.ConfigureAwait(false))
            {
                var chunk = new byte[1 << 16];
                long total = 0;
                int read;
                while ((read = await body.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    total += read;
                    if (total > VerifiedBlobBytes)
                    {
                        return (true, string.Empty);
                    }

                    hash.AppendData(chunk, 0, read);
                }
            }

            var digest = Digest.FromHash("sha256", hash.GetHashAndReset());
            return digest == expected ? (true, ", digest verified") : (false, digest.ToString());
        }

        /// <summary>
        /// GETs one blob without following redirects: a redirect names the host blobs are really served from. The first
        /// time a host is met it is probed (DNS, TCP, TLS) and the redirect followed, without the registry's credentials.
        /// </summary>
        private async Task FollowBlobAsync(RegistryClient client, Reference image, Descriptor blob, PreflightEndpoint registry, IReadOnlyList<string> scopes, CancellationToken cancellationToken)
        {
            var what = $"blob {blob.Digest} ({blob.Size} bytes) of {image.Name}";
            try
            {
                Uri location;
                PreflightEndpoint cdn;
                using (var response = await client.SendAsync(HttpMethod.Get, client.ApiUri($"v2/{image.Repository}/blobs/{blob.Digest}"), scopes, cancellationToken, followRedirects: false).ConfigureAwait(false))
                {
                    var status = (int)response.StatusCode;
                    if (response.IsSuccessStatusCode)
                    {
                        await ReadVerifiedAsync(response, blob, what, cancellationToken).ConfigureAwait(false);
                        Checks.Add(PreflightCheck.Ok(registry, PreflightCheckKind.Blob, $"{what}: served by the registry itself ({status}, no redirect)"));
                        return;
                    }

                    if (status is not (301 or 302 or 303 or 307 or 308) || response.Headers.Location is not { } redirect)
                    {
                        var error = await RegistryException.FromResponseAsync(response, $"GET {what}", cancellationToken).ConfigureAwait(false);
                        Checks.Add(PreflightCheck.Failed(registry, PreflightCheckKind.Blob, error.Message));
                        return;
                    }

                    location = redirect.IsAbsoluteUri ? redirect : new Uri(client.BaseUri, redirect);
                    cdn = PreflightEndpoint.Of(location, PreflightRole.Cdn, client.Host);
                    Checks.Add(PreflightCheck.Ok(registry, PreflightCheckKind.Blob, $"{what}: redirected ({status}) to {cdn.Address}"));
                }

                if (!_followedCdns.Add(cdn.Address))
                {
                    return;
                }

                if (!await EnsureReachableAsync(cdn, location, cancellationToken).ConfigureAwait(false))
                {
                    Checks.Add(PreflightCheck.Skipped(cdn, PreflightCheckKind.Blob, $"{cdn.Address} is not reachable"));
                    return;
                }

                // The presigned URL carries its own authorisation: no registry credentials go to the CDN (the client adds none off the registry's origin).
                using var served = await client.SendAsync(HttpMethod.Get, location, scopes, cancellationToken).ConfigureAwait(false);
                if (!served.IsSuccessStatusCode)
                {
                    var error = await RegistryException.FromResponseAsync(served, $"GET {what} from {cdn.Address}", cancellationToken).ConfigureAwait(false);
                    Checks.Add(PreflightCheck.Failed(cdn, PreflightCheckKind.Blob, error.Message));
                    return;
                }

                var verified = await ReadVerifiedAsync(served, blob, what, cancellationToken).ConfigureAwait(false);
                Checks.Add(PreflightCheck.Ok(cdn, PreflightCheckKind.Blob, $"{what}: served ({(int)served.StatusCode}){(verified ? ", digest verified" : string.Empty)}"));
            }
            catch (Exception ex) when (IsCheckFailure(ex, cancellationToken))
            {
                Checks.Add(PreflightCheck.Failed(registry, PreflightCheckKind.Blob, Message(ex), RemedyOf(ex)));
            }
        }

        /// <summary>Reads a small blob through its verifier (a proxy that alters content is a finding too); larger ones are only answered.</summary>
        private static async Task<bool> ReadVerifiedAsync(HttpResponseMessage response, Descriptor blob, string what, CancellationToken cancellationToken)
        {
            if (blob.Size > VerifiedBlobBytes)
            {
                return false;
            }

            var untrusted = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using var verified = new VerifyingStream(untrusted, blob, what);
            await verified.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
            return true;
        }

        private static bool IsCheckFailure(Exception ex, CancellationToken cancellationToken) =>
            ex is MirrorException or HttpRequestException or TimeoutException or IOException
            || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested);

        private static string Message(Exception ex) =>
            ex is HttpRequestException { InnerException: { } inner } && inner.Message != ex.Message ? $"{ex.Message} ({inner.Message})" : ex.Message;

        /// <summary>The first remedy in the cause chain (a wrapper that quotes its cause keeps the cause's advice).</summary>
        private static Remedy RemedyOf(Exception ex)
        {
            for (Exception? e = ex; e is not null; e = e.InnerException)
            {
                if (e is MirrorException { Remedy: not Remedy.None } mirror)
                {
                    return mirror.Remedy;
                }
            }

            return Remedy.None;
        }
    }
}
