using IdDisentangle.Imaging;
using IdDisentangle.Models;
using IdDisentangle.Weights;
using Spectre.Console;

namespace IdDisentangle.Cli;

/// <summary>Small pieces several commands share.</summary>
public static class CliCommon
{
    /// <summary>The generator file from the option, else $IDDIS_GENERATOR; a clear error when neither is set.</summary>
    public static string GeneratorPath(string? option)
    {
        string? path = !string.IsNullOrWhiteSpace(option) ? option : Environment.GetEnvironmentVariable("IDDIS_GENERATOR");
        if (string.IsNullOrWhiteSpace(path))
            throw new ArgumentException("--generator FILE is required (or set IDDIS_GENERATOR): a StyleGAN2 .pt in the rosinality layout");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such generator file (--generator)", path);
        return path;
    }

    /// <summary>Reads images, reporting each unreadable one by name and going on with the rest.</summary>
    public static (List<string> Files, List<TorchSharp.torch.Tensor> Images) ReadImages(IEnumerable<string> paths)
    {
        var files = new List<string>();
        var images = new List<TorchSharp.torch.Tensor>();
        foreach (var p in paths)
        {
            try
            {
                images.Add(ImageIO.Read(p));
                files.Add(p);
            }
            catch (ImageDecodeException e)
            {
                AnsiConsole.MarkupLine($"[yellow]skipped:[/] {Markup.Escape(e.Message)}");
            }
        }
        return (files, images);
    }

    public static void PrintGeneratorReport(GeneratorLoadReport report, IStyleGenerator g)
    {
        AnsiConsole.MarkupLine($"generator [blue]{Markup.Escape(report.File)}[/]: {report.Kind}, {Markup.Escape(report.Layout)}, " +
                               $"{g.Resolution}x{g.Resolution}, style_dim {g.StyleDim}, {g.NumLatents} style inputs");
        foreach (var note in report.Notes) AnsiConsole.MarkupLine($"[yellow]note:[/] {Markup.Escape(note)}");
    }
}
