using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OpenLm.Mirror.Cli.Output;

/// <summary>
/// <c>--log-format json</c>: stderr as one JSON object per line, <c>{"time", "level", "message", …fields}</c>, for log
/// collectors. Structured writers (<see cref="ConsoleLog"/>, the plain progress lines) call <see cref="WriteEntry"/> with
/// their level and fields (phase, image, digest, …); any other line written to stderr (the final <c>error: …</c>,
/// usage errors) becomes an entry whose level is read from its <c>error: </c> / <c>warning: </c> prefix.
/// </summary>
internal sealed class JsonLogWriter(TextWriter inner, TimeProvider? time = null) : TextWriter
{
    public const string FormatName = "--log-format";

    private readonly Lock _gate = new();
    private readonly StringBuilder _line = new();
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public override Encoding Encoding => inner.Encoding;

    /// <summary>Whether the command line asks for JSON logs (read before parsing, so usage errors are JSON too).</summary>
    public static bool Requested(IEnumerable<string> args)
    {
        var list = args.TakeWhile(a => a != "--").ToList();
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] == FormatName + "=json" || (list[i] == FormatName && i + 1 < list.Count && list[i + 1] == "json"))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>One entry: <paramref name="level"/> is error, warning, info or debug; <paramref name="fields"/> are added as they are.</summary>
    public void WriteEntry(string level, string message, IEnumerable<KeyValuePair<string, object?>>? fields = null)
    {
        var entry = new JsonObject
        {
            ["time"] = _time.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
            ["level"] = level,
            ["message"] = message,
        };
        foreach (var (key, value) in fields ?? [])
        {
            if (value is not null)
            {
                entry[key] = JsonSerializer.SerializeToNode(value);
            }
        }

        lock (_gate)
        {
            inner.WriteLine(entry.ToJsonString());
            inner.Flush();
        }
    }

    public override void Write(char value)
    {
        string? complete = null;
        lock (_gate)
        {
            if (value == '\n')
            {
                complete = _line.ToString().TrimEnd('\r');
                _line.Clear();
            }
            else
            {
                _line.Append(value);
            }
        }

        if (complete is not null)
        {
            WriteUnstructured(complete);
        }
    }

    public override void Write(string? value)
    {
        foreach (var c in value ?? string.Empty)
        {
            Write(c);
        }
    }

    public override void WriteLine(string? value)
    {
        Write(value);
        Write('\n');
    }

    public override Task WriteAsync(string? value)
    {
        Write(value);
        return Task.CompletedTask;
    }

    public override Task WriteLineAsync(string? value)
    {
        WriteLine(value);
        return Task.CompletedTask;
    }

    public override void Flush()
    {
        string? rest;
        lock (_gate)
        {
            rest = _line.Length > 0 ? _line.ToString() : null;
            _line.Clear();
        }

        if (rest is not null)
        {
            WriteUnstructured(rest);
        }

        inner.Flush();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Flush();
        }

        base.Dispose(disposing);
    }

    private void WriteUnstructured(string line)
    {
        if (line.Length == 0)
        {
            return;
        }

        var (level, message) = line switch
        {
            _ when line.StartsWith("error: ", StringComparison.Ordinal) => ("error", line["error: ".Length..]),
            _ when line.StartsWith("warning: ", StringComparison.Ordinal) => ("warning", line["warning: ".Length..]),
            _ when line.StartsWith("interrupted (", StringComparison.Ordinal) => ("error", line),
            _ => ("info", line),
        };
        WriteEntry(level, message);
    }
}
