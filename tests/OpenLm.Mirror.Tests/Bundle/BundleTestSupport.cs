using System.Diagnostics;
using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Layout;
using OpenLm.Mirror.Oci;
using OpenLm.Mirror.Signing;

namespace OpenLm.Mirror.Tests.Bundle;

/// <summary>A temporary directory removed on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "openlm-bundle-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class TestKeys
{
    public static SigningKey NewSigningKey()
    {
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return SigningKey.FromPem(ecdsa.ExportPkcs8PrivateKeyPem(), null, "test key");
    }
}

/// <summary>Runs a program and returns its exit code, stdout and stderr.</summary>
internal static class Tool
{
    public static (int ExitCode, string StdOut, string StdErr) Run(string fileName, params string[] args) =>
        Run(fileName, null, args);

    public static (int ExitCode, string StdOut, string StdErr) Run(string fileName, byte[]? stdin, params string[] args)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        if (stdin is not null)
        {
            p.StandardInput.BaseStream.Write(stdin);
            p.StandardInput.Close();
        }

        var stdoutTask = p.StandardOutput.ReadToEndAsync();
        var stderrTask = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} did not finish");
        }

        return (p.ExitCode, stdoutTask.Result, stderrTask.Result);
    }
}

/// <summary>Builds a small OCI layout by code: a multi-arch image and a single-arch image sharing a base layer.</summary>
internal sealed class TestLayout
{
    public const string Registry = "public.ecr.aws/r3q3q2f4";
    public const string ServerRef = Registry + "/olm-server:1.260716.1540";
    public const string WebRef = Registry + "/olm-web:2.0.1";

    private TestLayout(OciLayoutStore store) => Store = store;

    public OciLayoutStore Store { get; }

    public Descriptor ServerIndex { get; private set; } = null!;

    public Descriptor WebManifest { get; private set; } = null!;

    public Descriptor SharedLayer { get; private set; } = null!;

    /// <summary>Layers not shared with anything (one per manifest).</summary>
    public List<Descriptor> OwnLayers { get; } = [];

    public List<Descriptor> AllBlobs { get; } = [];

    public long UniqueBytes => AllBlobs.DistinctBy(b => b.Digest).Sum(b => b.Size);

    public static async Task<TestLayout> CreateAsync(string directory, int layerSize = 4096, int seed = 1)
    {
        var store = OciLayoutStore.Open(directory, create: true);
        var layout = new TestLayout(store);
        var random = new Random(seed);

        var shared = await layout.PushAsync(MediaTypes.OciLayer, RandomBytes(random, layerSize));
        layout.SharedLayer = shared;

        async Task<Descriptor> Image(string os, string arch, string? variant)
        {
            var own = await layout.PushAsync(MediaTypes.OciLayer, RandomBytes(random, layerSize + random.Next(1, 700)));
            layout.OwnLayers.Add(own);
            var config = new JsonObject
            {
                ["architecture"] = arch,
                ["os"] = os,
                ["config"] = new JsonObject { ["Env"] = new JsonArray("PATH=/usr/bin") },
                ["rootfs"] = new JsonObject
                {
                    ["type"] = "layers",
                    ["diff_ids"] = new JsonArray(shared.Digest.ToString(), own.Digest.ToString()),
                },
            };
            if (variant is not null)
            {
                config["variant"] = variant;
            }

            var configDesc = await layout.PushAsync(MediaTypes.OciConfig, JsonSerializer.SerializeToUtf8Bytes(config));
            var manifest = new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = MediaTypes.OciManifest,
                ["config"] = JsonSerializer.SerializeToNode(configDesc),
                ["layers"] = new JsonArray(JsonSerializer.SerializeToNode(shared), JsonSerializer.SerializeToNode(own)),
            };
            return await layout.PushAsync(MediaTypes.OciManifest, JsonSerializer.SerializeToUtf8Bytes(manifest));
        }

