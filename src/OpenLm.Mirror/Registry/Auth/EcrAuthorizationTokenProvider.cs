using OpenLm.Mirror.Aws;

namespace OpenLm.Mirror.Registry.Auth;

/// <summary>
/// ECR login without the aws CLI or <c>docker login</c>: for an ECR registry host that has no Docker credentials, the
/// password comes from the ECR API's <c>GetAuthorizationToken</c> (user <c>AWS</c>, valid 12 hours), fetched with the
/// standard AWS credential chain and fetched again when less than an hour of it is left, so long imports keep going.
/// Every other host (and an ECR host with configured credentials) is answered by the inner provider.
/// </summary>
public sealed class EcrAuthorizationTokenProvider(ICredentialProvider inner, IReadOnlySet<string> ecrHosts, Func<EcrApi> api, string? registryId, TimeProvider? time = null)
    : ICredentialProvider
{
    /// <summary>How long before its expiry a token is replaced.</summary>
    public static readonly TimeSpan RefreshBefore = TimeSpan.FromHours(1);

    private readonly Lock _lock = new();
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private EcrLogin? _login;

    /// <summary>Logins fetched so far (tests use it to prove caching and refresh).</summary>
    public int Fetches { get; private set; }

    public Credential? GetCredential(string registryHost)
    {
        if (inner.GetCredential(registryHost) is { } configured)
        {
            return configured;
        }

        if (!ecrHosts.Contains(registryHost))
        {
            return null;
        }

        lock (_lock)
        {
            if (_login is null || _login.ExpiresAt - _time.GetUtcNow() < RefreshBefore)
            {
                // The credential interface is synchronous (asked while a request is being built); the fetch is one
                // small API call, made at most once per 11 hours.
                using var client = api();
                _login = client.GetAuthorizationTokenAsync(registryId, CancellationToken.None).GetAwaiter().GetResult();
                Fetches++;
            }

            return new Credential(_login.Username, _login.Password);
        }
    }
}
