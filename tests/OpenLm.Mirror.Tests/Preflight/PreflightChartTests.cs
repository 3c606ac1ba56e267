using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Export;
using OpenLm.Mirror.Preflight;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Registry.Auth;
using OpenLm.Mirror.Tests.Bundle;
using OpenLm.Mirror.Tests.Cli;
using OpenLm.Mirror.Tests.Core;
using Xunit;

namespace OpenLm.Mirror.Tests.Preflight;

/// <summary>
/// Preflight of a release's chart sources against loopback fakes: a Helm repository on 127.0.0.1 whose index sends
/// the archive to a second host on 127.0.0.2 (as charts hosted on GitHub releases are), and an OCI chart in a registry.
/// </summary>
public sealed class PreflightChartTests : IAsyncLifetime
{
    private const string ChartName = "openlm";
    private const string ChartVersion = "1.2.0";
    private readonly TempDir _temp = new();
    private readonly byte[] _archive = new byte[3000];
    private LoopbackServer _repository = null!;
    private LoopbackServer _releases = null!;
    private LoopbackServer _storage = null!;
    private FakeRegistry _registry = null!;
    private string _indexVersion = ChartVersion;
    private bool _redirectToStorage;

    private string ArchiveDigest => Convert.ToHexStringLower(SHA256.HashData(_archive));

    public Task InitializeAsync()
    {
        Random.Shared.NextBytes(_archive);
        _storage = LoopbackServer.Start(ServeStorageAsync, "127.0.0.3");
        _releases = LoopbackServer.Start(ServeReleaseAsync, "127.0.0.2");
        _repository = LoopbackServer.Start(ServeIndexAsync);
        _registry = FakeRegistry.Start();
        _registry.Intercept = async context =>
        {
            // The fake serves repositories only: answer the API's base as Distribution does without auth.
            if (context.Request.Url!.AbsolutePath != "/v2/")
            {
                return false;
            }

            await Reply.JsonAsync(context, 200, "{}");
            return true;
        };
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _repository.DisposeAsync();
        await _releases.DisposeAsync();
        await _storage.DisposeAsync();
        await _registry.DisposeAsync();
        _temp.Dispose();
    }

