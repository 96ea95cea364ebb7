IdDisentangle.Runtime.HugePages.RestartWithHugePagesIfUseful(args);
return await IdDisentangle.Cli.CliApp.RunAsync(args);
