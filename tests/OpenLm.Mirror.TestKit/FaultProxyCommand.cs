using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace OpenLm.Mirror.TestKit;

/// <summary>
/// <c>fault-proxy</c>: a reverse proxy on loopback in front of a registry that injects the faults of the integration
/// tests' fault matrix, drawn by the same <see cref="FaultPlan"/> (so a bench row and a test row fail the same way).
/// With <c>--tokens</c> it also plays the registry's bearer-token service, for a Distribution registry without auth, so
/// token expiry can be injected in front of it. Runs until SIGINT/SIGTERM, then prints what it injected.
/// </summary>
internal static class FaultProxyCommand
{
    internal const string Usage = """
        OpenLm.Mirror.TestKit fault-proxy --upstream http://HOST:PORT [options]

        A fault-injecting reverse proxy on 127.0.0.1 (loopback only); prints "listening http://127.0.0.1:PORT".
          --port N                   listen port (default: any free one)
          --fail-status N            answer N (429, 503, ...) instead of forwarding, with --fail-probability
          --fail-probability P       0..1 (default 0.5 when --fail-status is given)
          --retry-after S            send Retry-After: S with those answers
          --expire-token-every N     every Nth request acts as if its token expired (token requests included)
          --reset-probability P      cut that share of successful GET bodies in half and reset the connection
          --latency-ms N             delay every request by N ms
          --seed N                   fault draw seed (default 20261202)
          --tokens                   serve bearer tokens at /token and require them on /v2 (for an upstream without auth)
        """;

    /// <summary>What the command line asks for; <see cref="Help"/> set means print <see cref="Usage"/> and stop.</summary>
    internal sealed record Settings(Uri? Upstream, int Port, bool Tokens, FaultProxyOptions Options, bool Help);

