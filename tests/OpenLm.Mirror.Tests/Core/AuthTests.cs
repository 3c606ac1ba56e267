using System.Text;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Registry.Auth;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

public sealed class ChallengeTests
{
    [Fact]
    public void Challenge_TryParse_EcrPublic_ReadsRealmServiceScope()
    {
        // Given ECR Public's challenge
        const string header = "Bearer realm=\"https://public.ecr.aws/token/\",service=\"public.ecr.aws\",scope=\"aws\"";

        // When it is parsed
        var ok = Challenge.TryParse(header, out var challenge);

        // Then it is a bearer challenge with the three parameters
        Assert.True(ok);
        Assert.True(challenge!.IsBearer);
        Assert.False(challenge.IsBasic);
        Assert.Equal("https://public.ecr.aws/token/", challenge.Realm);
        Assert.Equal("public.ecr.aws", challenge.Service);
        Assert.Equal("aws", challenge.Scope);
    }

    [Fact]
    public void Challenge_TryParse_DockerHub_KeepsScopeWithColonsAndCommas()
    {
        // Given Docker Hub's challenge for a push scope (a comma inside quotes)
        const string header = "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/mongo:pull,push\"";

        // When it is parsed
        Assert.True(Challenge.TryParse(header, out var challenge));

        // Then the quoted comma stays inside the scope
        Assert.Equal("https://auth.docker.io/token", challenge!.Realm);
        Assert.Equal("registry.docker.io", challenge.Service);
        Assert.Equal("repository:library/mongo:pull,push", challenge.Scope);
        Assert.Equal(3, challenge.Parameters.Count);
    }

    [Theory]
    [InlineData("Basic realm=\"Registry Realm\"", "Registry Realm")]
    [InlineData("basic realm=registry", "registry")]
    [InlineData("BASIC   realm=\"x\"", "x")]
    public void Challenge_TryParse_Basic_IsBasicWithRealm(string header, string realm)
    {
        // Given a Basic challenge in any case
        // When it is parsed
        Assert.True(Challenge.TryParse(header, out var challenge));

        // Then it is Basic with its realm
        Assert.True(challenge!.IsBasic);
        Assert.Equal(realm, challenge.Realm);
    }

    [Fact]
    public void Challenge_TryParse_EscapedQuotes_AreUnescaped()
    {
        // Given a quoted value with an escaped quote and backslash
        const string header = "Bearer realm=\"https://h/t\",error=\"say \\\"hi\\\" \\\\ bye\",service=s";

        // When it is parsed
        Assert.True(Challenge.TryParse(header, out var challenge));

        // Then the escapes are undone and later parameters still read
        Assert.Equal("say \"hi\" \\ bye", challenge!.Parameters["error"]);
        Assert.Equal("s", challenge.Service);
    }

    [Fact]
    public void Challenge_TryParse_SpacesAroundCommasAndUnquoted_AreTolerated()
    {
        // Given parameters separated by ", " with unquoted values and mixed-case keys
        const string header = "Bearer Realm=https://h/token , Service=reg ,scope=\"repository:a:pull\"";

        // When it is parsed
        Assert.True(Challenge.TryParse(header, out var challenge));

        // Then keys are case-insensitive and values trimmed
        Assert.Equal("https://h/token", challenge!.Realm);
        Assert.Equal("reg", challenge.Service);
        Assert.Equal("repository:a:pull", challenge.Scope);
    }

    [Fact]
    public void Challenge_TryParse_ErrorParameter_IsRead()
    {
        // Given a challenge of an invalid token (RFC 6750 error)
        const string header = "Bearer realm=\"https://h/t\",service=\"s\",error=\"invalid_token\"";

        // When it is parsed
        Assert.True(Challenge.TryParse(header, out var challenge));

        // Then the error is available
        Assert.Equal("invalid_token", challenge!.Parameters["error"]);
    }

    [Fact]
    public void Challenge_TryParse_SchemeOnly_HasNoParameters()
    {
        // Given a bare scheme
        // When it is parsed
        Assert.True(Challenge.TryParse("Bearer", out var challenge));

        // Then it has no parameters
        Assert.Empty(challenge!.Parameters);
        Assert.Null(challenge.Realm);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("B3arer realm=x")]
    [InlineData("=x")]
    public void Challenge_TryParse_Garbage_IsRefused(string? header)
    {
        // Given no usable challenge
        // When it is parsed
        // Then it is refused
        Assert.False(Challenge.TryParse(header, out _));
    }

