using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace OpenLm.Mirror.TestKit;

internal static class Json
{
    /// <summary>Indented, and '+' in media types written literally (the default encoder would emit \u002B).</summary>
    public static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static byte[] Build(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(w);
        }
        return buffer.WrittenSpan.ToArray();
    }

    public static void Descriptor(Utf8JsonWriter w, string mediaType, string digest, long size,
        ImagePlatform? platform = null, string? artifactType = null, IReadOnlyDictionary<string, string>? annotations = null)
    {
        w.WriteStartObject();
        w.WriteString("mediaType", mediaType);
        w.WriteString("digest", digest);
        w.WriteNumber("size", size);
        if (artifactType is not null) w.WriteString("artifactType", artifactType);
        if (platform is not null)
        {
            w.WritePropertyName("platform");
            Platform(w, platform);
        }
        if (annotations is { Count: > 0 }) Annotations(w, annotations);
        w.WriteEndObject();
    }

    public static void Platform(Utf8JsonWriter w, ImagePlatform platform)
    {
        w.WriteStartObject();
        w.WriteString("architecture", platform.Architecture);
        w.WriteString("os", platform.Os);
        if (platform.Variant is not null) w.WriteString("variant", platform.Variant);
        w.WriteEndObject();
    }

    public static void Annotations(Utf8JsonWriter w, IReadOnlyDictionary<string, string> annotations)
    {
        w.WriteStartObject("annotations");
        foreach (var (key, value) in annotations.OrderBy(a => a.Key, StringComparer.Ordinal)) w.WriteString(key, value);
        w.WriteEndObject();
    }
}
