using OpenLm.Mirror.Export;
using Xunit;

namespace OpenLm.Mirror.Tests.Core;

public sealed class ReleaseTests
{
    [Fact]
    public void Release_DefaultCacheDirectory_PrefersXdgCacheHome()
    {
        // Given XDG_CACHE_HOME set, and then unset
        var withXdg = Release.DefaultCacheDirectory(name => name == "XDG_CACHE_HOME" ? "/var/cache/ci" : null);
        var without = Release.DefaultCacheDirectory(_ => null);

        // Then the cache lives under it, else under ~/.cache
        Assert.Equal(Path.Combine("/var/cache/ci", "openlm-mirror", "export"), withXdg);
        Assert.Equal(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "openlm-mirror", "export"), without);
    }
}
