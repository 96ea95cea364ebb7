IdDisentangle.Runtime.HugePages.RestartWithHugePagesIfUseful(args, IdDisentangle.Cli.CliApp.HeapUseOf(args));
return await IdDisentangle.Cli.CliApp.RunAsync(args);
