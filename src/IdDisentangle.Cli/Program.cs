return await IdDisentangle.Cli.CliApp.RunAsync(args);
