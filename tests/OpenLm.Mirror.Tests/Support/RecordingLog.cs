using System.Collections.Concurrent;
using OpenLm.Mirror.Diagnostics;

namespace OpenLm.Mirror.Tests.Support;

/// <summary>Keeps every line the library logs, for assertions on warnings.</summary>
internal sealed class RecordingLog : IMirrorLog
{
    private readonly ConcurrentQueue<(LogLevel Level, string Message)> _lines = new();

    public IReadOnlyList<(LogLevel Level, string Message)> Lines => _lines.ToList();

    public IEnumerable<string> Warnings => _lines.Where(l => l.Level == LogLevel.Warning).Select(l => l.Message);

    public void Write(LogLevel level, string message) => _lines.Enqueue((level, message));
}
