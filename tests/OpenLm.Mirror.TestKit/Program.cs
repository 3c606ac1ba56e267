using System.Diagnostics;
using System.Globalization;

namespace OpenLm.Mirror.TestKit;

/// <summary>
/// CLI: <c>seed</c> pushes a sample platform to a registry, <c>layout</c> writes it as an OCI image layout.
/// Exit codes: 0 success, 1 failure, 2 bad usage.
/// </summary>
internal static class Program
{
    internal const string Usage = """
        OpenLm.Mirror.TestKit — synthetic container images for tests, demos and benchmarks.

        Usage:
          OpenLm.Mirror.TestKit seed   --registry HOST:PORT [options] [--user U --password P] [--concurrency N]
          OpenLm.Mirror.TestKit layout --out DIR [options]
          OpenLm.Mirror.TestKit delay-proxy --listen 127.0.0.1:PORT --to 127.0.0.1:PORT --rtt 20ms
          OpenLm.Mirror.TestKit fault-proxy --upstream http://HOST:PORT [faults]   (see fault-proxy --help)

        Options:
          --profile small|synthetic   small: 8 images, every kind, ~5 MB (default)
                                      synthetic: benchmark set (implied by --total-mb / --images)
          --total-mb N                synthetic: unique payload size in MiB (default 1024)
          --images N                  synthetic: number of images (default 16)
          --seed N                    generator seed (default 1)
          --namespace NS              repository prefix (default r3q3q2f4)
          --oci-only                  OCI media types only (Docker image/list become OCI image/index),
                                      e.g. for skopeo/umoci, which ignore Docker entries in an OCI layout
          --work DIR                  seed: where blobs are generated (default: temp dir, deleted afterwards)
          --json                      print a JSON summary instead of a table
          -h, --help                  this text

        The registry is spoken to over plain HTTP unless given as https://HOST:PORT.

        delay-proxy forwards TCP on loopback, delaying each direction by half of --rtt and each new
        connection by --rtt (a registry that far away). PORT 0 picks a free port; the first stdout
        line is "listening HOST:PORT". Runs until stopped (SIGTERM / Ctrl+C).
        """;

