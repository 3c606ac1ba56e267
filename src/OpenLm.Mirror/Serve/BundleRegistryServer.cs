using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenLm.Mirror.AirGap;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;

namespace OpenLm.Mirror.Serve;

/// <summary>
/// Serves a bundle as a read-only OCI registry over Kestrel, straight from the bundle file. <see cref="StartAsync"/>
/// opens the bundle (signature, head, manifests and structure), names every image and refuses name collisions, hashes
/// every blob not yet verified (one pass over the file) and only then listens: nothing is answered from an unproven
/// bundle. <see cref="StopAsync"/> stops accepting connections and lets requests in flight finish.
/// The host owns no process signals; the caller decides when to stop.
/// </summary>
public sealed class BundleRegistryServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly BundleSource _bundle;
    private readonly X509Certificate2? _certificate;
    private readonly Action<ServedRequest>? _onRequest;
    private long _inFlight;
    private long _requests;
    private long _bytes;
    private int _stopped;

    private BundleRegistryServer(WebApplication app, BundleSource bundle, BundleRegistry registry, Uri address, X509Certificate2? certificate, Action<ServedRequest>? onRequest)
    {
        _app = app;
        _bundle = bundle;
        _certificate = certificate;
        _onRequest = onRequest;
        Registry = registry;
        Address = address;
    }

    /// <summary>The base address clients use, e.g. <c>http://127.0.0.1:5000</c> (the real port when 0 was asked for).</summary>
    public Uri Address { get; }

    /// <summary>host:port of <see cref="Address"/>: what goes in front of repository names.</summary>
    public string Authority => Address.Authority;

    public BundleRegistry Registry { get; }

    public ServedCatalog Catalog => Registry.Catalog;

    /// <summary>The verified head of the served bundle.</summary>
    public BundleHead Head => _bundle.Head;

    /// <summary>Requests being answered now.</summary>
    public long InFlight => Interlocked.Read(ref _inFlight);

    /// <summary>Requests answered so far.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Body bytes sent so far.</summary>
    public long BytesSent => Interlocked.Read(ref _bytes);

    /// <summary>
    /// Opens and verifies the bundle, then listens. Throws <see cref="InputException"/> for bad addresses, TLS files
    /// or name collisions, <see cref="IntegrityException"/> for a bad signature or digest, before anything listens.
    /// </summary>
    public static async Task<BundleRegistryServer> StartAsync(ServeRequest request, IProgress<long>? verifyProgress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Key is null && !request.AllowUnsigned)
        {
            throw new InputException("serving a bundle needs the release public key; serving without checking the signature must be asked for explicitly");
        }

        var endpoint = ServeRequest.ParseAddress(request.Address);
        var certificate = LoadCertificate(request);
        BundleSource? bundle = null;
        try
        {
            bundle = await BundleSource.OpenAsync(
                request.BundlePath,
                new BundleOpenOptions { Key = request.Key, RequireSignature = !request.AllowUnsigned, TempDirectory = request.TempDirectory },
                cancellationToken).ConfigureAwait(false);
            bundle.RequireFull("served");
            var mapper = request.TargetNames is null ? null : TargetNameMapper.Create(request.TargetNames, request.Maps, bundle.Head.Manifest.Source, request.MaxPathComponents);
            var catalog = ServedCatalog.Build(bundle.Head.Images, bundle.Documents, mapper);
            await bundle.VerifyRemainingAsync(verifyProgress, cancellationToken).ConfigureAwait(false);
            var registry = new BundleRegistry(bundle, catalog, request.MaxConcurrentBlobs);
            return await ListenAsync(bundle, registry, endpoint, certificate, request, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            certificate?.Dispose();
            if (bundle is not null)
            {
                await bundle.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>Stops accepting connections and waits up to <paramref name="drain"/> for requests in flight; then aborts the rest.</summary>
    public async Task StopAsync(TimeSpan drain)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        using var timeout = new CancellationTokenSource(drain);
        await _app.StopAsync(timeout.Token).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.Zero).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        await _bundle.DisposeAsync().ConfigureAwait(false);
        _certificate?.Dispose();
    }

    private static async Task<BundleRegistryServer> ListenAsync(BundleSource bundle, BundleRegistry registry, IPEndPoint endpoint, X509Certificate2? certificate, ServeRequest request, CancellationToken cancellationToken)
    {
        // The empty builder reads no configuration files or environment (ASPNETCORE_URLS and friends cannot move the
        // listener), logs nothing and takes no process signals (the caller owns shutdown).
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.Services.AddSingleton<IHostLifetime, CallerOwnedLifetime>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxConcurrentConnections = request.MaxConnections;
            kestrel.Limits.MaxConcurrentUpgradedConnections = 0;
            kestrel.Limits.MaxRequestBodySize = 0;
            kestrel.Listen(endpoint, listen =>
            {
                if (certificate is not null)
                {
                    listen.Protocols = HttpProtocols.Http1AndHttp2;
                    listen.UseHttps(certificate);
                }
                else
                {
                    listen.Protocols = HttpProtocols.Http1;
                }
            });
        });

        var app = builder.Build();
        BundleRegistryServer? server = null;
        app.Run(context => server!.HandleAsync(context));
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException)
        {
            // Kestrel's AddressInUseException is an InvalidOperationException; a refused bind an IOException.
            await app.DisposeAsync().ConfigureAwait(false);
            throw new OperationException($"cannot listen on {endpoint}: {ex.Message}", ex);
        }

        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
                    ?? $"{(certificate is null ? "http" : "https")}://{endpoint}";
        var address = new Uri(bound);
        if (endpoint.Address.Equals(IPAddress.Any) || endpoint.Address.Equals(IPAddress.IPv6Any))
        {
            // Kestrel reports the wildcard; keep the port it bound.
            address = new UriBuilder(address) { Host = endpoint.Address.Equals(IPAddress.Any) ? "0.0.0.0" : "[::]" }.Uri;
        }

        server = new BundleRegistryServer(app, bundle, registry, address, certificate, request.OnRequest);
        return server;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var clock = Stopwatch.StartNew();
        Interlocked.Increment(ref _inFlight);
        try
        {
            await Registry.HandleAsync(context).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away mid-answer.
        }
        catch (Exception ex) when (ex is IOException or MirrorException)
        {
            // Headers are out: the only honest signal left is a cut connection.
            context.Abort();
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
            Interlocked.Increment(ref _requests);
            var bytes = context.Items.TryGetValue(BundleRegistry.BodyBytesKey, out var counter) && counter is CountingStream counted
                ? counted.Count
                : HttpMethods.IsHead(context.Request.Method) ? 0 : context.Response.ContentLength ?? 0;
            Interlocked.Add(ref _bytes, bytes);
            Log(context, bytes, clock.Elapsed);
        }
    }

    private void Log(HttpContext context, long bytes, TimeSpan elapsed)
    {
        if (_onRequest is null)
        {
            return;
        }

        var request = context.Request;
        var path = request.Path.Value + request.QueryString.Value;
        var status = context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted ? 499 : context.Response.StatusCode;
        _onRequest(new ServedRequest(request.Method, path, status, bytes, elapsed, context.Connection.RemoteIpAddress?.ToString() ?? "-"));
    }

    /// <summary>Loads a PEM certificate and key; a missing or mismatched pair is the caller's input error.</summary>
    private static X509Certificate2? LoadCertificate(ServeRequest request)
    {
        if (request.TlsCertificatePath is null && request.TlsKeyPath is null)
        {
            return null;
        }

        if (request.TlsCertificatePath is null || request.TlsKeyPath is null)
        {
            throw new InputException("TLS needs both a PEM certificate and its PEM private key");
        }

        foreach (var path in new[] { request.TlsCertificatePath, request.TlsKeyPath })
        {
            if (!File.Exists(path))
            {
                throw new InputException($"TLS file '{path}' does not exist");
            }
        }

        try
        {
            return X509Certificate2.CreateFromPemFile(request.TlsCertificatePath, request.TlsKeyPath);
        }
        catch (CryptographicException ex)
        {
            throw new InputException($"cannot load the TLS certificate '{request.TlsCertificatePath}' with key '{request.TlsKeyPath}': {ex.Message}", ex);
        }
    }

    /// <summary>A host lifetime that leaves SIGINT/SIGTERM to the caller (the default console lifetime would take them).</summary>
    private sealed class CallerOwnedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
