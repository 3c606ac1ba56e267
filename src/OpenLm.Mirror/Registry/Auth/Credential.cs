namespace OpenLm.Mirror.Registry.Auth;

/// <summary>
/// A username/password or identity token for one registry. <see cref="ToString"/> never shows the secret,
/// so a credential that ends up in a log or message does not leak.
/// </summary>
public sealed class Credential
{
    public Credential(string username, string password)
    {
        Username = username;
        Password = password;
    }

    private Credential(string identityToken)
    {
        Username = string.Empty;
        Password = string.Empty;
        IdentityToken = identityToken;
    }

    public string Username { get; }

    public string Password { get; }

    /// <summary>An OAuth2 refresh token (Docker's <c>identitytoken</c>), used instead of a password.</summary>
    public string? IdentityToken { get; }

    /// <summary>Where the credential came from (a config file and key, a credential helper, the command line), for messages; never the secret.</summary>
    public string? Source { get; private set; }

    public static Credential FromIdentityToken(string token) => new(token);

    /// <summary>Records where this credential came from and returns it.</summary>
    public Credential From(string source)
    {
        Source = source;
        return this;
    }

    /// <summary>Who was presented and from where, for an error message: <c>user 'ci' (from …)</c>; never the secret.</summary>
    public string Describe() => Who + Origin;

    /// <summary><c>user 'ci'</c> or <c>an identity token</c>.</summary>
    public string Who => IdentityToken is null ? $"user '{Username}'" : "an identity token";

    /// <summary><c> from SOURCE</c>, or empty when the source is not known.</summary>
    public string Origin => Source is null ? string.Empty : $" from {Source}";

    public string BasicHeaderValue =>
        Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{Username}:{Password}"));

    public override string ToString() => IdentityToken is null ? $"{Username}:***" : "identity-token:***";
}

/// <summary>Finds credentials for a registry host.</summary>
public interface ICredentialProvider
{
    Credential? GetCredential(string registryHost);
}

/// <summary>Credentials given explicitly (e.g. <c>--username</c> + <c>--password-stdin</c>) for every registry, else a fallback.</summary>
public sealed class StaticCredentialProvider(Credential credential, ICredentialProvider? fallback = null, IReadOnlySet<string>? onlyHosts = null) : ICredentialProvider
{
    public Credential? GetCredential(string registryHost) =>
        onlyHosts is null || onlyHosts.Contains(registryHost) ? credential : fallback?.GetCredential(registryHost);
}

/// <summary>No credentials at all: anonymous access.</summary>
public sealed class AnonymousCredentialProvider : ICredentialProvider
{
    public static readonly AnonymousCredentialProvider Instance = new();

    public Credential? GetCredential(string registryHost) => null;
}
