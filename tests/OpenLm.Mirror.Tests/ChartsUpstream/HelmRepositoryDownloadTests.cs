using System.Net;
using System.Security.Cryptography;
using System.Text;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Diagnostics;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.PlatformSpec.ChartSources;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Registry.Auth;
using OpenLm.Mirror.TestFixtures;
using OpenLm.Mirror.Tests.Core;
using Xunit;

namespace OpenLm.Mirror.Tests.ChartsUpstream;

/// <summary>
/// Charts from a Helm HTTP repository on a loopback server: <c>index.yaml</c> read, the entry's archive streamed,
/// hashed and checked against the index and the lock; every bad answer a clear error with its exit code.
/// </summary>
public sealed class HelmRepositoryDownloadTests : IAsyncLifetime
{
    private readonly ScratchDirectory _dir = new();
    private byte[] _chart = [];
    private string _indexDigest = string.Empty;
    private string? _requiredAuthorization;
    private int _archiveCutsLeft;
    private LoopbackServer _server = null!;

    private Uri Repository => new(_server.BaseAddress, "stable/");

    private string Sha256 => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(_chart));

    public Task InitializeAsync()
    {
        _chart = File.ReadAllBytes(TestChartBuilder.WriteTgz(_dir.Path, new TestChartOptions { IncludeMalformed = false }).Path);
        _indexDigest = Convert.ToHexStringLower(SHA256.HashData(_chart));
        _server = LoopbackServer.Start(ServeAsync);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _dir.Dispose();
    }

    private string IndexYaml() => $"""
        apiVersion: v1
        entries:
          {TestChartBuilder.UmbrellaName}:
          - name: {TestChartBuilder.UmbrellaName}
            version: {TestChartBuilder.UmbrellaVersion}
            digest: {_indexDigest}
            urls:
            - packages/{TestChartBuilder.UmbrellaName}-{TestChartBuilder.UmbrellaVersion}.tgz
          - name: {TestChartBuilder.UmbrellaName}
            version: 1.250101.0001
            urls: [https://cdn.invalid/old.tgz]
        generated: "2026-08-10T12:50:01Z"
        """;

    private async Task ServeAsync(HttpListenerContext context)
    {
        if (_requiredAuthorization is not null && context.Request.Headers["Authorization"] != _requiredAuthorization)
        {
            await Reply.BytesAsync(context, 401, [], headers: new Dictionary<string, string> { ["WWW-Authenticate"] = "Basic realm=\"charts\"" });
            return;
        }

        switch (context.Request.Url!.AbsolutePath)
        {
            case "/stable/index.yaml":
                await Reply.BytesAsync(context, 200, Encoding.UTF8.GetBytes(IndexYaml()), "application/x-yaml");
                break;
            case var p when p == $"/stable/packages/{TestChartBuilder.UmbrellaName}-{TestChartBuilder.UmbrellaVersion}.tgz":
                if (Interlocked.Decrement(ref _archiveCutsLeft) >= 0)
                {
                    // Headers and half the body, then the connection drops.
                    context.Response.ContentLength64 = _chart.Length;
                    await context.Response.OutputStream.WriteAsync(_chart.AsMemory(0, _chart.Length / 2));
                    await context.Response.OutputStream.FlushAsync();
                    Reply.Reset(context);
                    break;
                }

                await Reply.BytesAsync(context, 200, _chart, "application/gzip");
                break;
            default:
                await Reply.BytesAsync(context, 404, Encoding.UTF8.GetBytes("404 page not found"));
                break;
        }
    }

    private HelmRepositoryChartSource Source(string? version = null) =>
        new(Repository, TestChartBuilder.UmbrellaName, version ?? TestChartBuilder.UmbrellaVersion);

    private static RegistryConnector Connector(ICredentialProvider? credentials = null) =>
        new(new RegistryOptions { Retries = 1, RetryBaseDelay = TimeSpan.FromMilliseconds(10), PlainHttp = credentials is not null, Credentials = credentials ?? AnonymousCredentialProvider.Instance });

    [Fact]
    public async Task ChartDownloader_HelmRepository_DownloadsTheIndexedArchiveAndCleansUp()
    {
        // Given a repository whose index lists the chart under a relative URL with its digest
        using var connector = Connector();
        string archive;
        using (var downloads = new ChartDownloader(connector, NullMirrorLog.Instance))
        {
            // When the chart is downloaded
            var chart = await downloads.DownloadAsync(Source(), pinned: null, CancellationToken.None);

            // Then the file holds exactly the served bytes, named by Chart.yaml
            archive = chart.ArchivePath;
            Assert.Equal(_chart, await File.ReadAllBytesAsync(archive));
            Assert.Equal(Sha256, chart.Digest.ToString());
            Assert.Equal((TestChartBuilder.UmbrellaName, TestChartBuilder.UmbrellaVersion), (chart.Name, chart.Version));
            Assert.False(File.Exists(archive + ".partial"));
        }

        // And nothing is left behind once the downloader is done
        Assert.False(Directory.Exists(Path.GetDirectoryName(archive)));
        Assert.Contains(_server.Requests, r => r.Path == "/stable/index.yaml");
    }

    [Fact]
    public async Task ChartDownloader_TwoChartsOfOneRepository_ReadTheIndexOnce()
    {
        using var connector = Connector();
        using var downloads = new ChartDownloader(connector, NullMirrorLog.Instance);

        var first = await downloads.DownloadAsync(Source(), null, CancellationToken.None);
        var second = await downloads.DownloadAsync(Source(), first.Digest, CancellationToken.None);

        Assert.NotEqual(first.ArchivePath, second.ArchivePath);
        Assert.Single(_server.Requests, r => r.Path == "/stable/index.yaml");
        Assert.Equal(2, _server.Requests.Count(r => r.Path.EndsWith(".tgz", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task ChartDownloader_BodyCutShort_IsFetchedAgainAndVerified()
    {
        // Given a repository whose first answer for the archive breaks off halfway
        _archiveCutsLeft = 1;
        using var connector = Connector();
        var log = new Support.RecordingLog();
        using var downloads = new ChartDownloader(connector, log);

        var chart = await downloads.DownloadAsync(Source(), null, CancellationToken.None);

        Assert.Equal(_chart, await File.ReadAllBytesAsync(chart.ArchivePath));
        Assert.Equal(2, _server.Requests.Count(r => r.Path.EndsWith(".tgz", StringComparison.Ordinal)));
        Assert.Contains(log.Warnings, w => w.Contains("retry 1/1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ChartDownloader_IndexDigestMismatch_IsAnIntegrityErrorAndKeepsNoFile()
    {
        // Given an index whose digest does not match the archive it points to
        _indexDigest = new string('0', 64);
        using var connector = Connector();
        using var downloads = new ChartDownloader(connector, NullMirrorLog.Instance);

        var ex = await Assert.ThrowsAsync<IntegrityException>(() => downloads.DownloadAsync(Source(), null, CancellationToken.None));

        Assert.Contains($"chart from {Source()}", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"hashes to {Sha256}, but the repository's index.yaml lists digest sha256:{_indexDigest}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChartDownloader_PinnedDigestDiffers_RefusesNamingChartAndSource()
    {
        // Given a lock that pinned other bytes for this chart
        using var connector = Connector();
        using var downloads = new ChartDownloader(connector, NullMirrorLog.Instance);
        var pinned = Digest.Parse("sha256:" + new string('a', 64));

        var ex = await Assert.ThrowsAsync<IntegrityException>(() => downloads.DownloadAsync(Source(), pinned, CancellationToken.None));

        Assert.Contains($"chart from {Source()} changed since it was locked: its sha256 is now {Sha256}, the lock pins {pinned}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChartDownloader_RepositoryNeedsBasicAuth_UsesTheStoredCredentials()
    {
        // Given a repository that wants basic auth, and credentials stored for its host
        var credential = new Credential("release", "s3cret");
        _requiredAuthorization = "Basic " + credential.BasicHeaderValue;
        using var connector = Connector(new StaticCredentialProvider(credential));
        using var downloads = new ChartDownloader(connector, NullMirrorLog.Instance);

        var chart = await downloads.DownloadAsync(Source(), null, CancellationToken.None);

        Assert.Equal(Sha256, chart.Digest.ToString());
    }

    [Fact]
    public async Task ChartDownloader_RepositoryNeedsAuthWithoutCredentials_SaysSo()
    {
        _requiredAuthorization = "Basic nope";
        using var connector = Connector();
        using var downloads = new ChartDownloader(connector, NullMirrorLog.Instance);

        var ex = await Assert.ThrowsAsync<OperationException>(() => downloads.DownloadAsync(Source(), null, CancellationToken.None));

        Assert.Contains($"Helm repository {Repository.AbsoluteUri.TrimEnd('/')} refused access", ex.Message, StringComparison.Ordinal);
        Assert.Equal(Remedy.Credentials, ex.Remedy);
    }

    [Fact]
    public async Task ChartDownloader_NoIndexAtTheUrl_NamesTheRepository()
    {
        using var connector = Connector();
        using var downloads = new ChartDownloader(connector, NullMirrorLog.Instance);
        var wrong = new HelmRepositoryChartSource(new Uri(_server.BaseAddress, "nothing-here"), "openlm", "1.0.0");

        var ex = await Assert.ThrowsAsync<NotFoundException>(() => downloads.DownloadAsync(wrong, null, CancellationToken.None));

        Assert.Contains($"Helm repository {_server.BaseAddress}nothing-here has no index.yaml", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resolve_UnknownChartVersion_ExitsUsageListingTheVersions()
    {
        var (exit, _, stderr) = await ResolveAsync($"""
              - repo: {Repository.AbsoluteUri}
                name: {TestChartBuilder.UmbrellaName}
                version: 9.9.9
            """);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains($"chart '{TestChartBuilder.UmbrellaName}' has no version '9.9.9'", stderr, StringComparison.Ordinal);
        Assert.Contains($"available versions: {TestChartBuilder.UmbrellaVersion}, 1.250101.0001", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(_dir.Combine("lock.json")));
    }

    [Fact]
    public async Task Resolve_IndexDigestMismatch_ExitsIntegrity()
    {
        _indexDigest = new string('0', 64);

        var (exit, _, stderr) = await ResolveAsync($"""
              - repo: {Repository.AbsoluteUri}
                name: {TestChartBuilder.UmbrellaName}
                version: {TestChartBuilder.UmbrellaVersion}
            """);

        Assert.Equal(ExitCodes.Integrity, exit);
        Assert.Contains("index.yaml lists digest", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(_dir.Combine("lock.json")));
    }

    [Fact]
    public async Task Resolve_UnreachableRepository_ExitsOneNamingItOnce()
    {
        // Nothing listens on port 1 of the loopback address
        const string unreachable = "http://127.0.0.1:1/charts";

        var (exit, _, stderr) = await ResolveAsync($"""
              - repo: {unreachable}
                name: openlm
                version: 1.0.0
            """);

        Assert.Equal(ExitCodes.Operational, exit);
        Assert.Contains($"Helm repository {unreachable} is unreachable: Connection refused (127.0.0.1:1)", stderr, StringComparison.Ordinal);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(stderr, System.Text.RegularExpressions.Regex.Escape("127.0.0.1:1/charts")));
    }

    [Fact]
    public async Task Resolve_RefAndRepoInOneEntry_ExitsUsageWithFileAndLine()
    {
        var (exit, _, stderr) = await ResolveAsync($"""
              - ref: oci://127.0.0.1:1/charts/openlm:1.0.0
                repo: {Repository.AbsoluteUri}
            """);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("platform.yaml:7: charts[0]: has both 'ref' and 'repo'; use exactly one", stderr, StringComparison.Ordinal);
        Assert.Empty(_server.Requests);
    }

    private async Task<(int Exit, string Out, string Err)> ResolveAsync(string charts)
    {
        var manifest = _dir.WriteText("platform.yaml", $"""
            apiVersion: mirror.openlm.io/v1
            kind: Platform
            name: openlm-platform
            version: "1.0"
            source: 127.0.0.1:1/openlm
            charts:
            {charts}
            """);
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await CliApp.RunAsync(["resolve", "--manifest", manifest, "-o", _dir.Combine("lock.json"), "--retries", "1"], CliConsole.Capture(output, error));
        return (exit, output.ToString(), error.ToString());
    }
}
