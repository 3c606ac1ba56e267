using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Serve;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary>
/// <c>openlm-mirror serve BUNDLE --key release.pub [--addr 127.0.0.1:5000]</c>: a read-only OCI registry served straight
/// from the bundle file, after the signature and every digest are verified.
/// </summary>
internal static class ServeCommand
{
    /// <summary>How long requests in flight may take to finish after SIGINT/SIGTERM before they are cut.</summary>
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(60);

    public static Command Create(CliConsole console)
    {
        var bundle = new Argument<string>("BUNDLE") { Description = "The signed bundle (.tar or .tar.zst); served in place, nothing is extracted" };
        var key = new Option<string?>("--key") { HelpName = "FILE", Description = "The release public key (SPKI PEM); the signature and every digest are checked before the first request is answered" };
        var skipSignature = new Option<bool>("--insecure-skip-signature") { Description = "Serve without checking the signature (digests are still verified). Dangerous." };
        var addr = new Option<string>("--addr") { HelpName = "IP:PORT", Description = "Where to listen (port 0 picks a free one); anything but loopback exposes the bundle to the network", DefaultValueFactory = _ => ServeRequest.DefaultAddress };
        var tlsCert = new Option<string?>("--tls-cert") { HelpName = "FILE", Description = "Serve HTTPS with this PEM certificate (chain); needs --tls-key" };
        var tlsKey = new Option<string?>("--tls-key") { HelpName = "FILE", Description = "The PEM private key of --tls-cert" };
        var toNames = new Option<string?>("--to-names") { HelpName = "HOST[:PORT][/PREFIX]", Description = "Also answer under the names 'import --to HOST[:PORT][/PREFIX]' would give the images (path part), so values written for that registry work unchanged" };
        var map = new Option<string[]>("--map") { HelpName = "FROM=TO", Description = "The import's rename rules for --to-names (repeatable, longest FROM wins)" };
        var maxPathComponents = BundleTargetOptions.MaxPathComponentsOption();
        var maxStreams = new Option<int>("--max-streams") { HelpName = "N", Description = "Blob bodies streamed at once; further blob requests wait", DefaultValueFactory = _ => 16 };
        var maxConnections = new Option<int>("--max-connections") { HelpName = "N", Description = "Client connections open at once", DefaultValueFactory = _ => 128 };
        var json = new Option<bool>("--json") { Description = "Print one JSON line on stdout when ready (address, repositories, images, bundle digest)" };
        var command = new Command("serve", "Serve a verified bundle as a read-only OCI registry (pull with containerd, podman, skopeo, copy; or seed a real registry from it)");
        command.Arguments.Add(bundle);
        foreach (var option in new Option[] { key, skipSignature, addr, tlsCert, tlsKey, toNames, map, maxPathComponents, maxStreams, maxConnections, json })
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parse, cancellationToken) =>
        {
            var path = parse.GetValue(bundle)!;
            KeyInputs.RequireFile(path, "BUNDLE");
            var keyPath = parse.GetValue(key);
            var skip = parse.GetValue(skipSignature);
            if (keyPath is null && !skip)
            {
                throw new IntegrityException("serve refuses to run without --key (the release public key); --insecure-skip-signature is the explicit opt-out");
            }

            if (keyPath is not null && skip)
            {
                throw new InputException("--key and --insecure-skip-signature cannot be combined");
            }

            if (keyPath is not null)
            {
                KeyInputs.RequireFile(keyPath, "--key");
            }

            if (parse.GetValue(maxPathComponents) is not null && parse.GetValue(toNames) is null)
            {
                throw new InputException("--max-path-components flattens the --to-names names; give --to-names too");
            }

            if (parse.GetValue(map) is { Length: > 0 } && parse.GetValue(toNames) is null)
            {
                throw new InputException("--map renames the --to-names names; give --to-names too");
            }

            var streams = parse.GetValue(maxStreams);
            var connections = parse.GetValue(maxConnections);
            if (streams is < 1 or > 1024 || connections is < 1 or > 65536)
            {
                throw new InputException($"--max-streams must be 1..1024 and --max-connections 1..65536 (got {streams}, {connections})");
            }

            if (parse.GetValue(tlsCert) is null != parse.GetValue(tlsKey) is null)
            {
                throw new InputException("--tls-cert and --tls-key go together");
            }

            var log = OutputOptions.Log(parse, console);
            var address = parse.GetValue(addr)!;
            if (!IPAddress.IsLoopback(ServeRequest.ParseAddress(address).Address))
            {
                log.Warn($"--addr {address} is not a loopback address: anyone who can reach it can pull every image of the bundle (there is no authentication)");
            }

            using var publicKey = keyPath is null ? null : VerificationKey.Load(keyPath);
            if (publicKey is null)
            {
                log.Warn($"{path}: the signature is NOT checked (explicitly skipped); digests are still verified, but nothing proves who made this bundle");
            }

            // SIGINT/SIGTERM stop gracefully: while verifying, the start is cancelled (a temporary copy is removed); while
            // serving, no new connections, requests in flight finish, then exit 0. (Without these registrations the
            // runtime's default would end the process mid-blob.)
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => Stop(context, stop));
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => Stop(context, stop));
            var accessLog = console.IsInteractive ? null : new AccessLog(console.Error);
            var clock = Stopwatch.StartNew();
            await console.Error.WriteLineAsync($"verifying {path} ...").ConfigureAwait(false);
            var server = await BundleRegistryServer.StartAsync(
                new ServeRequest
                {
                    BundlePath = path,
                    Key = publicKey,
                    AllowUnsigned = publicKey is null,
                    Address = address,
                    TlsCertificatePath = parse.GetValue(tlsCert),
                    TlsKeyPath = parse.GetValue(tlsKey),
                    TargetNames = parse.GetValue(toNames),
                    Maps = parse.GetValue(map) ?? [],
                    MaxPathComponents = parse.GetValue(maxPathComponents),
                    MaxConcurrentBlobs = streams,
                    MaxConnections = connections,
                    OnRequest = accessLog is null ? null : accessLog.Write,
                },
                cancellationToken: stop.Token).ConfigureAwait(false);

            await PrintReadyAsync(console, server, parse.GetValue(json), clock.Elapsed).ConfigureAwait(false);
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            await console.Error.WriteLineAsync($"stopping: {server.InFlight} request(s) in flight may finish (up to {DrainTimeout.TotalSeconds:0}s)").ConfigureAwait(false);
            await StopAsync(server, console, log).ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    private static void Stop(PosixSignalContext context, CancellationTokenSource stop)
    {
        context.Cancel = true;
        stop.Cancel();
    }

    private static async Task StopAsync(BundleRegistryServer server, CliConsole console, IMirrorLog log)
    {
        try
        {
            await server.StopAsync(DrainTimeout).ConfigureAwait(false);
            await console.Error.WriteLineAsync($"stopped: {server.Requests} requests answered, {Format.Bytes(server.BytesSent)} sent").ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            log.Warn($"stopping: {ex.Message}");
        }
        finally
        {
            await server.DisposeAsync().ConfigureAwait(false);
            await console.Error.FlushAsync().ConfigureAwait(false);
        }
    }

    private static async Task PrintReadyAsync(CliConsole console, BundleRegistryServer server, bool json, TimeSpan elapsed)
    {
        var catalog = server.Catalog;
        if (json)
        {
            // serve's --json document is this ready line (one line, printed while it keeps serving): the envelope fields are its own.
            var ready = new
            {
                schemaVersion = JsonEnvelope.SchemaVersion,
                command = "serve",
                ok = true,
                exitCode = ExitCodes.Success,
                @event = "ready",
                address = server.Address.ToString().TrimEnd('/'),
                host = server.Authority,
                bundleDigest = server.Head.BundleDigest.ToString(),
                platform = Vocabulary.Release(server.Head.Manifest.Platform),
                signature = Vocabulary.Signature(server.Head.Signature, server.Head.VerifiedKeyId),
                repositories = catalog.Repositories.Keys.ToList(),
                images = catalog.Images.Select(i => new { source = i.Source.ToString(), digest = i.Descriptor.Digest.ToString(), mediaType = i.Descriptor.MediaType, names = i.Names }).ToList(),
            };
            await console.Out.WriteLineAsync(JsonSerializer.Serialize(ready, Format.JsonLine)).ConfigureAwait(false);
        }
        else
        {
            foreach (var image in catalog.Images)
            {
                await console.Out.WriteLineAsync($"{server.Authority}/{string.Join($", {server.Authority}/", image.Names)}  {image.Descriptor.Digest}  <- {image.Source}").ConfigureAwait(false);
            }

            await console.Out.WriteLineAsync(
                $"serving {catalog.Images.Count} images in {catalog.Repositories.Count} repositories at {server.Address.ToString().TrimEnd('/')} " +
                $"(bundle {server.Head.BundleDigest}, verified in {Format.Seconds(elapsed)}); Ctrl+C stops").ConfigureAwait(false);
        }

        await console.Out.FlushAsync().ConfigureAwait(false);
    }

    /// <summary>One line per request on stderr: remote, method, path, status, bytes, milliseconds.</summary>
    private sealed class AccessLog(TextWriter error)
    {
        private readonly Lock _gate = new();

        public void Write(ServedRequest request)
        {
            var line = string.Create(
                CultureInfo.InvariantCulture,
                $"{request.Remote} {request.Method} {request.Path} {request.Status} {request.Bytes} {request.Elapsed.TotalMilliseconds:0}ms");
            lock (_gate)
            {
                error.WriteLine(line);
            }
        }
    }
}
