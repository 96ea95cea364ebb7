IdDisentangle.Runtime.HugePages.RestartWithHugePagesIfUseful(
    args,
    keepFreedMemory: IdDisentangle.Cli.CliApp.KeepsFreedMemory(args)
);
return await IdDisentangle.Cli.CliApp.RunAsync(args);
