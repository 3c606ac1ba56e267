using System.Net;
using System.Net.Sockets;
using System.Text;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry;
using OpenLm.Mirror.Registry.Auth;
using Xunit;

namespace OpenLm.Mirror.Tests.Cli;

/// <summary>A rejected login names who was presented and where the credentials came from, never the secret.</summary>
public sealed class ErrorsCredentialTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("errors-cred-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task RegistryClient_BasicCredentialsRejected_NamesUserAndConfigFileNotTheSecret()
    {
        // Given a registry that refuses every request with a Basic challenge (htpasswd auth, wrong password)
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var stop = new CancellationTokenSource();
        var serve = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var client = await listener.AcceptTcpClientAsync(stop.Token);
                var stream = client.GetStream();
                var reader = new StreamReader(stream, Encoding.ASCII);
                while (!string.IsNullOrEmpty(await reader.ReadLineAsync(stop.Token)))
                {
                }

                const string body = "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}";
                var head = $"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"basic-realm\"\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(head + body), stop.Token);
            }
        });

        // And a Docker config.json holding a wrong password for it
        var host = $"127.0.0.1:{port}";
        var config = Path.Combine(_dir, "config.json");
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes("ci-bot:Wr0ngSecret"));
        File.WriteAllText(config, "{\"auths\":{\"" + host + "\":{\"auth\":\"" + auth + "\"}}}");
        using var connector = new RegistryConnector(new RegistryOptions { PlainHttp = true, Retries = 0, Credentials = DockerConfigCredentialProvider.Load(config) });

        // When a manifest is fetched
        var error = await Assert.ThrowsAsync<OperationException>(() => connector.Repository(OpenLm.Mirror.Oci.Reference.Parse($"{host}/team/app:1")).FetchManifestAsync("1"));
        await stop.CancelAsync();
        _ = await Record.ExceptionAsync(() => serve);

        // Then the message names the user and the config file it came from, with the credentials remedy, and not the password
        Assert.Equal(Remedy.Credentials, error.Remedy);
        Assert.Equal(host, error.Subject);
        Assert.Contains("user 'ci-bot'", error.Message, StringComparison.Ordinal);
        Assert.Contains(config, error.Message, StringComparison.Ordinal);
        Assert.Contains("401", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Wr0ngSecret", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Credential_Describe_NamesSourceNeverSecret()
    {
        var credential = new Credential("ops", "s3cret").From("credential helper docker-credential-pass");

        Assert.Equal("user 'ops' from credential helper docker-credential-pass", credential.Describe());
        Assert.Equal("an identity token", Credential.FromIdentityToken("tok").Describe());
    }
}
