using System.CommandLine;
using System.Text.Json;
using OpenLm.Mirror.Cli.Output;
using OpenLm.Mirror.Delta;

namespace OpenLm.Mirror.Cli.Commands;

/// <summary><c>openlm-mirror diff OLD NEW [--json]</c>: what changes between two releases, before anyone moves a byte.</summary>
internal static class DiffCommand
{
    public static Command Create(CliConsole console)
    {
        var old = new Argument<string>("OLD") { Description = "The release the site has: a bundle (or its first part), a lock or an import receipt" };
        var @new = new Argument<string>("NEW") { Description = "The release to upgrade to: a bundle, a lock or an import receipt" };
        var all = new Option<bool>("--all") { Description = "List unchanged images too" };
        var json = new Option<bool>("--json") { Description = "Print the diff as JSON on stdout" };
        var command = new Command("diff", "Compare two releases: images added, removed and changed, charts, values paths, and the bytes a delta would carry") { old, @new, all, json };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var diff = await ReleaseDiff.CompareAsync(parse.GetValue(old)!, parse.GetValue(@new)!, cancellationToken).ConfigureAwait(false);
            var o = console.Out;
            if (parse.GetValue(json))
            {
                await o.WriteLineAsync(JsonSerializer.Serialize(new
                {
                    old = diff.Old,
                    @new = diff.New,
                    added = diff.Count(ImageChange.Added),
                    removed = diff.Count(ImageChange.Removed),
                    changed = diff.Count(ImageChange.Changed),
                    unchanged = diff.Count(ImageChange.Unchanged),
                    images = diff.Images.Where(i => parse.GetValue(all) || i.Change != ImageChange.Unchanged).Select(i => new
                    {
                        repository = i.Repository,
                        change = i.Change.ToString().ToLowerInvariant(),
                        oldTag = i.OldTag,
                        newTag = i.NewTag,
                        oldDigest = i.OldDigest,
                        newDigest = i.NewDigest,
                    }),
                    charts = diff.Charts,
                    valuesAdded = diff.ValuesAdded,
                    valuesRemoved = diff.ValuesRemoved,
                    delta = new { blobs = diff.DeltaBlobs, bytes = diff.DeltaBytes, fullBytes = diff.FullBytes },
                }, Format.Json)).ConfigureAwait(false);
                return ExitCodes.Success;
            }

            await o.WriteLineAsync($"{diff.Old.Platform} {diff.Old.Version} ({diff.Old.Kind}) -> {diff.New.Platform} {diff.New.Version} ({diff.New.Kind})").ConfigureAwait(false);
            var shown = diff.Images.Where(i => parse.GetValue(all) || i.Change != ImageChange.Unchanged).ToList();
            var width = shown.Count == 0 ? 0 : shown.Max(i => i.Repository.Length);
            foreach (var image in shown)
            {
                var tags = image.Change switch
                {
                    ImageChange.Added => $"{image.NewTag}  {Short(image.NewDigest)}",
                    ImageChange.Removed => $"{image.OldTag}  {Short(image.OldDigest)}",
                    _ => $"{image.OldTag} -> {image.NewTag}  {Short(image.OldDigest)} -> {Short(image.NewDigest)}",
                };
                await o.WriteLineAsync($"{image.Change.ToString().ToLowerInvariant(),-9} {image.Repository.PadRight(width)}  {tags}").ConfigureAwait(false);
            }

            await o.WriteLineAsync($"images: {diff.Count(ImageChange.Added)} added, {diff.Count(ImageChange.Removed)} removed, {diff.Count(ImageChange.Changed)} changed, {diff.Count(ImageChange.Unchanged)} unchanged").ConfigureAwait(false);
            foreach (var chart in diff.Charts)
            {
                await o.WriteLineAsync($"chart     {chart.Name}  {chart.OldVersion ?? "(none)"} -> {chart.NewVersion ?? "(none)"}").ConfigureAwait(false);
            }

            if (diff.ValuesAdded.Count + diff.ValuesRemoved.Count > 0)
            {
                await o.WriteLineAsync($"values paths: added {Join(diff.ValuesAdded)}; removed {Join(diff.ValuesRemoved)}").ConfigureAwait(false);
            }

            await o.WriteLineAsync($"a delta over OLD carries {diff.DeltaBlobs} manifests and blobs, {Format.Bytes(diff.DeltaBytes)} (a full bundle {Format.Bytes(diff.FullBytes)})").ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    private static string Short(string? digest) => digest is null ? "-" : digest.Length > 19 ? digest[..19] : digest;

    private static string Join(IReadOnlyList<string> items) => items.Count == 0 ? "none" : string.Join(", ", items);
}
