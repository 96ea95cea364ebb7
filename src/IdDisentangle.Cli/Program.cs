IdDisentangle.Runtime.HugePages.RestartWithHugePagesIfUseful();
return await IdDisentangle.Cli.CliApp.RunAsync(args);