        var amd64 = await Image("linux", "amd64", null) with { Platform = new Platform { Os = "linux", Architecture = "amd64" } };
        var arm64 = await Image("linux", "arm64", "v8") with { Platform = new Platform { Os = "linux", Architecture = "arm64", Variant = "v8" } };
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.OciIndex,
            ["manifests"] = new JsonArray(JsonSerializer.SerializeToNode(amd64), JsonSerializer.SerializeToNode(arm64)),
        };
        layout.ServerIndex = await layout.PushAsync(MediaTypes.OciIndex, JsonSerializer.SerializeToUtf8Bytes(index));
        await store.TagAsync(layout.ServerIndex, ServerRef);

        layout.WebManifest = await Image("linux", "amd64", null);
        await store.TagAsync(layout.WebManifest, WebRef);
        return layout;
    }

    public static BundleManifest BaseManifest(DateTimeOffset? created = null) => new()
    {
        Platform = new BundleProduct { Name = "olm", Version = "1.260716.1540" },
        Tool = new BundleProduct { Name = "openlm-mirror", Version = "0.1.0" },
        Source = Registry,
        Created = created ?? new DateTimeOffset(2026, 7, 16, 15, 40, 0, TimeSpan.Zero),
        Images =
        [
            new BundleImage { Reference = ServerRef, Values = ["server.image", "worker.image"] },
            new BundleImage { Reference = WebRef, Values = ["web.image"] },
        ],
    };

    public async Task<Descriptor> PushAsync(string mediaType, byte[] content)
    {
        var d = Descriptor.For(mediaType, content);
        await Store.PushBytesAsync(d, content);
        AllBlobs.Add(d);
        return d;
    }

    private static byte[] RandomBytes(Random random, int size)
    {
        var b = new byte[size];
        random.NextBytes(b);
        return b;
    }
}

/// <summary>One tar entry as a test sees it.</summary>
internal sealed record RawEntry(string Name, byte[] Data, TarEntryType Type = TarEntryType.RegularFile, string? LinkName = null);

/// <summary>Takes bundles apart and puts (possibly malicious) ones together with System.Formats.Tar.</summary>
internal static class BundleTar
{
    public static List<RawEntry> ReadEntries(byte[] tar)
    {
        var list = new List<RawEntry>();
        using var reader = new TarReader(new MemoryStream(tar));
        while (reader.GetNextEntry() is { } e)
        {
            var data = new byte[e.Length];
            e.DataStream?.ReadExactly(data);
            list.Add(new RawEntry(e.Name, data, e.EntryType, e.LinkName));
        }

        return list;
    }

    public static byte[] Write(IEnumerable<RawEntry> entries, TarEntryFormat format = TarEntryFormat.Pax)
    {
        var ms = new MemoryStream();
        using (var writer = new TarWriter(ms, format, leaveOpen: true))
        {
            foreach (var e in entries)
            {
                TarEntry entry = format switch
                {
                    TarEntryFormat.Ustar => new UstarTarEntry(e.Type, e.Name),
                    TarEntryFormat.Gnu => new GnuTarEntry(e.Type, e.Name),
                    _ => new PaxTarEntry(e.Type, e.Name),
                };
                entry.ModificationTime = DateTimeOffset.UnixEpoch;
                if (!string.IsNullOrEmpty(e.LinkName) && e.Type is TarEntryType.SymbolicLink or TarEntryType.HardLink)
                {
                    entry.LinkName = e.LinkName;
                }

                if (e.Type is TarEntryType.RegularFile or TarEntryType.V7RegularFile)
                {
                    entry.DataStream = new MemoryStream(e.Data);
                }

                writer.WriteEntry(entry);
            }
        }

        return ms.ToArray();
    }

    /// <summary>Rewrites the ustar header of the entry named <paramref name="name"/> and fixes its checksum.</summary>
    public static void PatchHeader(byte[] tar, string name, Action<byte[], int> patch)
    {
        var nameBytes = Encoding.ASCII.GetBytes(name + "\0");
        for (var offset = 0; offset + 512 <= tar.Length; offset += 512)
        {
            if (tar.AsSpan(offset, nameBytes.Length).SequenceEqual(nameBytes) && tar.AsSpan(offset + 257, 5).SequenceEqual("ustar"u8) && tar[offset + 156] != (byte)'x')
            {
                patch(tar, offset);
                tar.AsSpan(offset + 148, 8).Fill((byte)' ');
                var sum = 0;
                for (var i = 0; i < 512; i++)
                {
                    sum += tar[offset + i];
                }

                Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(tar, offset + 148);
                return;
            }
        }

        throw new InvalidOperationException($"no header for '{name}'");
    }

