using OpenLm.Mirror.Cli;

return await CliApp.RunAsync(args, CliConsole.System()).ConfigureAwait(false);
