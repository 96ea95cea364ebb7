using IdDisentangle.Cli.Commands;
using Spectre.Console.Cli;

namespace IdDisentangle.Cli;

/// <summary>The <c>iddis</c> command tree.</summary>
public static class CliApp
{
    public static CommandApp Build()
    {
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("iddis");
            config.PropagateExceptions();
            config.Settings.StrictParsing = true;
            config.Settings.CancellationExitCode = 130;
#if DEBUG
            config.ValidateExamples();
#endif
            config.AddCommand<DoctorCommand>("doctor")
                .WithDescription("Show TorchSharp/libtorch versions, threads, devices and which weight files are present")
                .WithExample("doctor")
                .WithExample("doctor", "--device", "cpu", "--models-dir", "/data/models");
        });
        return app;
    }

    public static Task<int> RunAsync(string[] args) => CliHost.RunAsync(Build(), args);
}
