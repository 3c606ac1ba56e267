using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.IntegrationTests.Infrastructure;

/// <summary>
/// A real Kestrel listener bound to a loopback address on an OS-assigned port, running a single
/// terminal <see cref="RequestDelegate"/>. Plain HTTP/1.1, no logging, no size/rate limits, async IO only.
/// Shared plumbing for the test-side emulators (<see cref="EcrPublicEmulator"/>, <see cref="TamperingProxy"/>).
/// </summary>
public sealed class LoopbackHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _disposed;

    private LoopbackHttpServer(WebApplication app, Uri baseAddress)
    {
        _app = app;
        BaseAddress = baseAddress;
    }

    /// <summary>Base address such as <c>http://127.0.0.1:43127/</c> (always ends with a slash).</summary>
    public Uri BaseAddress { get; }

    /// <summary>Host and port, e.g. <c>127.0.0.1:43127</c>.</summary>
    public string Authority => BaseAddress.Authority;

    /// <summary>Starts Kestrel on <paramref name="address"/> (must be a loopback address) with port 0.</summary>
    public static async Task<LoopbackHttpServer> StartAsync(
        IPAddress address, RequestDelegate handler, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(handler);
        if (!IPAddress.IsLoopback(address))
        {
            throw new ArgumentException($"Only loopback addresses are allowed, got {address}.", nameof(address));
        }

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(LoopbackHttpServer).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.WebHost.UseKestrelCore().ConfigureKestrel(options =>
        {
            options.AddServerHeader = false;
            options.AllowSynchronousIO = false;
            options.Limits.MaxRequestBodySize = null;
            options.Limits.MinRequestBodyDataRate = null;
            options.Limits.MinResponseDataRate = null;
            options.Listen(address, 0);
        });

        var app = builder.Build();
        app.Run(handler);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);

        var bound = app.Urls.FirstOrDefault()
            ?? throw new InvalidOperationException("Kestrel did not report a bound address.");
        var uri = new Uri(bound.EndsWith('/') ? bound : bound + "/", UriKind.Absolute);
        return new LoopbackHttpServer(app, uri);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            try
            {
                await _app.StopAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Connections that did not drain in time are aborted; fine for a test server.
            }
        }

        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
