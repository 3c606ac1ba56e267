using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;

namespace OpenLm.Mirror.PlatformSpec.ChartSources;

/// <summary>A chart archive downloaded and verified: its file, sha256 and Chart.yaml name and version.</summary>
public sealed record DownloadedChart(ChartSource Source, string ArchivePath, Digest Digest, string Name, string Version);

/// <summary>
/// Downloads charts from OCI registries and Helm HTTP repositories into a private temporary directory, through the
/// connector's HTTP stack (proxy, CA file, plain HTTP, retries, credentials, rate limits). Every archive is streamed to a
/// <c>.partial</c> file while hashed, checked against what the source and the caller expect, and only then renamed into
/// place; nothing is buffered whole. Disposing deletes the directory and everything in it.
/// The directory is named after the owning process (<c>openlm-charts-&lt;pid&gt;-&lt;random&gt;</c>), so a run killed
/// before it could dispose (kill -9, power loss) leaks it only until the next downloader starts: that one removes every
/// such directory whose owner process is gone, and leaves those of live processes (a parallel resolve) alone.
/// </summary>
public sealed class ChartDownloader : IDisposable
{
    private const string HelmLegacyChartLayer = "application/tar+gzip";
    private readonly RegistryConnector _registries;
    private readonly IMirrorLog _log;
    private readonly string _directory;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Task<HelmRepositoryIndex>> _indexes = new(StringComparer.Ordinal);
    private int _count;

    private const string DirectoryPrefix = "openlm-charts-";

    public ChartDownloader(RegistryConnector registries, IMirrorLog log)
        : this(registries, log, Path.GetTempPath())
    {
    }

    /// <param name="temporaryRoot">Where the per-run directory is made and abandoned ones are swept (the system temp directory by default).</param>
    public ChartDownloader(RegistryConnector registries, IMirrorLog log, string temporaryRoot)
    {
        ArgumentException.ThrowIfNullOrEmpty(temporaryRoot);
        _registries = registries;
        _log = log;
        RemoveAbandoned(temporaryRoot, log);
        _directory = Path.Combine(temporaryRoot, FormattableString.Invariant($"{DirectoryPrefix}{Environment.ProcessId}-{Guid.NewGuid():N}"));
        Directory.CreateDirectory(_directory);
    }

    /// <summary>The directory the archives are downloaded into (removed on dispose).</summary>
    public string DirectoryPath => _directory;

    /// <summary>
    /// Removes the download directories under <paramref name="root"/> whose owner process no longer runs. A directory
    /// whose owner is alive, or whose name carries no owner, is left alone; one that cannot be removed is logged and kept.
    /// </summary>
    private static void RemoveAbandoned(string root, IMirrorLog log)
    {
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.EnumerateDirectories(root, DirectoryPrefix + "*").ToList();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return;
        }

