using System.Runtime.InteropServices;
using IdDisentangle.Imaging;
using IdDisentangle.IO;
using IdDisentangle.Runtime;
using Spectre.Console;
using Spectre.Console.Cli;

namespace IdDisentangle.Cli;

/// <summary>Runs the command app: Ctrl-C and SIGTERM cancel the command's token, and errors become one line.</summary>
internal static class CliHost
{
    public static async Task<int> RunAsync(CommandApp app, string[] args)
    {
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            // The first Ctrl-C asks the command to stop cleanly (checkpoint, consistent folder); a second one kills.
            if (!cts.IsCancellationRequested)
            {
                e.Cancel = true;
                cts.Cancel();
            }
        };
        Console.CancelKeyPress += onCancel;
        using var term = PosixSignalRegistration.Create(
            PosixSignal.SIGTERM,
            ctx =>
            {
                ctx.Cancel = true;
                cts.Cancel();
            }
        );
        try
        {
            // Spectre.Console.Cli rejects "--n" as an invalid long option without naming it.
            if (
                args.FirstOrDefault(a =>
                    a.Length == 3 && a.StartsWith("--", StringComparison.Ordinal) && char.IsLetter(a[2])
                ) is
                { } oneLetter
            )
            {
                AnsiConsole.MarkupLine(
                    $"[red]error:[/] {oneLetter}: one-letter options take one dash ({oneLetter[1..]})"
                );
                return 2;
            }
            return await app.RunAsync(args, cts.Token);
        }
        catch (Exception e) when (ToUserMessage(e) is { } message)
        {
            AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(message)}");
            return e is CommandParseException or CommandRuntimeException ? 2 : 1;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>The option that sets each setting the library reports by concept.</summary>
    static string Flag(Setting setting) =>
        setting switch
        {
            Setting.Device => "--device",
            Setting.Shard => "--shard",
            Setting.NumImages => "--num-images",
            Setting.BatchSize => "--batch-size",
            Setting.InterpolationSteps => "--steps",
            Setting.PixelLoss => "--pixel-loss",
            Setting.ReleaseFolder => "--release/--dir",
            Setting.ReleaseChoice => "--mapper-suffix",
            Setting.PackageFolder => "--from",
            Setting.Photos => "--photos",
            Setting.InputFolder => "--input-dir",
            Setting.OutputSize => "--output-size",
            Setting.VideoWindow => "--start/--duration",
            Setting.WSmoothing => "--w-smoothing",
            Setting.Precision => "--precision",
            _ => SettingException.Describe(setting),
        };

    /// <summary>A one-line message for failures a user can act on; null lets unexpected bugs show their
    /// stack.</summary>
    static string? ToUserMessage(Exception e) =>
        e switch
        {
            OperationCanceledException => "cancelled",
            CommandParseException or CommandRuntimeException => e.Message,
            SettingException setting => setting.MessageNaming(Flag(setting.Setting)),
            ImageDecodeException
            or NpyFormatException
            or FileNotFoundException
            or DirectoryNotFoundException
            or ArgumentException
            or InvalidDataException
            or UnauthorizedAccessException => e.Message,
            _ when Environment.GetEnvironmentVariable("IDDIS_DEBUG") == "1" => null,
            IOException => e.Message,
            _ => null,
        };
}
