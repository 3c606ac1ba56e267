using System.Diagnostics;
using System.Security.Cryptography;
using OpenLm.Mirror.Cli;
using OpenLm.Mirror.Content;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

public sealed class AtomicFileTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void AtomicFile_WriteAllBytes_ReplacesContentAndLeavesNoTempFile()
    {
        // Given an existing file
        var path = _dir.Sub("nested/index.json");
        AtomicFile.WriteAllBytes(path, "old content that is longer"u8);

        // When it is written again atomically
        AtomicFile.WriteAllBytes(path, "new"u8);

        // Then it holds exactly the new content and no temporary sibling is left
        Assert.Equal("new", File.ReadAllText(path));
        Assert.Equal(["index.json"], Directory.GetFiles(_dir.Sub("nested")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task FileLock_AcquireAsync_SecondWaitsForFirst()
    {
        // Given a held lock
        var path = _dir.Sub("x.lock");
        var first = await FileLock.AcquireAsync(path, CancellationToken.None);

        // When a second holder asks for it and the first lets go after a moment
        var second = FileLock.AcquireAsync(path, CancellationToken.None);
        await Task.Delay(150);
        var waited = !second.IsCompleted;
        first.Dispose();
        using var acquired = await second.WaitAsync(TimeSpan.FromSeconds(10));

        // Then the second only got it after the first was released
        Assert.True(waited);
    }

    [Fact]
    public async Task FileLock_AcquireAsync_Cancelled_StopsWaiting()
    {
        // Given a held lock
        var path = _dir.Sub("y.lock");
        using var first = await FileLock.AcquireAsync(path, CancellationToken.None);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));

        // When a second holder waits with a token that is cancelled
        // Then it stops waiting
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => FileLock.AcquireAsync(path, cts.Token));
    }
}

public sealed class OptionsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void RegistryOptions_Setters_RejectNonsense()
    {
        // Given default options
        var options = new RegistryOptions();

        // When values out of range are set
        // Then each is refused naming the property (the CLI turns it into the flag)
        Assert.Equal(nameof(RegistryOptions.Retries), Assert.Throws<ArgumentOutOfRangeException>(() => options.Retries = -1).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.Retries = 101);
        Assert.Equal(nameof(RegistryOptions.RateLimit), Assert.Throws<ArgumentOutOfRangeException>(() => options.RateLimit = 0).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.RateLimit = -3);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.ResumeAttempts = -1);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.IdleTimeout = TimeSpan.Zero);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.ResponseTimeout = TimeSpan.FromSeconds(-1));
        options.RateLimit = null;
        options.RateLimit = 0.5;
        Assert.Equal(0.5, options.RateLimit);
    }

    [Fact]
    public void CopyOptions_Concurrency_MustBeBetween1And256()
    {
        // Given copy options
        var options = new CopyOptions();

        // When the concurrency is set out of range
        // Then it is refused
        Assert.Throws<ArgumentOutOfRangeException>(() => options.Concurrency = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.Concurrency = 257);
        options.Concurrency = 256;
        Assert.Equal(256, options.Concurrency);
    }

    [Fact]
    public void RegistryConnector_MissingCaFile_IsInputError()
    {
        // Given a CA file that does not exist
        var options = new RegistryOptions { CaFile = _dir.Sub("ca.pem") };

        // When a connector is made
        var ex = Assert.Throws<InputException>(() => new RegistryConnector(options));

        // Then the setting and path are named
        Assert.Equal(Setting.CaFile, ex.Setting);
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RegistryConnector_CaFileWithoutCertificates_IsInputError()
    {
        // Given a file that holds no PEM certificate
        var path = _dir.Sub("ca.pem");
        File.WriteAllText(path, "not a certificate\n");

        // When a connector is made
        var ex = Assert.Throws<InputException>(() => new RegistryConnector(new RegistryOptions { CaFile = path }));

        // Then it says so, naming the setting
        Assert.Equal(Setting.CaFile, ex.Setting);
        Assert.Contains("no PEM certificate", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RegistryConnector_Client_IsSharedPerHostAndMapsDockerHubApi()
    {
        // Given a connector
        using var connector = new RegistryConnector(new RegistryOptions());

        // When clients are asked for
        var hub = connector.Client("docker.io");
        var again = connector.Client("DOCKER.IO");
        var ecr = connector.Client("public.ecr.aws");

        // Then one client serves one host, and Docker Hub's API host is registry-1.docker.io over https
        Assert.Same(hub, again);
        Assert.Equal(new Uri("https://registry-1.docker.io/"), hub.BaseUri);
        Assert.Equal(new Uri("https://public.ecr.aws/"), ecr.BaseUri);
        Assert.Equal("mirror/x", connector.Repository(Reference.Parse("public.ecr.aws/mirror/x:1")).RepositoryName);
    }

    [Fact]
    public async Task RegistryClient_RateLimit_SpacesRequestsToTheRegistry()
    {
        // Given a client limited to 20 requests per second
        await using var registry = FakeRegistry.Start();
        registry.AddManifest("1", TestContent.Utf8("{\"schemaVersion\":2,\"manifests\":[]}"), MediaTypes.OciIndex);
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true, RateLimit = 20 });
        var repository = connector.Repository(Reference.Parse($"{registry.Authority}/{FakeRegistry.Repository}"));
        var clock = Stopwatch.StartNew();

        // When 6 requests are made at once
        await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => repository.FetchManifestAsync("1")));

        // Then they took at least (6-1)/20 s
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(240), $"took {clock.Elapsed.TotalMilliseconds} ms");
        Assert.Equal(6, registry.Requests.Count);
    }

    public static TheoryData<Exception, int> ExitCodeCases() => new()
    {
        { new InputException("x"), ExitCodes.Usage },
        { new IntegrityException("x"), ExitCodes.Integrity },
        { new OperationException("x"), ExitCodes.Operational },
        { new NotFoundException("x"), ExitCodes.Operational },
        { new ArgumentOutOfRangeException("x"), ExitCodes.Usage },
        { new OperationCanceledException(), ExitCodes.Cancelled },
        { new CryptographicException("x"), ExitCodes.Integrity },
        { new IOException("x"), ExitCodes.Operational },
    };

    [Theory]
    [MemberData(nameof(ExitCodeCases))]
    public void ExitCodes_For_MapsEachKindOfFailure(Exception exception, int code)
    {
        // Given a failure
        // When it is mapped
        // Then it gets the documented exit code
        Assert.Equal(code, ExitCodes.For(exception));
    }

    [Fact]
    public void CliApp_Describe_AddsTheCauseOfUnexpectedExceptions()
    {
        // Given an unexpected exception with a different inner message, and an aggregate of one
        var wrapped = new HttpRequestException("An error occurred while sending the request.", new IOException("Connection reset by peer"));
        var aggregate = new AggregateException(new InputException("bad"));

        // When they are described
        // Then the cause is appended, and the aggregate is unwrapped
        Assert.Equal("An error occurred while sending the request. (Connection reset by peer)", CliApp.Describe(wrapped));
        Assert.Equal("bad", CliApp.Describe(aggregate));
        Assert.Equal("cancelled", CliApp.Describe(new TaskCanceledException()));
    }
}