    public static void SetSize(byte[] tar, string name, long size) =>
        PatchHeader(tar, name, (t, o) => Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(11, '0') + "\0").CopyTo(t, o + 124));

    /// <summary>
    /// Re-signs a bundle whose entries were changed: recomputes index digest/size and blob stats, applies
    /// <paramref name="edit"/> to the manifest JSON, signs with <paramref name="key"/>.
    /// </summary>
    public static List<RawEntry> Resign(List<RawEntry> entries, SigningKey key, Action<JsonObject>? edit = null)
    {
        var index = entries.Single(e => e.Name == BundleFormat.IndexEntry).Data;
        var blobs = entries.Where(e => e.Name.StartsWith(BundleFormat.BlobPrefix, StringComparison.Ordinal)).ToList();
        var manifestEntry = entries.Single(e => e.Name == BundleFormat.ManifestEntry);
        var json = JsonNode.Parse(manifestEntry.Data)!.AsObject();
        json["index"] = new JsonObject { ["digest"] = Digest.Sha256(index).ToString(), ["size"] = index.Length };
        json["blobs"] = new JsonObject { ["count"] = blobs.Count, ["totalBytes"] = blobs.Sum(b => (long)b.Data.Length) };
        json["signer"] = new JsonObject { ["keyId"] = key.KeyId };
        edit?.Invoke(json);
        var bytes = Encoding.UTF8.GetBytes(json.ToJsonString(BundleFormat.JsonOptions) + "\n");
        var sig = BundleFormat.EncodeSignature(key.Sign(bytes));
        return entries.Select(e => e.Name switch
        {
            BundleFormat.ManifestEntry => e with { Data = bytes },
            BundleFormat.SignatureEntry => e with { Data = sig },
            _ => e,
        }).ToList();
    }

    public static string HeaderName(Descriptor d) => BundleFormat.BlobPrefix + d.Digest.Hex;
}

/// <summary>A bundle written by <see cref="BundleWriter"/> from a <see cref="TestLayout"/>.</summary>
internal sealed record WrittenBundle(TestLayout Layout, string Path, byte[] Bytes, BundleWriteResult Result)
{
    public static async Task<WrittenBundle> CreateAsync(TempDir dir, SigningKey key, BundleWriteOptions? options = null, int layerSize = 4096, string name = "bundle.tar")
    {
        var layout = await TestLayout.CreateAsync(System.IO.Path.Combine(dir.Path, "layout-" + name), layerSize);
        var path = dir.File(name);
        var result = await BundleWriter.WriteAsync(layout.Store, TestLayout.BaseManifest(), key, path, options);
        return new WrittenBundle(layout, path, await System.IO.File.ReadAllBytesAsync(path), result);
    }

    public Task<BundleReadResult> ReadAsync(VerificationKey key, IBundleVisitor? visitor = null) =>
        BundleReader.ReadAsync(new MemoryStream(Bytes), new BundleReadOptions { Key = key, Visitor = visitor });
}

/// <summary>Records what a reader passes to its visitor.</summary>
internal sealed class RecordingVisitor : IBundleVisitor
{
    public List<string> Calls { get; } = [];

    public BundleHead? Head { get; private set; }

    public BundleReadResult? Completed { get; private set; }

    public Dictionary<Digest, byte[]> Blobs { get; } = [];

    /// <summary>How many bytes of each blob to read (null: all).</summary>
    public int? ReadLimit { get; init; }

    public ValueTask OnHeadAsync(BundleHead head, CancellationToken cancellationToken)
    {
        Head = head;
        Calls.Add("head");
        return ValueTask.CompletedTask;
    }

    public ValueTask OnManifestAsync(Descriptor descriptor, ReadOnlyMemory<byte> verifiedBytes, CancellationToken cancellationToken)
    {
        Calls.Add("manifest " + descriptor.Digest);
        Blobs[descriptor.Digest] = verifiedBytes.ToArray();
        return ValueTask.CompletedTask;
    }

    public async ValueTask OnBlobAsync(Descriptor descriptor, Stream content, CancellationToken cancellationToken)
    {
        Calls.Add("blob " + descriptor.Digest);
        var ms = new MemoryStream();
        if (ReadLimit is { } limit)
        {
            var buffer = new byte[Math.Min(limit, (int)descriptor.Size)];
            await content.ReadExactlyAsync(buffer, cancellationToken);
            ms.Write(buffer);
        }
        else
        {
            await content.CopyToAsync(ms, cancellationToken);
        }

        Blobs[descriptor.Digest] = ms.ToArray();
    }

    public ValueTask OnCompletedAsync(BundleReadResult result, CancellationToken cancellationToken)
    {
        Completed = result;
        Calls.Add("completed");
        return ValueTask.CompletedTask;
    }
}