    [Fact]
    public void Challenge_TryParse_UnterminatedQuote_TakesTheRest()
    {
        // Given a value whose closing quote is missing
        // When it is parsed
        Assert.True(Challenge.TryParse("Bearer realm=\"https://h/t", out var challenge));

        // Then parsing ends without throwing
        Assert.Equal("https://h/t", challenge!.Realm);
    }
}

public sealed class CredentialTests
{
    [Fact]
    public void Credential_ToString_NeverShowsPassword()
    {
        // Given a username/password credential
        var credential = new Credential("alice", "s3cr3t-Pa55");

        // When it is printed
        var text = credential.ToString();

        // Then only the username shows
        Assert.Equal("alice:***", text);
        Assert.DoesNotContain("s3cr3t", text, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t", $"{credential}", StringComparison.Ordinal);
    }

    [Fact]
    public void Credential_ToString_NeverShowsIdentityToken()
    {
        // Given an identity-token credential
        var credential = Credential.FromIdentityToken("eyJhbGciOiJ-refresh-token");

        // When it is printed
        var text = credential.ToString();

        // Then the token does not show
        Assert.Equal("identity-token:***", text);
        Assert.DoesNotContain("refresh-token", text, StringComparison.Ordinal);
        Assert.Equal("eyJhbGciOiJ-refresh-token", credential.IdentityToken);
    }

    [Fact]
    public void Credential_BasicHeaderValue_IsBase64UserColonPassword()
    {
        // Given a credential with a colon in the password and non-ASCII text
        var credential = new Credential("ålice", "p:w");

        // When the Basic header value is built
        var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(credential.BasicHeaderValue));

        // Then it is user:password in UTF-8
        Assert.Equal("ålice:p:w", decoded);
    }

    [Fact]
    public void StaticCredentialProvider_OnlyHosts_FallsBackForOthers()
    {
        // Given explicit credentials for one host and a fallback
        var explicitCredential = new Credential("u", "p");
        var fallback = new StaticCredentialProvider(new Credential("f", "q"));
        var provider = new StaticCredentialProvider(explicitCredential, fallback, new HashSet<string> { "a.example" });

        // When credentials are looked up
        // Then the listed host gets the explicit ones and others the fallback
        Assert.Same(explicitCredential, provider.GetCredential("a.example"));
        Assert.Equal("f", provider.GetCredential("b.example")!.Username);
        Assert.Null(AnonymousCredentialProvider.Instance.GetCredential("a.example"));
    }
}

public sealed class DockerConfigCredentialProviderTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string WriteConfig(string json)
    {
        var path = _dir.Sub("config.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    [Fact]
    public void DockerConfig_Load_Base64Auth_DecodesUserAndPassword()
    {
        // Given a config with a base64 auth entry for a registry with a port
        var path = WriteConfig($"{{\"auths\":{{\"127.0.0.1:5000\":{{\"auth\":\"{B64("alice:pa:ss")}\"}}}}}}");

        // When credentials for that host are asked for
        var credential = DockerConfigCredentialProvider.Load(path).GetCredential("127.0.0.1:5000");

        // Then the first colon separates user and password
        Assert.NotNull(credential);
        Assert.Equal("alice", credential.Username);
        Assert.Equal("pa:ss", credential.Password);
        Assert.Null(credential.IdentityToken);
    }

    [Theory]
    [InlineData("https://registry.example.com")]
    [InlineData("https://registry.example.com/")]
    [InlineData("http://registry.example.com/v2/")]
    [InlineData("registry.example.com")]
    [InlineData("REGISTRY.example.com")]
    public void DockerConfig_GetCredential_UrlKeys_MatchTheHost(string key)
    {
        // Given an auths key written as a URL, with a path, or in another case
        var path = WriteConfig($"{{\"auths\":{{\"{key}\":{{\"auth\":\"{B64("u:p")}\"}}}}}}");

        // When credentials for the bare host are asked for
        var credential = DockerConfigCredentialProvider.Load(path).GetCredential("registry.example.com");

        // Then the entry is found
        Assert.Equal("u", credential?.Username);
    }

    [Theory]
    [InlineData("https://index.docker.io/v1/", "docker.io")]
    [InlineData("https://index.docker.io/v1/", "index.docker.io")]
    [InlineData("index.docker.io", "registry-1.docker.io")]
    [InlineData("docker.io", "docker.io")]
    [InlineData("registry-1.docker.io", "docker.io")]
    public void DockerConfig_GetCredential_DockerHubAliases_AreOneRegistry(string key, string asked)
    {
        // Given a Docker Hub entry under one of its names
        var path = WriteConfig($"{{\"auths\":{{\"{key}\":{{\"auth\":\"{B64("hub:pw")}\"}}}}}}");

        // When credentials are asked for under another of its names
        var credential = DockerConfigCredentialProvider.Load(path).GetCredential(asked);

        // Then the entry is found
        Assert.Equal("hub", credential?.Username);
    }

    [Fact]
    public void DockerConfig_GetCredential_UsernamePasswordFields_AreUsed()
    {
        // Given an entry with separate username and password fields
        var path = WriteConfig("{\"auths\":{\"r.example\":{\"username\":\"bob\",\"password\":\"hunter2\"}}}");

        // When credentials are asked for
        var credential = DockerConfigCredentialProvider.Load(path).GetCredential("r.example");

        // Then they are read
        Assert.Equal("bob", credential?.Username);
        Assert.Equal("hunter2", credential?.Password);
    }

    [Fact]
    public void DockerConfig_GetCredential_IdentityToken_WinsOverAuth()
    {
        // Given an entry with an identity token (and the username-only auth Docker writes with it)
        var path = WriteConfig($"{{\"auths\":{{\"r.example\":{{\"auth\":\"{B64("bob:")}\",\"identitytoken\":\"refresh-123\"}}}}}}");

        // When credentials are asked for
        var credential = DockerConfigCredentialProvider.Load(path).GetCredential("r.example");

        // Then the identity token is used
        Assert.Equal("refresh-123", credential?.IdentityToken);
    }

    [Fact]
    public void DockerConfig_GetCredential_UnknownHostOrEmptyEntry_IsAnonymous()
    {
        // Given a config with an empty entry and no helpers
        var path = WriteConfig("{\"auths\":{\"r.example\":{},\"s.example\":{\"auth\":\"\"}}}");
        var provider = DockerConfigCredentialProvider.Load(path);

        // When credentials are asked for
        // Then there are none
        Assert.Null(provider.GetCredential("r.example"));
        Assert.Null(provider.GetCredential("s.example"));
        Assert.Null(provider.GetCredential("other.example"));
    }

    [Fact]
    public void DockerConfig_Load_MissingFile_IsAnonymous()
    {
        // Given no config file
        // When it is loaded
        var provider = DockerConfigCredentialProvider.Load(_dir.Sub("missing.json"));

        // Then access is anonymous
        Assert.Same(AnonymousCredentialProvider.Instance, provider);
    }

    [Theory]
    [InlineData("{\"auths\": {")]
    [InlineData("{\"auths\": {}} trailing")]
    [InlineData("")]
    public void DockerConfig_Load_MalformedJson_ThrowsInputExceptionNamingTheFile(string json)
    {
        // Given a config file that is not valid JSON
        var path = WriteConfig(json);

        // When it is loaded
        var ex = Assert.Throws<InputException>(() => DockerConfigCredentialProvider.Load(path));

        // Then the file is named
        Assert.StartsWith(path + ": ", ex.Message, StringComparison.Ordinal);
        Assert.Contains("not valid JSON", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DockerConfig_Load_NotAnObject_ThrowsInputException()
    {
        // Given a config file holding a JSON array
        var path = WriteConfig("[]");

        // When it is loaded
        var ex = Assert.Throws<InputException>(() => DockerConfigCredentialProvider.Load(path));

        // Then it says so
        Assert.Contains("not a JSON object", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("!!!not-base64!!!", "not valid base64")]
    [InlineData("dXNlcm5hbWU=", "does not decode to username:password")]
    public void DockerConfig_GetCredential_BadAuth_ThrowsInputExceptionNamingFileAndHost(string auth, string why)
    {
        // Given an auth field that is not base64 of user:password
        var path = WriteConfig($"{{\"auths\":{{\"r.example\":{{\"auth\":\"{auth}\"}}}}}}");
        var provider = DockerConfigCredentialProvider.Load(path);

        // When credentials are asked for
        var ex = Assert.Throws<InputException>(() => provider.GetCredential("r.example"));

        // Then the file, host and problem are named, and the secret is not
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("r.example", ex.Message, StringComparison.Ordinal);
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(auth, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DockerConfig_GetCredential_NonStringFields_AreIgnoredNotCrashing()
    {
        // Given an entry whose username/password are not strings
        var path = WriteConfig("{\"auths\":{\"r.example\":{\"username\":1,\"password\":true}}}");
        var provider = DockerConfigCredentialProvider.Load(path);

        // When credentials are asked for
        var credential = provider.GetCredential("r.example");

        // Then the entry is treated as having none
        Assert.Null(credential);
    }

    [Fact]
    public void DockerConfig_DefaultPath_EndsWithConfigJson()
    {
        // Given the environment of the test run
        // When the default path is computed
        var path = DockerConfigCredentialProvider.DefaultPath();

        // Then it names a config.json
        Assert.Equal("config.json", Path.GetFileName(path));
    }
}
