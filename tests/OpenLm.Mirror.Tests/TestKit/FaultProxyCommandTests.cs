using OpenLm.Mirror.TestKit;
using Xunit;

namespace OpenLm.Mirror.Tests.TestKit;

/// <summary>The <c>fault-proxy</c> verb's command line and the <see cref="FaultPlan"/> draws the bench and the fault matrix rely on.</summary>
public sealed class FaultProxyCommandTests
{
    [Fact]
    public void FaultProxyCommand_Parse_ReadsEveryOption()
    {
        var settings = FaultProxyCommand.Parse([
            "--upstream", "http://127.0.0.1:5000", "--port", "5999", "--fail-status", "429", "--fail-probability", "0.25",
            "--retry-after", "2", "--expire-token-every", "7", "--reset-probability", "0.5", "--latency-ms", "50", "--seed", "42", "--tokens",
        ]);

        Assert.False(settings.Help);
        Assert.Equal(new Uri("http://127.0.0.1:5000"), settings.Upstream);
        Assert.Equal(5999, settings.Port);
        Assert.True(settings.Tokens);
        Assert.Equal(429, settings.Options.FailStatus);
        Assert.Equal(0.25, settings.Options.FailProbability);
        Assert.Equal(2, settings.Options.RetryAfterSeconds);
        Assert.Equal(7, settings.Options.ExpireTokenEveryNth);
        Assert.Equal(0.5, settings.Options.ResetProbability);
        Assert.Equal(TimeSpan.FromMilliseconds(50), settings.Options.Latency);
        Assert.Equal(42, settings.Options.Seed);
    }

    [Theory]
    [InlineData("--fail-status|503", 0.5)]
    [InlineData("", 0.0)]
    [InlineData("--fail-status|503|--fail-probability|1", 1.0)]
    public void FaultProxyCommand_Parse_FailProbabilityDefaultsToHalfOnlyWithAStatus(string extra, double expected)
    {
        var args = new[] { "--upstream", "http://localhost:5000" }.Concat(extra.Length == 0 ? [] : extra.Split('|')).ToArray();

        var settings = FaultProxyCommand.Parse(args);

        Assert.Equal(expected, settings.Options.FailProbability);
        Assert.Equal(20261202, settings.Options.Seed);
        Assert.Equal(0, settings.Port);
        Assert.False(settings.Tokens);
    }

    [Fact]
    public void FaultProxyCommand_Parse_HelpNeedsNoUpstream()
    {
        Assert.True(FaultProxyCommand.Parse(["--help"]).Help);
        Assert.True(FaultProxyCommand.Parse(["-h"]).Help);
    }

    [Theory]
    [InlineData("", "--upstream is required")]
    [InlineData("--upstream", "--upstream needs a value")]
    [InlineData("--upstream|http://10.1.2.3:5000", "--upstream must be an http:// URL on loopback")]
    [InlineData("--upstream|https://127.0.0.1:5000", "--upstream must be an http:// URL on loopback")]
    [InlineData("--upstream|127.0.0.1:5000", "--upstream must be an http:// URL on loopback")]
    [InlineData("--upstream|http://127.0.0.1:5000|--fail-probability|1.5", "--fail-probability needs a probability between 0 and 1")]
    [InlineData("--upstream|http://127.0.0.1:5000|--reset-probability|x", "--reset-probability needs a probability between 0 and 1")]
    [InlineData("--upstream|http://127.0.0.1:5000|--latency-ms|-5", "--latency-ms needs a non-negative whole number")]
    [InlineData("--upstream|http://127.0.0.1:5000|--seed", "--seed needs a value")]
    [InlineData("--upstream|http://127.0.0.1:5000|--frobnicate", "unknown option '--frobnicate'")]
    public async Task FaultProxyCommand_BadUsage_NamesTheArgumentAndExitsWith2(string joinedArgs, string message)
    {
        var args = joinedArgs.Length == 0 ? [] : joinedArgs.Split('|');

        var error = Assert.Throws<OpenLm.Mirror.TestKit.Program.UsageException>(() => FaultProxyCommand.Parse(args));
        Assert.Equal(message, error.Message);
        Assert.Equal(2, await OpenLm.Mirror.TestKit.Program.Main(["fault-proxy", .. args]));
    }

