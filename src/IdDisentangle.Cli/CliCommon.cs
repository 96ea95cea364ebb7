using IdDisentangle.Imaging;
using IdDisentangle.Models;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using Spectre.Console;

namespace IdDisentangle.Cli;

/// <summary>Small pieces several commands share.</summary>
internal static class CliCommon
{
    /// <summary>
    /// The generator file from the option, else $IDDIS_GENERATOR: a file, or the name of a catalogue generator
    /// (fetched into the model store on first use); a clear error when neither is set.
    /// </summary>
    public static string GeneratorPath(string? option, string? modelsDir)
    {
        string given =
            GeneratorFiles.Default(option)
            ?? throw new ArgumentException(
                $"--generator FILE or NAME is required (or set {GeneratorFiles.EnvironmentVariable})"
            );
        try
        {
            return GeneratorCatalogue.Resolve(given, new ModelStore(modelsDir), Print);
        }
        catch (FileNotFoundException e) when (e is not ModelMissingException)
        {
            throw new FileNotFoundException($"--generator {e.Message}", e.FileName, e);
        }
    }

    static void Print(string message) => AnsiConsole.MarkupLine(Markup.Escape(message));

    /// <summary>An error naming <paramref name="option"/> when the registry refuses its value; null when it
    /// parses.</summary>
    public static Spectre.Console.ValidationResult? CheckChoice(string option, string value, Action parse)
    {
        try
        {
            parse();
            return null;
        }
        catch (Networks.NetworkChoiceException e)
        {
            return Spectre.Console.ValidationResult.Error(
                e.Choices.Count > 0
                    ? $"{option} {value}: expected {string.Join(", ", e.Choices.SkipLast(1))} or {e.Choices[^1]}"
                    : $"{option} {value}: {e.Message}"
            );
        }
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
        AnsiConsole.MarkupLine(
            $"generator [blue]{Markup.Escape(report.File)}[/]: {report.Kind}, {Markup.Escape(report.Layout)}, "
                + $"{g.Resolution}x{g.Resolution}, style_dim {g.StyleDim}, {g.NumLatents} style inputs"
        );
        foreach (var note in report.Notes)
            AnsiConsole.MarkupLine($"[yellow]note:[/] {Markup.Escape(note)}");
    }
}
