using OpenLm.Mirror.Content;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Oci;

namespace OpenLm.Mirror.Bundle;

/// <summary>
/// The full content of a release read from a delta bundle and the earlier bundle files it was made against (full, split
/// parts, or deltas whose own bases are given too). Every file is opened as a <see cref="BundleSource"/> with the same
/// options, so each base's signature is checked with the same key and each blob is verified as it is read. Opening
/// checks, before any blob is read:
/// <list type="bullet">
/// <item>every given base is one a delta of the chain names: a <c>bundle</c> base by its bundle digest, a <c>lock</c> or
/// <c>receipt</c> base (which holds no bytes) by the release it stands for; anything else is refused;</item>
/// <item>every blob the top delta omits is carried by one of the given bases, with the size the delta recorded.</item>
/// </list>
/// A full bundle with no bases is its own content; a full bundle with bases, or a delta without them, is refused.
/// </summary>
public sealed class LayeredBundleSource : IReadOnlyTarget, IManifestFetchable, IAsyncDisposable
{
    /// <summary>How many missing blobs a message lists before it only counts the rest.</summary>
    private const int ListedInMessage = 5;

    private const string DefaultUse = "read as a whole release";

    private readonly IReadOnlyList<BundleSource> _bases;
    private readonly IReadOnlyDictionary<Digest, BundleSource> _providers;

    private LayeredBundleSource(BundleSource top, IReadOnlyList<BundleSource> bases, IReadOnlyDictionary<Digest, BundleSource> providers)
    {
        Top = top;
        _bases = bases;
        _providers = providers;
        var blobs = top.Blobs.Select(b => b.Descriptor).ToList();
        foreach (var source in bases)
        {
            // Per base in its file order, so each base is read front to back.
            blobs.AddRange(source.Blobs.Where(b => providers.TryGetValue(b.Descriptor.Digest, out var p) && ReferenceEquals(p, source)).Select(b => b.Descriptor));
        }

        Blobs = blobs;
    }

    /// <summary>The bundle given first: the release whose images are read (a delta or a full bundle).</summary>
    public BundleSource Top { get; }

    /// <summary>The bases, in the order given.</summary>
    public IReadOnlyList<BundleSource> Bases => _bases;

    public string DisplayName => Top.DisplayName;

    /// <summary>The top bundle's verified head.</summary>
    public BundleHead Head => Top.Head;

    /// <summary>Every manifest and index of the release (a delta carries them all).</summary>
    public IReadOnlyDictionary<Digest, ManifestDocument> Documents => Top.Documents;

    public IReadOnlyList<Descriptor> ManifestsChildrenFirst => Top.ManifestsChildrenFirst;

    /// <summary>Every config and layer of the release: the top bundle's in file order, then those the bases supply, base by base.</summary>
    public IReadOnlyList<Descriptor> Blobs { get; }

