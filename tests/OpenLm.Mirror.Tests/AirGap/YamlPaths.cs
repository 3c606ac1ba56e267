using YamlDotNet.RepresentationModel;

namespace OpenLm.Mirror.Tests.AirGap;

/// <summary>Reads YAML with YamlDotNet's object model into a flat path → value map (sequences as <c>path[i]</c>).</summary>
internal static class YamlPaths
{
    public static Dictionary<string, string?> Flatten(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var result = new Dictionary<string, string?>(StringComparer.Ordinal);
        if (stream.Documents.Count > 0)
        {
            Walk(stream.Documents[0].RootNode, string.Empty, result);
        }

        return result;
    }

    private static void Walk(YamlNode node, string path, Dictionary<string, string?> result)
    {
        switch (node)
        {
            case YamlMappingNode mapping:
                if (mapping.Children.Count == 0)
                {
                    result[path] = "{}";
                }

                foreach (var (key, value) in mapping.Children)
                {
                    var name = ((YamlScalarNode)key).Value;
                    Walk(value, path.Length == 0 ? name! : $"{path}.{name}", result);
                }

                break;
            case YamlSequenceNode sequence:
                if (sequence.Children.Count == 0)
                {
                    result[path] = "[]";
                }

                for (var i = 0; i < sequence.Children.Count; i++)
                {
                    Walk(sequence.Children[i], $"{path}[{i}]", result);
                }

                break;
            case YamlScalarNode scalar:
                result[path] = scalar.Value;
                break;
        }
    }
}