        foreach (var path in candidates)
        {
            var name = Path.GetFileName(path)[DirectoryPrefix.Length..];
            var dash = name.IndexOf('-', StringComparison.Ordinal);
            if (dash <= 0 || !int.TryParse(name.AsSpan(0, dash), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid) || IsRunning(pid))
            {
                continue;
            }

            try
            {
                Directory.Delete(path, recursive: true);
                log.Info($"removed chart downloads left by process {pid}, which is no longer running: {path}");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                log.Warn($"could not remove chart downloads left by process {pid} ({path}): {ex.Message}");
            }
        }
    }

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId)
        {
            return true;
        }

        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return true; // cannot tell: keep the directory rather than risk another run's files
        }
    }

    /// <summary>
    /// Downloads the chart <paramref name="source"/> names. With <paramref name="pinned"/> (the lock's sha256) a chart whose
    /// bytes differ is refused (<see cref="IntegrityException"/>, naming the chart and its source).
    /// </summary>
    public async Task<DownloadedChart> DownloadAsync(ChartSource source, Digest? pinned, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        var index = Interlocked.Increment(ref _count);
        var target = Path.Combine(_directory, FormattableString.Invariant($"{index:D3}-{SafeName(source)}.tgz"));
        var digest = source switch
        {
            OciChartSource oci => await DownloadOciAsync(oci, target, cancellationToken).ConfigureAwait(false),
            HelmRepositoryChartSource repo => await DownloadFromRepositoryAsync(repo, target, cancellationToken).ConfigureAwait(false),
            _ => throw new ArgumentException($"chart source {source} is not downloaded", nameof(source)),
        };

        if (pinned is { } expected && expected != digest)
        {
            File.Delete(target);
            throw new IntegrityException($"chart from {source} changed since it was locked: its sha256 is now {digest}, the lock pins {expected}; resolve the release again if the change is intended");
        }

        var metadata = await HelmChartPacker.ReadMetadataAsync(target, cancellationToken).ConfigureAwait(false);
        CheckIdentity(source, metadata);
        _log.Info($"downloaded chart {metadata.Name} {metadata.Version} from {source} ({digest})");
        return new DownloadedChart(source, target, digest, metadata.Name, metadata.Version);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    /// <summary>The archive must be the chart the source names: a Helm repository entry or an OCI tag that serves another chart is refused.</summary>
    private static void CheckIdentity(ChartSource source, HelmChartMetadata metadata)
    {
        switch (source)
        {
            case HelmRepositoryChartSource repo when metadata.Name != repo.Name || metadata.Version.TrimStart('v') != repo.Version.TrimStart('v'):
                throw new IntegrityException($"chart from {source}: the archive holds chart '{metadata.Name}' {metadata.Version}, not '{repo.Name}' {repo.Version}");
            case OciChartSource { Reference.Tag: { } tag } oci when metadata.Version.Replace('+', '_') != tag:
                throw new IntegrityException($"chart from {oci}: the archive holds chart '{metadata.Name}' version {metadata.Version}, not the version its tag '{tag}' names");
        }
    }

    private async Task<Digest> DownloadOciAsync(OciChartSource source, string target, CancellationToken cancellationToken)
    {
        var reference = source.Reference;
        var repository = _registries.SourceRepository(reference);
        var (root, bytes) = await repository.FetchManifestAsync(reference.TagOrDigest, cancellationToken).ConfigureAwait(false);
        if (reference.Digest is { } pinned && pinned != root.Digest)
        {
            throw new IntegrityException($"{source}: the registry served manifest {root.Digest}");
        }

        var document = ManifestDocument.Parse(bytes, root.MediaType, source.ToString());
        if (document.IsIndex || document.Config is null)
        {
            throw new InputException($"{source} is not a Helm chart: it is an {(document.IsIndex ? "image index" : root.MediaType)}, not an OCI manifest with config {MediaTypes.HelmConfig}");
        }

        if (document.Config.MediaType != MediaTypes.HelmConfig)
        {
            throw new InputException($"{source} is not a Helm chart: its config media type is {document.Config.MediaType}, a Helm chart's is {MediaTypes.HelmConfig} (is it a container image? list it under images)");
        }

        // helm push writes one chart layer (plus an optional provenance layer); Helm 3.0-3.7 used application/tar+gzip.
        var layers = document.Layers.Where(l => l.MediaType is MediaTypes.HelmChart or HelmLegacyChartLayer).ToList();
        if (layers.Count != 1)
        {
            throw new InputException(FormattableString.Invariant($"{source} is not a usable Helm chart: it has {layers.Count} chart content layers ({MediaTypes.HelmChart}), Helm needs exactly one"));
        }

        var layer = layers[0];
        if (layer.Digest.Algorithm != "sha256")
        {
            throw new InputException($"{source}: the chart layer's digest {layer.Digest} is not sha256");
        }

        var partial = target + ".partial";
        var body = await repository.FetchAsync(layer, cancellationToken).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            // FetchAsync verifies the layer's size and digest as it streams; the rename happens only after.
            await using var file = new FileStream(partial, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await body.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
        }

        File.Move(partial, target);
        return layer.Digest;
    }

    private async Task<Digest> DownloadFromRepositoryAsync(HelmRepositoryChartSource source, string target, CancellationToken cancellationToken)
    {
        var (entry, url) = await LocateAsync(source, cancellationToken).ConfigureAwait(false);
        var partial = target + ".partial";
        var digest = await GetToFileAsync(source, url, partial, cancellationToken).ConfigureAwait(false);
        if (entry.Digest is { } listed && listed != digest)
        {
            File.Delete(partial);
            throw new IntegrityException($"chart from {source}: {RegistryException.StripQuery(url)} hashes to {digest}, but the repository's index.yaml lists digest {listed}");
        }

        File.Move(partial, target);
        return digest;
    }

    /// <summary>
    /// The index entry of a repository chart and the URL its archive is downloaded from (<c>urls[0]</c> resolved against
    /// the repository URL, as Helm does; it may be on another host). An unknown chart or version is an <see cref="InputException"/>.
    /// </summary>
    public async Task<(HelmIndexEntry Entry, Uri ArchiveUrl)> LocateAsync(HelmRepositoryChartSource source, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        // Several charts of one repository read its index once per run.
        var index = await _indexes.GetOrAdd(source.IndexUri.AbsoluteUri, _ => ReadIndexAsync(source, cancellationToken)).ConfigureAwait(false);
        var entry = index.Select(source.Name, source.Version);
        return (entry, HelmRepositoryIndex.ResolveUrl(source.BaseUri, entry.Urls[0]));
    }

    private async Task<HelmRepositoryIndex> ReadIndexAsync(HelmRepositoryChartSource source, CancellationToken cancellationToken)
    {
        var uri = source.IndexUri;
        using var response = await SendAsync(source, uri, cancellationToken).ConfigureAwait(false);
        if (response.Content.Headers.ContentLength > HelmRepositoryIndex.MaxIndexBytes)
        {
            throw new OperationException($"{uri} is {response.Content.Headers.ContentLength} bytes, more than the {HelmRepositoryIndex.MaxIndexBytes} byte limit for a Helm repository index");
        }

        // The index is a document to parse, not a blob: read it whole, under the cap.
        var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            var chunk = new byte[1 << 16];
            int read;
            while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > HelmRepositoryIndex.MaxIndexBytes)
                {
                    throw new OperationException($"{uri} is more than the {HelmRepositoryIndex.MaxIndexBytes} byte limit for a Helm repository index");
                }

                buffer.Write(chunk, 0, read);
            }

            string text;
            try
            {
                text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
            }
            catch (DecoderFallbackException ex)
            {
                throw new InputException($"{uri} is not a Helm repository index: not UTF-8 text", ex);
            }

            return HelmRepositoryIndex.Parse(text, uri.AbsoluteUri);
        }
    }

    /// <summary>GETs <paramref name="url"/> into <paramref name="partial"/>, hashing as it streams; a body cut short is fetched again within the retry count.</summary>
    private Task<Digest> GetToFileAsync(HelmRepositoryChartSource source, Uri url, string partial, CancellationToken cancellationToken) =>
        _registries.Client(url.Authority).RetryBodyAsync($"GET {RegistryException.StripQuery(url)}", ct => GetToFileOnceAsync(source, url, partial, ct), cancellationToken, _log);

    private async Task<Digest> GetToFileOnceAsync(HelmRepositoryChartSource source, Uri url, string partial, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(source, url, cancellationToken).ConfigureAwait(false);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            await using var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            var chunk = new byte[1 << 16];
            int read;
            while ((read = await body.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(chunk, 0, read);
                await file.WriteAsync(chunk.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            }
        }

        if (response.Content.Headers.ContentLength is { } length && new FileInfo(partial).Length != length)
        {
            throw new IOException(FormattableString.Invariant($"{RegistryException.StripQuery(url)}: the body ended after {new FileInfo(partial).Length} of {length} bytes"));
        }

        return Digest.FromHash("sha256", hash.GetHashAndReset());
    }

    /// <summary>One GET through the registry client of the repository's host (its retries, proxy, TLS, credentials); a failure names the repository once.</summary>
    private async Task<HttpResponseMessage> SendAsync(HelmRepositoryChartSource source, Uri uri, CancellationToken cancellationToken)
    {
        var client = _registries.Client(uri.Authority);
        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(HttpMethod.Get, uri, [], cancellationToken, r => r.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("*/*"))).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or TimeoutException or System.Net.Sockets.SocketException)
        {
            throw new OperationException($"Helm repository {source.Display} is unreachable: {ex.Message}", ex);
        }

        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        var status = response.StatusCode;
        response.Dispose();
        var what = $"GET {RegistryException.StripQuery(uri)} answered {(int)status} {status}";
        throw status switch
        {
            HttpStatusCode.NotFound when uri == source.IndexUri => new NotFoundException($"Helm repository {source.Display} has no index.yaml ({what}): check the repository URL"),
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => new OperationException($"Helm repository {source.Display} refused access ({what}): store credentials for {uri.Authority}")
            {
                Remedy = Remedy.Credentials,
                Subject = uri.Authority,
            },
            _ => new OperationException($"Helm repository {source.Display}: {what}"),
        };
    }

    private static string SafeName(ChartSource source)
    {
        var name = source switch
        {
            OciChartSource oci => oci.Reference.Repository[(oci.Reference.Repository.LastIndexOf('/') + 1)..] + "-" + (oci.Reference.Tag ?? "digest"),
            HelmRepositoryChartSource repo => repo.Name + "-" + repo.Version,
            _ => "chart",
        };
        return new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_').ToArray());
    }
}
