using OpenLm.Mirror.Errors;
using OpenLm.Mirror.IntegrationTests.Infrastructure;
using OpenLm.Mirror.Registry;
using Xunit;

namespace OpenLm.Mirror.IntegrationTests.Cli;

/// <summary>Scheme mix-ups against a real CNCF Distribution: named with the fix, once per registry.</summary>
[Collection(RegistryCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ErrorsTransportIntegrationTests(SharedRegistryFixture fixture)
{
    [Fact]
    public async Task RegistryClient_TlsToPlainDistribution_SaysPlainHttpOncePerRegistry()
    {
        // Given the shared plain-HTTP Distribution reached without plain HTTP
        using var connector = new RegistryConnector(new RegistryOptions { Retries = 2 });
        var first = connector.Repository(OpenLm.Mirror.Oci.Reference.Parse($"{fixture.Host}/errors/a:1"));
        var second = connector.Repository(OpenLm.Mirror.Oci.Reference.Parse($"{fixture.Host}/errors/b:1"));

        // When two images are fetched
        var a = await Assert.ThrowsAsync<OperationException>(() => first.FetchManifestAsync("1"));
        var b = await Assert.ThrowsAsync<OperationException>(() => second.FetchManifestAsync("1"));

        // Then both fail with the one plain-HTTP diagnosis (not "certificate is not trusted")
        Assert.Equal(Remedy.PlainHttp, a.Remedy);
        Assert.Contains("answered plain HTTP", a.Message, StringComparison.Ordinal);
        Assert.Same(a, b);
    }

    [Fact]
    public async Task RegistryClient_PlainHttpToTlsDistribution_SaysDropPlainHttp()
    {
        // Given a real Distribution serving TLS, reached with plain HTTP
        using var certificates = TlsCertificates.Create();
        await using var registry = await RegistryContainer.StartNewAsync(new RegistryContainerOptions { Tls = certificates.ToRegistryTls() });
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true, Retries = 2 });

        // When a manifest is fetched
        var error = await Assert.ThrowsAsync<OperationException>(() => connector.Repository(OpenLm.Mirror.Oci.Reference.Parse($"{registry.Host}/errors/c:1")).FetchManifestAsync("1"));

        // Then Distribution's 400 "Client sent an HTTP request to an HTTPS server" is named as a TLS port, not "400 BadRequest"
        Assert.Equal(Remedy.DropPlainHttp, error.Remedy);
        Assert.Equal(registry.Host, error.Subject);
        Assert.Contains("speaks TLS", error.Message, StringComparison.Ordinal);
    }
}