    [Fact]
    public async Task RunAsync_HelmRepositoryWithArchiveOnAnotherHost_BothHostsCheckedAndInTheAllowList()
    {
        // Given a manifest with one chart from a Helm repository whose index lists the archive on 127.0.0.2
        using var connector = Connector();

        // When preflight runs over it
        var report = await PreflightRunner.RunAsync(PreflightRequest.FromManifest(RepoManifest()), connector);

        // Then the index listed the version, the archive host was probed and served the archive the index's digest names
        Assert.True(report.Reachable, string.Join("\n", report.Checks));
        Assert.Equal(new[] { _repository.Authority, _releases.Authority }.Order(StringComparer.Ordinal), report.AllowList);
        Assert.Equal(PreflightRole.ChartRepository, Assert.Single(report.Endpoints, e => e.Address == _repository.Authority).Role);
        var archiveHost = Assert.Single(report.Endpoints, e => e.Address == _releases.Authority);
        Assert.Equal((PreflightRole.ChartArchive, _repository.Authority), (archiveHost.Role, archiveHost.Via));
        var index = Assert.Single(report.Checks, c => c.Kind == PreflightCheckKind.Index);
        Assert.Equal((PreflightStatus.Ok, _repository.Authority), (index.Status, index.Endpoint));
        Assert.Contains($"lists chart '{ChartName}' {ChartVersion}", index.Detail, StringComparison.Ordinal);
        Assert.Contains(report.Checks, c => c.Kind == PreflightCheckKind.Tcp && c.Endpoint == _releases.Authority && c.Status == PreflightStatus.Ok);
        var served = Assert.Single(report.Checks, c => c.Kind == PreflightCheckKind.Blob);
        Assert.Equal(_releases.Authority, served.Endpoint);
        Assert.Contains("digest verified", served.Detail, StringComparison.Ordinal);
        Assert.Contains(_releases.Requests, r => r.Path.EndsWith($"/{ChartName}-{ChartVersion}.tgz", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_ArchiveHostRedirects_TheStorageHostIsProbedListedAndServesTheArchive()
    {
        // Given an archive host that redirects downloads to a storage host (GitHub releases send them to objects.githubusercontent.com)
        _redirectToStorage = true;
        using var connector = Connector();

        // When preflight runs
        var report = await PreflightRunner.RunAsync(PreflightRequest.FromManifest(RepoManifest()), connector);

        // Then all three hosts are in the allow-list, the redirect is reported, and the storage host served the archive
        Assert.True(report.Reachable, string.Join("\n", report.Checks));
        Assert.Equal(new[] { _repository.Authority, _releases.Authority, _storage.Authority }.Order(StringComparer.Ordinal), report.AllowList);
        var storage = Assert.Single(report.Endpoints, e => e.Address == _storage.Authority);
        Assert.Equal((PreflightRole.Cdn, _releases.Authority), (storage.Role, storage.Via));
        Assert.Contains(report.Checks, c => c.Kind == PreflightCheckKind.Blob && c.Endpoint == _releases.Authority && c.Detail.Contains($"redirected (302) to {_storage.Authority}", StringComparison.Ordinal));
        Assert.Contains("digest verified", Assert.Single(report.Checks, c => c.Kind == PreflightCheckKind.Blob && c.Endpoint == _storage.Authority).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_IndexLacksTheVersion_IndexFailedExit1AndTheArchiveHostIsNotGuessed()
    {
        // Given a repository whose index lists only another version
        _indexVersion = "1.1.0";

        // When preflight runs from the command line
        var (exit, stdout, _) = await RunCliAsync("preflight", "--manifest", RepoManifest(), "--json");

        // Then exit 1: the index verdict failed naming the missing version and what the index has
        Assert.Equal(ExitCodes.Operational, exit);
        var root = JsonContract.Validate("preflight", stdout, ExitCodes.Operational);
        var checks = root.GetProperty("checks").EnumerateArray().ToList();
        var index = Assert.Single(checks, c => c.GetProperty("check").GetString() == "index");
        Assert.Equal("failed", index.GetProperty("status").GetString());
        Assert.Contains($"no version '{ChartVersion}'", index.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("1.1.0", index.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal([_repository.Authority], root.GetProperty("allowList").EnumerateArray().Select(e => e.GetString()));
        Assert.Empty(_releases.Requests);
    }

    [Fact]
    public async Task RunAsync_LockPinsAnotherArchive_IndexFailsAsChanged()
    {
        // Given a lock whose repository chart pins a digest the index no longer lists
        var lockPath = _temp.File("lock.json");
        new LockFile
        {
            Name = "p",
            Version = "1.0.0",
            Source = "example.test/p",
            Images = [],
            Charts = [new LockedChart { Repo = $"{_repository.BaseAddress}charts", Name = ChartName, Version = ChartVersion, Digest = "sha256:" + new string('a', 64) }],
        }.Save(lockPath);
        using var connector = Connector();

        // When preflight runs over the lock
        var report = await PreflightRunner.RunAsync(PreflightRequest.FromLock(lockPath), connector);

        // Then the index check failed as a change since the lock, and the archive was not fetched
        var failure = Assert.Single(report.Failures);
        Assert.Equal(PreflightCheckKind.Index, failure.Kind);
        Assert.Contains("changed since it was locked", failure.Detail, StringComparison.Ordinal);
        Assert.Empty(_releases.Requests);
    }

    [Fact]
    public async Task RunAsync_OciChartRef_RegistryCheckedWithTheHelmManifestAndChartLayer()
    {
        // Given a chart pushed to a registry as Helm does (config media type helm, one chart content layer)
        var config = Encoding.UTF8.GetBytes($"{{\"name\":\"{ChartName}\",\"version\":\"{ChartVersion}\",\"apiVersion\":\"v2\"}}");
        var configDigest = _registry.AddBlob(config);
        var layerDigest = _registry.AddBlob(_archive);
        var manifest = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"," +
            $"\"config\":{{\"mediaType\":\"application/vnd.cncf.helm.config.v1+json\",\"digest\":\"{configDigest}\",\"size\":{config.Length}}}," +
            $"\"layers\":[{{\"mediaType\":\"application/vnd.cncf.helm.chart.content.v1.tar+gzip\",\"digest\":\"{layerDigest}\",\"size\":{_archive.Length}}}]}}";
        _registry.AddManifest(ChartVersion, Encoding.UTF8.GetBytes(manifest), "application/vnd.oci.image.manifest.v1+json");
        var path = _temp.File("oci-platform.yaml");
        File.WriteAllText(path, $"{Header}charts:\n  - ref: oci://{_registry.Authority}/{FakeRegistry.Repository}:{ChartVersion}\n");
        using var connector = Connector();

        // When preflight runs over the manifest
        var report = await PreflightRunner.RunAsync(PreflightRequest.FromManifest(path), connector);

        // Then the registry is an endpoint like any other, the chart manifest and its chart layer were fetched
        Assert.True(report.Reachable, string.Join("\n", report.Checks));
        Assert.Equal([_registry.Authority], report.AllowList);
        var fetched = Assert.Single(report.Checks, c => c.Kind == PreflightCheckKind.Manifest);
        Assert.Contains($"chart layer {layerDigest}", fetched.Detail, StringComparison.Ordinal);
        Assert.Contains($"blob {layerDigest}", Assert.Single(report.Checks, c => c.Kind == PreflightCheckKind.Blob && c.Status == PreflightStatus.Ok).Detail, StringComparison.Ordinal);
    }

    private const string Header = "apiVersion: mirror.openlm.io/v1\nkind: Platform\nname: preflight\nversion: \"1.0.0\"\nsource: example.test/p\n";

    private static RegistryConnector Connector() => new(new RegistryOptions { PlainHttp = true, Retries = 0, Credentials = AnonymousCredentialProvider.Instance });

    private string RepoManifest()
    {
        var path = _temp.File($"platform-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, $"{Header}charts:\n  - repo: {_repository.BaseAddress}charts\n    name: {ChartName}\n    version: {ChartVersion}\n");
        return path;
    }

    private async Task ServeIndexAsync(HttpListenerContext context)
    {
        if (context.Request.Url!.AbsolutePath != "/charts/index.yaml")
        {
            await Reply.StatusAsync(context, 404);
            return;
        }

        var index = $"apiVersion: v1\nentries:\n  {ChartName}:\n    - name: {ChartName}\n      version: {_indexVersion}\n      digest: {ArchiveDigest}\n" +
            $"      urls:\n        - {_releases.BaseAddress}download/v{_indexVersion}/{ChartName}-{_indexVersion}.tgz\n";
        await Reply.BytesAsync(context, 200, Encoding.UTF8.GetBytes(index), "application/x-yaml");
    }

    private async Task ServeReleaseAsync(HttpListenerContext context)
    {
        if (!context.Request.Url!.AbsolutePath.EndsWith(".tgz", StringComparison.Ordinal))
        {
            await Reply.StatusAsync(context, 404);
            return;
        }

        if (_redirectToStorage)
        {
            await Reply.StatusAsync(context, 302, new Dictionary<string, string> { ["Location"] = $"{_storage.BaseAddress}blob?sig=abc" });
            return;
        }

        await Reply.BytesAsync(context, 200, _archive, "application/gzip");
    }

    private Task ServeStorageAsync(HttpListenerContext context) => Reply.BytesAsync(context, 200, _archive, "application/octet-stream");

    private static async Task<(int Exit, string Out, string Err)> RunCliAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, CliConsole.Capture(output, error));
        return (exit, output.ToString(), error.ToString());
    }
}
