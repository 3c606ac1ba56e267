using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.TestKit;
using OpenLm.Mirror.Tests.Core;
using OpenLm.Mirror.Tests.Support;
using Xunit;

namespace OpenLm.Mirror.Tests.Import;

/// <summary>One signed bundle of the sample platform per test class; tests that need a damaged bundle copy it first.</summary>
public sealed class SignedSampleBundleFixture : IAsyncLifetime
{
    private readonly TempDirectory _dir = new();

    internal SampleBundle Bundle { get; private set; } = null!;

    /// <summary>A scratch directory that lives as long as the fixture.</summary>
    internal string Scratch(string name) => _dir.Sub(name);

    public async Task InitializeAsync() => Bundle = await SampleBundle.CreateAsync(_dir.Sub("signed"), seed: 21);

    public Task DisposeAsync()
    {
        Bundle?.Dispose();
        _dir.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>Where the importer should put each image of a <see cref="SampleBundle"/> under the tests' naming rules.</summary>
internal static class ImportNames
{
    /// <summary>The target prefix every test imports under.</summary>
    public const string Prefix = "airgap";

    /// <summary>The <c>--map</c> rule the mapping tests use: the platform's charts go to <c>helm/</c>.</summary>
    public static string ChartsRule(SampleBundle bundle) => $"{bundle.Source}/charts=helm";

    /// <summary>
    /// The target repository of <paramref name="image"/>, worked out from the rules as documented (platform source
    /// replaced by the target prefix; with <paramref name="chartsMapped"/>, <c>charts/</c> becomes <c>helm/</c>).
    /// </summary>
    public static string TargetRepository(GeneratedImage image, bool chartsMapped = false)
    {
        var relative = SampleBundle.RelativeName(image);
        if (chartsMapped && relative.StartsWith("charts/", StringComparison.Ordinal))
        {
            relative = "helm/" + relative["charts/".Length..];
        }

        return $"{Prefix}/{relative}";
    }

    /// <summary>For every config/layer digest, the target repositories whose images need it.</summary>
    public static IReadOnlyDictionary<string, IReadOnlySet<string>> RepositoriesNeeding(SampleBundle bundle) =>
        bundle.Images
            .SelectMany(i => i.BlobDigests.Select(d => (Digest: d, Repository: TargetRepository(i))))
            .GroupBy(x => x.Digest, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlySet<string>)g.Select(x => x.Repository).ToHashSet(StringComparer.Ordinal), StringComparer.Ordinal);
}

/// <summary>Failure injection for <see cref="FakeRegistry.Intercept"/>.</summary>
internal static class Faults
{
    /// <summary>The upload commits (<c>PUT /upload/…?digest=</c>) that carry a blob's bytes.</summary>
    public static bool IsBlobCommit(System.Net.HttpListenerContext context) =>
        context.Request.HttpMethod == "PUT" && context.Request.Url!.AbsolutePath.StartsWith("/upload/", StringComparison.Ordinal);

    /// <summary>Drains the request body, so the answer reaches the client instead of a reset of a half-sent request.</summary>
    public static async Task DrainAsync(System.Net.HttpListenerContext context) => await context.Request.InputStream.CopyToAsync(Stream.Null);

    /// <summary>Answers the first <paramref name="count"/> requests matching <paramref name="match"/> with a 503; counts them in <paramref name="hits"/>.</summary>
    public static Func<System.Net.HttpListenerContext, Task<bool>> FirstWith503(int count, Func<System.Net.HttpListenerContext, bool> match, Counter hits) =>
        async context =>
        {
            if (!match(context) || hits.Increment() > count)
            {
                return false;
            }

            await DrainAsync(context);
            await Reply.ErrorAsync(context, 503, "UNAVAILABLE", "registry restarting");
            return true;
        };

    /// <summary>Resets the connection of the first <paramref name="count"/> requests matching <paramref name="match"/>.</summary>
    public static Func<System.Net.HttpListenerContext, Task<bool>> FirstReset(int count, Func<System.Net.HttpListenerContext, bool> match, Counter hits) =>
        async context =>
        {
            if (!match(context) || hits.Increment() > count)
            {
                return false;
            }

            await DrainAsync(context);
            Reply.Reset(context);
            return true;
        };
}

/// <summary>A thread-safe counter shared with a handler.</summary>
internal sealed class Counter
{
    private int _value;

    public int Value => Volatile.Read(ref _value);

    public int Increment() => Interlocked.Increment(ref _value);
}
