using OpenLm.Mirror.Cli;

using var interrupt = Interrupt.FromProcessSignals();
return await CliApp.RunAsync(args, CliConsole.System(), interrupt).ConfigureAwait(false);