    /// <summary>
    /// Opens <paramref name="path"/> and every base in <paramref name="basePaths"/> and checks that together they hold the
    /// whole release (see the type summary). On any error every file opened is closed again. <paramref name="use"/>
    /// completes "a delta bundle cannot be …" when a delta is given without bases (refused before anything else is read).
    /// </summary>
    public static async Task<LayeredBundleSource> OpenAsync(string path, IReadOnlyList<string> basePaths, BundleOpenOptions options, string use = DefaultUse, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(basePaths);
        ArgumentNullException.ThrowIfNull(options);
        var opened = new List<BundleSource>();
        try
        {
            var top = await BundleSource.OpenAsync(path, options, cancellationToken).ConfigureAwait(false);
            opened.Add(top);
            RequireBasesFit(top, basePaths.Count, basePaths.FirstOrDefault(), use);
            foreach (var basePath in basePaths)
            {
                if (Directory.Exists(basePath))
                {
                    throw new InputException($"base '{basePath}' is a directory; give the earlier bundle file") { Subject = basePath, Remedy = Remedy.BaseBundle };
                }

                if (!File.Exists(basePath) && await BundlePartSet.TryLocateAsync(basePath, cancellationToken).ConfigureAwait(false) is null)
                {
                    throw new InputException($"base '{basePath}' does not exist") { Subject = basePath, Remedy = Remedy.BaseBundle };
                }

                opened.Add(await BundleSource.OpenAsync(basePath, options, cancellationToken).ConfigureAwait(false));
            }

            return Over(top, opened.Skip(1).ToList());
        }
        catch
        {
            foreach (var source in opened)
            {
                await source.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>
    /// The layered source over already opened bundles (it owns them from here: disposing it disposes them). Throws, and
    /// disposes nothing, when they do not make up the release.
    /// </summary>
    public static LayeredBundleSource Over(BundleSource top, IReadOnlyList<BundleSource> bases, string use = DefaultUse)
    {
        ArgumentNullException.ThrowIfNull(top);
        ArgumentNullException.ThrowIfNull(bases);
        RequireBasesFit(top, bases.Count, bases.FirstOrDefault()?.DisplayName, use);
        if (!top.IsDelta)
        {
            return new LayeredBundleSource(top, [], new Dictionary<Digest, BundleSource>());
        }

        RequireNamed(top, bases);
        return new LayeredBundleSource(top, bases, Providers(top, bases));
    }

    /// <summary>A full bundle takes no base; a delta needs at least one.</summary>
    private static void RequireBasesFit(BundleSource top, int baseCount, string? firstBase, string use)
    {
        if (!top.IsDelta && baseCount > 0)
        {
            throw new InputException($"{top.DisplayName} is a full bundle of {Release(top)}: it needs no base, but {baseCount} were given (first '{firstBase}'); give the bundle alone")
            { Subject = firstBase };
        }

        if (top.IsDelta && baseCount == 0)
        {
            top.RequireFull(use, baseAccepted: true);
        }
    }

    public Task<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken = default) => Top.ResolveAsync(reference, cancellationToken);

    public Task<(Descriptor Descriptor, byte[] Bytes)> FetchManifestAsync(string reference, CancellationToken cancellationToken = default) =>
        Top.FetchManifestAsync(reference, cancellationToken);

    public Task<bool> ExistsAsync(Descriptor descriptor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        return _providers.ContainsKey(descriptor.Digest) ? Task.FromResult(true) : Top.ExistsAsync(descriptor, cancellationToken);
    }

    /// <summary>
    /// A manifest or a blob the top bundle carries comes from it; an omitted blob from the base that carries it, through
    /// that base's verifier (a mismatch raises <see cref="IntegrityException"/> naming the base file).
    /// </summary>
    public Task<Stream> FetchAsync(Descriptor descriptor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        return _providers.TryGetValue(descriptor.Digest, out var provider)
            ? provider.FetchAsync(descriptor, cancellationToken)
            : Top.FetchAsync(descriptor, cancellationToken);
    }

    /// <summary>True when the blob has been read through its verifier (in whichever file holds it) and matched.</summary>
    public bool IsVerified(Digest digest) =>
        _providers.TryGetValue(digest, out var provider) ? provider.IsVerified(digest) : Top.IsVerified(digest);

    /// <summary>
    /// Reads every blob of the release not yet proven through its verifier: the rest of the top bundle, and every blob a
    /// base supplies to it (the rest of a base is not part of this release and is not read).
    /// </summary>
    public async Task VerifyRemainingAsync(IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        var buffer = new byte[1 << 20];
        long done = 0;
        foreach (var descriptor in Blobs)
        {
            if (!IsVerified(descriptor.Digest))
            {
                var stream = await FetchAsync(descriptor, cancellationToken).ConfigureAwait(false);
                await using (stream.ConfigureAwait(false))
                {
                    while (await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false) > 0)
                    {
                    }
                }
            }

            done += descriptor.Size;
            progress?.Report(done);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Top.DisposeAsync().ConfigureAwait(false);
        foreach (var source in _bases)
        {
            await source.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Every base must be named by the top delta or by a base delta already accepted (a chain 1.2 over 1.1 over 1.0),
    /// and no base may be given twice.
    /// </summary>
    private static void RequireNamed(BundleSource top, IReadOnlyList<BundleSource> bases)
    {
        for (var i = 0; i < bases.Count; i++)
        {
            for (var j = 0; j < i; j++)
            {
                if (bases[i].Head.BundleDigest == bases[j].Head.BundleDigest)
                {
                    throw new InputException($"base '{bases[i].DisplayName}' is the same bundle as base '{bases[j].DisplayName}' ({Release(bases[i])}); give each base once")
                    { Subject = bases[i].DisplayName };
                }
            }
        }

        var accepted = new List<BundleSource> { top };
        var pending = bases.ToList();
        bool progress;
        do
        {
            progress = false;
            foreach (var candidate in pending.ToList())
            {
                if (accepted.Any(a => a.IsDelta && a.Head.Manifest.Base!.Files.Any(f => Names(f, candidate))))
                {
                    accepted.Add(candidate);
                    pending.Remove(candidate);
                    progress = true;
                }
            }
        }
        while (progress && pending.Count > 0);

        if (pending.Count > 0)
        {
            var wrong = pending[0];
            var named = string.Join("; ", accepted.Where(a => a.IsDelta).SelectMany(a => a.Head.Manifest.Base!.Files).Select(Describe).Distinct(StringComparer.Ordinal));
            throw new InputException(
                $"base '{wrong.DisplayName}' is the bundle of {Release(wrong)} ({wrong.Head.BundleDigest}), which is not a base of {top.DisplayName} " +
                $"({Release(top)}): it was made against {named}; give the bundle file(s) it names")
            { Subject = wrong.DisplayName, Remedy = Remedy.BaseBundle };
        }
    }

    /// <summary>A bundle base is named by its bundle digest; a lock or receipt base (no bytes of its own) by the release it stands for.</summary>
    private static bool Names(BundleBaseFile file, BundleSource candidate) => file.Kind switch
    {
        "bundle" => string.Equals(file.Digest, candidate.Head.BundleDigest.ToString(), StringComparison.Ordinal),
        _ => string.Equals(file.Release.Name, candidate.Head.Manifest.Platform.Name, StringComparison.Ordinal)
             && string.Equals(file.Release.Version, candidate.Head.Manifest.Platform.Version, StringComparison.Ordinal),
    };

    /// <summary>For every blob the top delta omits, the base that carries it (the base the delta recorded first, if given).</summary>
    private static Dictionary<Digest, BundleSource> Providers(BundleSource top, IReadOnlyList<BundleSource> bases)
    {
        var providers = new Dictionary<Digest, BundleSource>();
        var missing = new List<(Digest Digest, BundleOmittedBlob Omitted)>();
        foreach (var (digest, omitted) in top.Omitted)
        {
            var recorded = top.Head.Manifest.Base!.Files.ElementAtOrDefault(omitted.Base - 1);
            var provider = bases.Where(b => b.CarriedBlob(digest) is not null)
                .OrderByDescending(b => recorded is not null && Names(recorded, b))
                .FirstOrDefault();
            if (provider is null)
            {
                missing.Add((digest, omitted));
                continue;
            }

            var size = provider.CarriedBlob(digest)!.Descriptor.Size;
            if (size != omitted.Size)
            {
                throw new IntegrityException(
                    $"base '{provider.DisplayName}' ({Release(provider)}) holds blob {digest} as {size} bytes, but {top.DisplayName} recorded {omitted.Size} bytes for it; the files do not belong together or one was altered")
                { Subject = provider.DisplayName };
            }

            providers[digest] = provider;
        }

        if (missing.Count > 0)
        {
            var listed = string.Join("; ", missing.Take(ListedInMessage).Select(m => $"{m.Digest} ({m.Omitted.Size} bytes, from {top.BaseName(m.Omitted.Base)})"));
            var more = missing.Count > ListedInMessage ? $" and {missing.Count - ListedInMessage} more" : string.Empty;
            var holders = string.Join(", ", bases.Select(b => $"'{b.DisplayName}' ({Release(b)}{(b.IsDelta ? ", itself a delta" : string.Empty)})"));
            throw new InputException(
                $"{top.DisplayName} leaves {missing.Count} blob(s) ({missing.Sum(m => m.Omitted.Size)} bytes) to its bases that none of the given bases carries: {listed}{more}; " +
                $"given: {holders}; give the bundle of the release that supplies them (and, for a base that is itself a delta, its own bases too)")
            { Subject = top.DisplayName, Remedy = Remedy.BaseBundle };
        }

        return providers;
    }

    private static string Release(BundleSource source) =>
        $"{source.Head.Manifest.Platform.Name} {source.Head.Manifest.Platform.Version}{(source.IsDelta ? " (delta)" : string.Empty)}";

    private static string Describe(BundleBaseFile file) =>
        file.Kind == "bundle"
            ? $"the bundle of {file.Release.Name} {file.Release.Version} ({file.Digest})"
            : $"a {file.Kind} of {file.Release.Name} {file.Release.Version} (any bundle of that release can stand for it)";
}