    internal static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "delay-proxy")
        {
            return await DelayProxyCommand.RunAsync(args.AsSpan(1).ToArray()).ConfigureAwait(false);
        }

        if (args.Length > 0 && args[0] == "fault-proxy")
        {
            return await FaultProxyCommand.RunAsync(args[1..]).ConfigureAwait(false);
        }

        Options options;
        SamplePlatform spec;
        try
        {
            options = Options.Parse(args);
            if (options.Help)
            {
                Console.Out.WriteLine(Usage);
                return 0;
            }
            spec = options.Profile == "synthetic"
                ? SamplePlatform.Synthetic(options.TotalMb * 1024L * 1024L, options.Images, options.Seed, options.Namespace)
                : SamplePlatform.Small(options.Seed, options.Namespace);
            if (options.OciOnly) spec = spec.WithOciMediaTypesOnly();
        }
        catch (Exception e) when (e is UsageException or ArgumentException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine("Run with --help for usage.");
            return 2;
        }
        string? tempWork = null;
        try
        {
            var directory = options.Command == "layout" ? options.Out! : options.Work ?? (tempWork = CreateTempDirectory());
            var watch = Stopwatch.StartNew();
            var generated = spec.WriteLayout(directory);
            Console.Error.WriteLine(FormattableString.Invariant(
                $"generated {generated.Images.Count} images, {generated.UniqueBlobCount} blobs, {Mb(generated.UniqueBytes)} in {watch.Elapsed.TotalSeconds:F1}s → {generated.Directory}"));

            if (options.Command == "seed")
            {
                var result = await generated.PushAsync(options.Registry!, new RegistryPushOptions
                {
                    Username = options.User,
                    Password = options.Password,
                    Concurrency = options.Concurrency,
                }).ConfigureAwait(false);
                Console.Error.WriteLine(FormattableString.Invariant(
                    $"pushed to {options.Registry}: {result.BlobsUploaded} blobs uploaded ({Mb(result.BytesUploaded)}), {result.BlobsMounted} mounted, {result.BlobsSkipped} already present, {result.ManifestsPushed} manifests in {result.Elapsed.TotalSeconds:F1}s"));
            }

            if (options.Json)
            {
                Console.Out.WriteLine(generated.ToSummaryJson(options.Command == "seed" ? options.Registry : null));
            }
            else
            {
                var prefix = options.Command == "seed" ? options.Registry + "/" : "";
                foreach (var image in generated.Images)
                {
                    var platforms = image.IsIndex ? " [" + string.Join(", ", image.Platforms) + "]" : "";
                    Console.Out.WriteLine($"{prefix}{image.Reference}\t{image.Digest}\t{image.Kind}\t{Mb(image.TotalSize)}{platforms}");
                }
            }
            return 0;
        }
        catch (Exception e) when (e is RegistryPushException or HttpRequestException or IOException or UnauthorizedAccessException
                                       or ArgumentException or TaskCanceledException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        finally
        {
            if (tempWork is not null)
            {
                try { Directory.Delete(tempWork, recursive: true); }
                catch (IOException) { }
            }
        }
    }

    private static string CreateTempDirectory()
    {
        var path = Path.Combine(Path.GetTempPath(), "openlm-testkit-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(path);
        return path;
    }

    private static string Mb(long bytes) => (bytes / 1024.0 / 1024.0).ToString("F1", CultureInfo.InvariantCulture) + " MiB";

    internal sealed class UsageException(string message) : Exception(message);

    internal sealed record Options
    {
        public string Command { get; private set; } = "";
        public bool Help { get; private set; }
        public string? Registry { get; private set; }
        public string? Out { get; private set; }
        public string Profile { get; private set; } = "small";
        public int TotalMb { get; private set; } = 1024;
        public int Images { get; private set; } = 16;
        public int Seed { get; private set; } = 1;
        public string Namespace { get; private set; } = SamplePlatform.DefaultNamespace;
        public string? Work { get; private set; }
        public bool Json { get; private set; }
        public bool OciOnly { get; private set; }
        public string? User { get; private set; }
        public string? Password { get; private set; }
        public int Concurrency { get; private set; } = 4;

        public static Options Parse(IReadOnlyList<string> args)
        {
            var o = new Options();
            if (args.Count == 0) throw new UsageException("missing command (seed, layout or delay-proxy).");
            if (args[0] is "-h" or "--help" or "help")
            {
                o.Help = true;
                return o;
            }
            o.Command = args[0] switch
            {
                "seed" or "layout" => args[0],
                _ => throw new UsageException($"unknown command '{args[0]}' (expected seed, layout or delay-proxy)."),
            };

            string? profile = null;
            bool synthOnly = false;
            for (var i = 1; i < args.Count; i++)
            {
                var arg = args[i];
                string Value()
                {
                    if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                        throw new UsageException($"{arg} needs a value.");
                    return args[++i];
                }
                int Int(int min)
                {
                    var text = Value();
                    if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < min)
                        throw new UsageException($"{arg} expects an integer ≥ {min}, got '{text}'.");
                    return n;
                }
                switch (arg)
                {
                    case "-h" or "--help": o.Help = true; break;
                    case "--registry": o.Registry = Value(); break;
                    case "--out": o.Out = Value(); break;
                    case "--profile":
                        profile = Value();
                        if (profile is not ("small" or "synthetic")) throw new UsageException($"--profile must be small or synthetic, got '{profile}'.");
                        break;
                    case "--total-mb": o.TotalMb = Int(1); synthOnly = true; break;
                    case "--images": o.Images = Int(1); synthOnly = true; break;
                    case "--seed":
                    {
                        var text = Value();
                        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var seed))
                            throw new UsageException($"--seed expects an integer, got '{text}'.");
                        o.Seed = seed;
                        break;
                    }
                    case "--namespace": o.Namespace = Value().Trim('/'); break;
                    case "--work": o.Work = Value(); break;
                    case "--json": o.Json = true; break;
                    case "--oci-only": o.OciOnly = true; break;
                    case "--user": o.User = Value(); break;
                    case "--password": o.Password = Value(); break;
                    case "--concurrency": o.Concurrency = Int(1); break;
                    default: throw new UsageException($"unknown option '{arg}'.");
                }
            }
            if (o.Help) return o;

            if (synthOnly && profile == "small") throw new UsageException("--total-mb/--images only apply to --profile synthetic.");
            o.Profile = profile ?? (synthOnly ? "synthetic" : "small");
            if (o.Command == "seed")
            {
                if (o.Registry is null) throw new UsageException("seed needs --registry HOST:PORT.");
                if (o.Out is not null) throw new UsageException("--out is for the layout command; seed uses --work.");
                try { RegistryPusher.ParseRegistry(o.Registry); }
                catch (ArgumentException e) { throw new UsageException(e.Message); }
                if (o.User is null != (o.Password is null)) throw new UsageException("--user and --password go together.");
            }
            else
            {
                if (o.Out is null) throw new UsageException("layout needs --out DIR.");
                if (o.Registry is not null || o.User is not null || o.Password is not null || o.Work is not null)
                    throw new UsageException("--registry/--user/--password/--work are for the seed command.");
            }
            if (o.Namespace.Length == 0) throw new UsageException("--namespace must not be empty.");
            return o;
        }
    }
}