    [Fact]
    public void FaultPlan_SameSeed_FaultsTheSameRequestsWhateverTheOrder()
    {
        var requests = Requests(200);

        var forward = FaultedKeys(Plan(seed: 7), requests);
        var backward = FaultedKeys(Plan(seed: 7), requests.AsEnumerable().Reverse().ToList());

        Assert.Equal(forward, backward);
        Assert.InRange(forward.Count, 70, 130); // p = 0.5 of 200: the draws are spread, not all or nothing
    }

    [Fact]
    public void FaultPlan_OtherSeed_FaultsOtherRequests()
    {
        var requests = Requests(200);

        Assert.NotEqual(FaultedKeys(Plan(seed: 7), requests), FaultedKeys(Plan(seed: 8), requests));
    }

    [Fact]
    public void FaultPlan_RepeatedRequest_DrawsAgainPerOccurrence_AndResetReplaysTheSameDraws()
    {
        var plan = Plan(seed: 7);
        var path = "/v2/fault/app01/manifests/v1";

        var first = Enumerable.Range(0, 40).Select(_ => plan.Begin("GET", path, path).Decide(hasBearer: true) is FaultDecision.Refuse).ToList();
        plan.Reset();
        var again = Enumerable.Range(0, 40).Select(_ => plan.Begin("GET", path, path).Decide(hasBearer: true) is FaultDecision.Refuse).ToList();

        Assert.Equal(first, again);
        Assert.Contains(true, first); // a retried request is not doomed to fail forever,
        Assert.Contains(false, first); // nor to succeed forever
    }

    [Fact]
    public void FaultPlan_Refusal_CarriesTheRegistryErrorAndRetryAfter()
    {
        var plan = new FaultPlan(new FaultProxyOptions { FailStatus = 429, FailProbability = 1, RetryAfterSeconds = 3 });

        var decision = Assert.IsType<FaultDecision.Refuse>(plan.Begin("GET", "/v2/a/manifests/v1", "/v2/a/manifests/v1").Decide(hasBearer: true));

        Assert.Equal(429, decision.Status);
        Assert.Equal("TOOMANYREQUESTS", decision.Code);
        Assert.Equal("3", decision.RetryAfter);
        Assert.Equal("{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"Rate exceeded\"}]}", decision.Body);
        Assert.Equal(1, plan.FailedResponses);
    }

    [Fact]
    public void FaultPlan_LongestRefusalStreak_IsTheMostRefusalsInARowOfOneRequest()
    {
        var plan = new FaultPlan(new FaultProxyOptions { FailStatus = 503, FailProbability = 0.5 });
        const string path = "/v2/a/blobs/sha256:1";

        // The same request asked until it is answered, 60 times over (each answer ends its streak)
        var longest = 0;
        for (var run = 0; run < 60; run++)
        {
            var streak = 0;
            while (plan.Begin("GET", path, path).Decide(hasBearer: true) is FaultDecision.Refuse)
            {
                streak++;
            }

            longest = Math.Max(longest, streak);
        }

        // Another request's refusals do not add to it
        var other = "/v2/b/blobs/sha256:2";
        _ = plan.Begin("GET", other, other).Decide(hasBearer: true);

        Assert.True(longest >= 2, $"60 runs at p=0.5 should give a streak of at least 2 ({longest})");
        Assert.Equal(longest, plan.LongestRefusalStreak);
    }

