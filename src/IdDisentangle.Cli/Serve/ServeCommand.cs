using System.Net;
using IdDisentangle.Cli.Commands;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Spectre.Console;
using Spectre.Console.Cli;

namespace IdDisentangle.Cli.Serve;

/// <summary><c>iddis serve</c>: the model behind a local web page and HTTP API.</summary>
internal sealed class ServeCommand : AsyncCommand<ServeCommand.Settings>
{
    public sealed class Settings : TrainedModelSettings
    {
        [CommandOption("--host <ADDRESS>")]
        [HelpText("Address to listen on (default 127.0.0.1: this machine only)")]
        public string Host { get; init; } = "127.0.0.1";

        [CommandOption("--port <PORT>")]
        [HelpText("Port to listen on")]
        public int Port { get; init; } = 5080;

        [CommandOption("--max-upload-mb <MB>")]
        [HelpText("Largest request accepted, in MB")]
        public int MaxUploadMb { get; init; } = 20;

        [CommandOption("--max-queue <N>")]
        [HelpText("Requests that may wait while one is computed; more are answered 503")]
        public int MaxQueue { get; init; } = 8;

        public override ValidationResult Validate()
        {
            if (base.Validate() is { Successful: false } bad)
                return bad;
            if (!IPAddress.TryParse(Host, out _) && Host != "localhost")
                return ValidationResult.Error($"--host {Host}: not an IP address");
            if (Port is <= 0 or > 65535)
                return ValidationResult.Error($"--port {Port}: not a port number");
            if (MaxUploadMb <= 0 || MaxQueue < 0)
                return ValidationResult.Error("--max-upload-mb must be positive and --max-queue not negative");
            return ValidationResult.Success();
        }
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings s, CancellationToken cancellation)
    {
        bool loopback = s.Host == "localhost" || IPAddress.IsLoopback(IPAddress.Parse(s.Host));
        if (!loopback)
            AnsiConsole.MarkupLine(
                $"[yellow]warning:[/] listening on {Markup.Escape(s.Host)}: anyone who can reach this machine can "
                    + "upload photos to it"
            );
        var model = s.Load();
        using var service = new SwapService(model, s.MaxQueue, s.AlignmentLandmarks, s.ModelsDir);
        var limits = new ServeLimits
        {
            MaxUploadMb = s.MaxUploadMb,
            MaxQueue = s.MaxQueue,
            MaxPixels = s.MaxPixels ?? new ServeLimits().MaxPixels,
        };
        await using var app = SwapServer.Build(
            service,
            limits,
            line => AnsiConsole.WriteLine(line),
            b => b.WebHost.UseUrls($"http://{(s.Host.Contains(':') ? $"[{s.Host}]" : s.Host)}:{s.Port}")
        );
        await app.StartAsync(cancellation);
        AnsiConsole.MarkupLine(
            $"serving on [blue]http://{Markup.Escape(s.Host)}:{s.Port}/[/] (Ctrl-C stops; API: POST /api/swap, "
                + "/api/align, /api/interpolate; GET /healthz)"
        );
        try
        {
            await Task.Delay(Timeout.Infinite, cancellation);
        }
        catch (OperationCanceledException) { }
        await app.StopAsync(CancellationToken.None);
        return 0;
    }
}