    /// <summary>Parses the arguments; throws <see cref="Program.UsageException"/> naming the bad one.</summary>
    internal static Settings Parse(string[] args)
    {
        Uri? upstream = null;
        var port = 0;
        var tokens = false;
        var options = new FaultProxyOptions();
        double? probability = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new Program.UsageException($"{args[i]} needs a value");
            // The option's name is taken before Value() moves i onto its value, so a message names the option.
            var option = args[i];
            double Fraction() => double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out var p) && p is >= 0 and <= 1
                ? p : throw new Program.UsageException($"{option} needs a probability between 0 and 1");
            int Number() => int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var n)
                ? n : throw new Program.UsageException($"{option} needs a non-negative whole number");
            switch (args[i])
            {
                case "-h" or "--help": return new Settings(upstream, port, tokens, options, Help: true);
                case "--upstream":
                    upstream = Uri.TryCreate(Value(), UriKind.Absolute, out var u) && u.IsLoopback && u.Scheme == "http"
                        ? u : throw new Program.UsageException("--upstream must be an http:// URL on loopback");
                    break;
                case "--port": port = Number(); break;
                case "--fail-status": options.FailStatus = Number(); break;
                case "--fail-probability": probability = Fraction(); break;
                case "--retry-after": options.RetryAfterSeconds = Number(); break;
                case "--expire-token-every": options.ExpireTokenEveryNth = Number(); break;
                case "--reset-probability": options.ResetProbability = Fraction(); break;
                case "--latency-ms": options.Latency = TimeSpan.FromMilliseconds(Number()); break;
                case "--seed": options.Seed = Number(); break;
                case "--tokens": tokens = true; break;
                default: throw new Program.UsageException($"unknown option '{args[i]}'");
            }
        }

        if (upstream is null)
        {
            throw new Program.UsageException("--upstream is required");
        }

        options.FailProbability = probability ?? (options.FailStatus is null ? 0 : 0.5);
        return new Settings(upstream, port, tokens, options, Help: false);
    }

    public static async Task<int> RunAsync(string[] args)
    {
        Settings settings;
        try
        {
            settings = Parse(args);
        }
        catch (Program.UsageException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine("Run with fault-proxy --help for usage.");
            return 2;
        }

        if (settings.Help)
        {
            Console.Out.WriteLine(Usage);
            return 0;
        }

        var (upstream, port, tokens, options) = (settings.Upstream!, settings.Port, settings.Tokens, settings.Options);
        var plan = new FaultPlan(options);
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false, UseCookies = false })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = null;
            k.Limits.MinResponseDataRate = null;
            k.Listen(IPAddress.Loopback, port);
        });
        await using var app = builder.Build();
        Uri? self = null;
        var proxy = new Proxy(plan, client, upstream, tokens, () => self!);
        app.Run(proxy.HandleAsync);
        await app.StartAsync().ConfigureAwait(false);
        self = new Uri(app.Urls.First().TrimEnd('/') + "/");
        Console.Out.WriteLine($"listening {self.GetLeftPart(UriPartial.Authority)}");
        Console.Out.Flush();

        using var stop = new CancellationTokenSource();
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        await app.StopAsync().ConfigureAwait(false);
        Console.Error.WriteLine(FormattableString.Invariant(
            $"fault-proxy: {plan.Requests} requests, {plan.FailedResponses} failed, {plan.ExpiredTokens} token expiries, {plan.Resets} resets, longest refusal streak {plan.LongestRefusalStreak}"));
        return 0;
    }

    private sealed class Proxy(FaultPlan plan, HttpClient client, Uri upstream, bool tokens, Func<Uri> self)
    {
        private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
        {
            "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "TE", "Trailer", "Host",
        };

        public async Task HandleAsync(HttpContext context)
        {
            try
            {
                await ProxyAsync(context).ConfigureAwait(false);
            }
            catch (Exception) when (context.RequestAborted.IsCancellationRequested)
            {
                // The client went away.
            }
            catch (HttpRequestException)
            {
                context.Abort();
            }
            catch (IOException)
            {
                context.Abort();
            }
        }

        private async Task ProxyAsync(HttpContext context)
        {
            var request = context.Request;
            var path = request.Path.Value ?? "/";
            var pathAndQuery = path + request.QueryString.Value;
            var ticket = plan.Begin(request.Method, path, pathAndQuery);
            if (plan.Options.Latency > TimeSpan.Zero)
            {
                await Task.Delay(plan.Options.Latency, context.RequestAborted).ConfigureAwait(false);
            }

            var bearer = request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase);
            var decision = ticket.Decide(bearer);
            if (decision is FaultDecision.Refuse refuse)
            {
                if (refuse.RetryAfter is { } after)
                {
                    context.Response.Headers.RetryAfter = after;
                }

                await WriteAsync(context, refuse.Status, refuse.Body).ConfigureAwait(false);
                return;
            }

            var strip = decision is FaultDecision.Forward { StripAuthorization: true };
            if (tokens && path.StartsWith("/token", StringComparison.Ordinal))
            {
                await WriteAsync(context, 200, "{\"token\":\"" + Guid.NewGuid().ToString("N") + "\",\"expires_in\":300}").ConfigureAwait(false);
                return;
            }

            if (tokens && (strip || !bearer))
            {
                // The bearer challenge of a registry with a token service, as for a missing or expired token.
                context.Response.Headers.WWWAuthenticate = $"Bearer realm=\"{self()}token\",service=\"fault-proxy\"";
                await WriteAsync(context, 401, "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}").ConfigureAwait(false);
                return;
            }

            using var forward = new HttpRequestMessage(new HttpMethod(request.Method), new Uri(upstream, pathAndQuery));
            foreach (var (name, values) in request.Headers)
            {
                var drop = HopByHop.Contains(name) || (string.Equals(name, "Authorization", StringComparison.OrdinalIgnoreCase) && (strip || tokens));
                if (!drop && !forward.Headers.TryAddWithoutValidation(name, values.ToArray()))
                {
                    forward.Content ??= new StreamContent(request.Body);
                    forward.Content.Headers.TryAddWithoutValidation(name, values.ToArray());
                }
            }

            using var response = await client.SendAsync(forward, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted).ConfigureAwait(false);
            context.Response.StatusCode = (int)response.StatusCode;
            var from = upstream.GetLeftPart(UriPartial.Authority);
            var to = self().GetLeftPart(UriPartial.Authority);
            foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
            {
                if (!HopByHop.Contains(name))
                {
                    context.Response.Headers[name] = values.Select(v => v.Replace(from, to, StringComparison.OrdinalIgnoreCase)).ToArray();
                }
            }

            if (HttpMethods.IsHead(request.Method))
            {
                return;
            }

            await using var body = await response.Content.ReadAsStreamAsync(context.RequestAborted).ConfigureAwait(false);
            var length = response.Content.Headers.ContentLength;
            if (response.IsSuccessStatusCode && length is { } size && ticket.ShouldResetBody(size))
            {
                await CopyAsync(body, context, size / 2).ConfigureAwait(false);
                await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
                await Task.Delay(50, context.RequestAborted).ConfigureAwait(false);
                context.Abort();
                return;
            }

            await CopyAsync(body, context, long.MaxValue).ConfigureAwait(false);
        }

        private static async Task CopyAsync(Stream body, HttpContext context, long count)
        {
            var buffer = new byte[81920];
            while (count > 0)
            {
                var read = await body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), context.RequestAborted).ConfigureAwait(false);
                if (read == 0)
                {
                    return;
                }

                await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), context.RequestAborted).ConfigureAwait(false);
                count -= read;
            }
        }

        private static async Task WriteAsync(HttpContext context, int status, string json)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(json);
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json";
            context.Response.ContentLength = bytes.Length;
            if (!HttpMethods.IsHead(context.Request.Method))
            {
                await context.Response.Body.WriteAsync(bytes, context.RequestAborted).ConfigureAwait(false);
            }
        }
    }
}