    [Fact]
    public void FaultPlan_ExpireTokenEveryNth_HitsEveryNthOfEachKind()
    {
        var plan = new FaultPlan(new FaultProxyOptions { ExpireTokenEveryNth = 3 });

        var tokens = Enumerable.Range(0, 6).Select(i => plan.Begin("GET", "/token", $"/token?n={i}").Decide(hasBearer: false)).ToList();
        var first = Enumerable.Range(0, 3).Select(i => plan.Begin("GET", $"/v2/r{i}/tags/list", $"/v2/r{i}/tags/list").Decide(hasBearer: false)).ToList();
        var bearer = Enumerable.Range(0, 6).Select(i => plan.Begin("GET", $"/v2/r/blobs/{i}", $"/v2/r/blobs/{i}").Decide(hasBearer: true)).ToList();

        Assert.Equal([2, 5], Indexes(tokens, d => d is FaultDecision.Refuse { Status: 401 }));
        Assert.Equal([2], Indexes(first, d => d is FaultDecision.Refuse { Status: 400, Code: "DENIED" }));
        Assert.Equal([2, 5], Indexes(bearer, d => d is FaultDecision.Refuse or FaultDecision.Forward { StripAuthorization: true }));
        Assert.Single(bearer, d => d is FaultDecision.Forward { StripAuthorization: true });
        Assert.Equal(5, plan.ExpiredTokens);
        Assert.Equal(2, plan.ExpiredTokenRequests);
        Assert.Equal(1, plan.ExpiredWithoutToken);
    }

    [Fact]
    public void FaultPlan_FailBlobsOfRepositories_RefusesEveryBlobOfThoseOnly()
    {
        var options = new FaultProxyOptions();
        options.FailBlobsOfRepositories.Add("fault/app03");
        var plan = new FaultPlan(options);

        var blob = Enumerable.Range(0, 5).Select(_ => plan.Begin("GET", "/v2/fault/app03/blobs/sha256:ab", "/v2/fault/app03/blobs/sha256:ab").Decide(hasBearer: true)).ToList();

        Assert.All(blob, d => Assert.Equal(503, Assert.IsType<FaultDecision.Refuse>(d).Status));
        Assert.IsType<FaultDecision.Forward>(plan.Begin("GET", "/v2/fault/app03/manifests/v1", "/v2/fault/app03/manifests/v1").Decide(hasBearer: true));
        Assert.IsType<FaultDecision.Forward>(plan.Begin("GET", "/v2/fault/app04/blobs/sha256:ab", "/v2/fault/app04/blobs/sha256:ab").Decide(hasBearer: true));
        Assert.Equal(5, plan.PermanentFailures);
    }

    [Fact]
    public void FaultTicket_ShouldResetBody_OnlyGetsWithABody_DrawnFromTheSeed()
    {
        var plan = new FaultPlan(new FaultProxyOptions { ResetProbability = 1 });

        Assert.True(plan.Begin("GET", "/v2/a/blobs/x", "/v2/a/blobs/x").ShouldResetBody(100));
        Assert.False(plan.Begin("HEAD", "/v2/a/blobs/x", "/v2/a/blobs/x").ShouldResetBody(100));
        Assert.False(plan.Begin("GET", "/v2/a/blobs/y", "/v2/a/blobs/y").ShouldResetBody(1));
        Assert.False(new FaultPlan(new FaultProxyOptions()).Begin("GET", "/v2/a/blobs/x", "/v2/a/blobs/x").ShouldResetBody(100));
        Assert.Equal(1, plan.Resets);
    }

    private static FaultPlan Plan(int seed) => new(new FaultProxyOptions { FailStatus = 503, FailProbability = 0.5, Seed = seed });

    private static List<string> Requests(int count) =>
        Enumerable.Range(0, count).Select(i => $"/v2/fault/app{i % 16:00}/blobs/sha256:{i:x64}").ToList();

    private static SortedSet<string> FaultedKeys(FaultPlan plan, IEnumerable<string> paths) =>
        new(paths.Where(p => plan.Begin("GET", p, p).Decide(hasBearer: true) is FaultDecision.Refuse), StringComparer.Ordinal);

    private static List<int> Indexes(IReadOnlyList<FaultDecision> decisions, Func<FaultDecision, bool> match) =>
        Enumerable.Range(0, decisions.Count).Where(i => match(decisions[i])).ToList();
}
