using OpenLm.Mirror.Bundle;
using OpenLm.Mirror.Copy;
using OpenLm.Mirror.Errors;
using OpenLm.Mirror.Tests.Bundle;
using OpenLm.Mirror.Tests.Support;
using Xunit;

namespace OpenLm.Mirror.Tests.Import;

/// <summary>What the importer refuses before it talks to the registry, and the bundle forms it accepts.</summary>
public sealed class BundleImporterInputTests(SignedSampleBundleFixture fixture) : IClassFixture<SignedSampleBundleFixture>, IAsyncLifetime
{
    private ImportHarness _harness = null!;

    private SampleBundle Bundle => fixture.Bundle;

    public Task InitializeAsync()
    {
        _harness = new ImportHarness();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    [Fact]
    public async Task BundleImporter_ImportAsync_NoKeyWithoutOptOut_InputExceptionBeforeAnyRequest()
    {
        // Given a request without a key and without the explicit opt-out
        var request = _harness.Request(Bundle) with { Key = null, AllowUnsigned = false };

        // When it is imported
        var ex = await Assert.ThrowsAsync<InputException>(() => _harness.ImportAsync(request));

        // Then it is refused, saying the opt-out must be explicit, and the registry saw nothing
        Assert.Contains("explicitly", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_harness.Registry.Requests);
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_UnsignedBundleWithoutOptOut_RefusedBeforeAnyRequest()
    {
        // Given a bundle whose signature entry was removed
        var unsigned = WriteUnsigned();

        // When it is imported with the release key and no opt-out
        var ex = await Assert.ThrowsAsync<IntegrityException>(() => _harness.ImportAsync(_harness.Request(Bundle) with { BundlePath = unsigned }));

        // Then it is refused as not signed, and the registry saw nothing
        Assert.Contains("not signed", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_harness.Registry.Requests);
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_UnsignedBundleWithExplicitOptOut_ImportedAndWarned()
    {
        // Given a bundle whose signature entry was removed
        var unsigned = WriteUnsigned();

        // When it is imported with the explicit opt-out and no key
        var result = await _harness.ImportAsync(_harness.Request(Bundle) with { BundlePath = unsigned, Key = null, AllowUnsigned = true });

        // Then every image arrives, the result says the signature was not verified, and the log warns about it
        Assert.False(result.SignatureVerified);
        Assert.All(result.Images, i => Assert.Equal(TagOutcome.Created, i.Tag));
        Assert.All(Bundle.Images, i => Assert.Equal(i.Digest, _harness.Registry.Repo(ImportNames.TargetRepository(i)).Tags[i.Tag]));
        Assert.Contains(_harness.Log.Warnings, w => w.Contains("signature is NOT checked", StringComparison.Ordinal));
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_TwoImagesMappedToOneName_InputExceptionBeforeAnyRequest()
    {
        // Given --map rules that send two different images to the same repository (both are tagged 1.0.0)
        var server = Bundle.Images.Single(i => i.Repository.EndsWith("/olm-server", StringComparison.Ordinal));
        var worker = Bundle.Images.Single(i => i.Repository.EndsWith("/olm-worker", StringComparison.Ordinal));
        var request = _harness.Request(Bundle) with
        {
            Maps = [$"{Bundle.Source}/{SampleBundle.RelativeName(server)}=olm", $"{Bundle.Source}/{SampleBundle.RelativeName(worker)}=olm"],
        };

        // When it is imported
        var ex = await Assert.ThrowsAsync<InputException>(() => _harness.ImportAsync(request));

        // Then the collision is refused, naming the target, before anything reaches the registry
        Assert.Contains($"{ImportNames.Prefix}/olm:{server.Tag}", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_harness.Registry.Requests);
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_WrongKey_IntegrityExceptionBeforeAnyRequest()
    {
        // Given a key other than the one the bundle was signed with
        using var other = SampleBundle.NewKey();
        using var wrong = other.GetVerificationKey();

        // When the bundle is imported with it
        var ex = await Assert.ThrowsAsync<IntegrityException>(() => _harness.ImportAsync(_harness.Request(Bundle) with { Key = wrong }));

        // Then the signature does not verify and the registry saw nothing
        Assert.Contains("does not verify", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_harness.Registry.Requests);
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_BundleGivenAsFifo_InputExceptionAskingForAFile()
    {
        // Given the bundle offered through a named pipe, written by another party
        var fifo = _harness.Directory.Sub("bundle.fifo");
        var made = Tool.Run("mkfifo", fifo);
        Assert.True(made.ExitCode == 0, made.StdErr);
        var bytes = await File.ReadAllBytesAsync(Bundle.Path);
        var writer = Task.Run(() =>
        {
            try
            {
                using var pipe = new FileStream(fifo, FileMode.Open, FileAccess.Write);
                pipe.Write(bytes);
            }
            catch (IOException)
            {
                // The importer closes its end without reading: a broken pipe is the expected outcome.
            }
        });

        try
        {
            // When it is imported from the pipe
            var ex = await Assert.ThrowsAsync<InputException>(() => _harness.ImportAsync(_harness.Request(Bundle) with { BundlePath = fifo }))
                .WaitAsync(TimeSpan.FromSeconds(60));

            // Then it is refused with a message that a file on disk is needed, before any request
            Assert.Contains("must be a file", ex.Message, StringComparison.Ordinal);
            Assert.Empty(_harness.Registry.Requests);
        }
        finally
        {
            if (!writer.IsCompleted)
            {
                // The importer never opened the pipe: open the reading end so the writer is released.
                using var release = new FileStream(fifo, FileMode.Open, FileAccess.Read);
            }

            await writer.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_SingleStreamZstdBundle_ImportedAndTemporaryCopyRemoved()
    {
        // Given an old-style bundle: the whole tar in one zstd frame, and a temporary directory for its decompressed copy
        using var zstd = await SampleBundle.CreateAsync(_harness.Directory.Sub("zstd"), seed: 22);
        var legacy = await LegacyZstd.CompressAsync(zstd.Path, _harness.Directory.Sub("legacy.tar.zst"));
        var temp = _harness.Directory.Sub("tmp");
        Directory.CreateDirectory(temp);

        // When it is imported
        var result = await _harness.ImportAsync(_harness.Request(zstd) with { BundlePath = legacy, TempDirectory = temp });

        // Then every image arrives with the bundle's digests, and the decompressed copy is gone
        Assert.True(result.SignatureVerified);
        foreach (var image in zstd.Images)
        {
            var repository = _harness.Registry.Repo(ImportNames.TargetRepository(image));
            Assert.Equal(image.Digest, repository.Tags[image.Tag]);
            Assert.All(image.BlobDigests, d => Assert.Equal(zstd.Platform.ReadBlob(d), repository.Blobs[d]));
        }

        Assert.Empty(Directory.EnumerateFileSystemEntries(temp));
    }

    [Fact]
    public async Task BundleImporter_ImportAsync_ZstdBundleWithWrongKey_RefusedAndTemporaryCopyRemoved()
    {
        // Given an old-style zstd bundle, a key other than its signer's, and a temporary directory for the decompressed copy
        using var zstd = await SampleBundle.CreateAsync(_harness.Directory.Sub("zstd"), seed: 23);
        var legacy = await LegacyZstd.CompressAsync(zstd.Path, _harness.Directory.Sub("legacy.tar.zst"));
        using var other = SampleBundle.NewKey();
        using var wrong = other.GetVerificationKey();
        var temp = _harness.Directory.Sub("tmp");
        Directory.CreateDirectory(temp);

        // When it is imported with that key
        await Assert.ThrowsAsync<IntegrityException>(() => _harness.ImportAsync(_harness.Request(zstd) with { BundlePath = legacy, Key = wrong, TempDirectory = temp }));

        // Then the registry saw nothing and the decompressed copy was removed
        Assert.Empty(_harness.Registry.Requests);
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp));
    }

    /// <summary>The sample bundle without its signature entry, written to the harness directory.</summary>
    private string WriteUnsigned()
    {
        var entries = BundleTar.ReadEntries(File.ReadAllBytes(Bundle.Path)).Where(e => e.Name != BundleFormat.SignatureEntry);
        var path = _harness.Directory.Sub("unsigned.tar");
        File.WriteAllBytes(path, BundleTar.Write(entries));
        return path;
    }
}
