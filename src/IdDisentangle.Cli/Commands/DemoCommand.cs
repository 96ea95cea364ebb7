using System.ComponentModel;
using IdDisentangle.Reporting;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using Spectre.Console;
using Spectre.Console.Cli;

namespace IdDisentangle.Cli.Commands;

/// <summary><c>iddis demo</c>: the whole method end to end, with a report.</summary>
internal sealed class DemoCommand : Command<DemoCommand.Settings>
{
    public sealed class Settings : RenderSettings
    {
        [CommandOption("--generator <FILE>")]
        [HelpText("Pretrained generator; default: $IDDIS_GENERATOR, else an untrained 64-px StyleGAN2 (says so)")]
        public string? Generator { get; init; }

        [CommandOption("--steps <N>")]
        [HelpText("Training steps")]
        public long Steps { get; init; } = 150;

        [CommandOption("--images <N>")]
        [HelpText("Generated images (the last --test-images are held out)")]
        public int Images { get; init; } = 240;

        [CommandOption("--test-images <N>")]
        [HelpText("Held-out images for validation and the swap grid")]
        public int TestImages { get; init; } = 40;

        [CommandOption("--batch-size <B>")]
        [HelpText("Training batch size")]
        public int BatchSize { get; init; } = 6;

        [CommandOption("--attr-input-size <PX>")]
        [HelpText("Resolution of the attribute backbone (default: native 299; 149 with the untrained 64-px generator)")]
        public int AttrInputSize { get; init; }

        [CommandOption("--output-size <PX>")]
        [HelpText(
            "Resolution to work at (the generator's images area-downsampled); default: the generator's own up to 256, 256 above (NVIDIA's 1024 FFHQ models)"
        )]
        public int OutputSize { get; init; }

        [CommandOption("--photos <DIR>")]
        [HelpText("Also swap identities among these aligned face photos")]
        public string? Photos { get; init; }

        [CommandOption("--out <DIR>")]
        [HelpText("Demo folder")]
        public string Out { get; init; } = Path.Combine("results", "demo");

        [CommandOption("--fresh")]
        [HelpText("Start over instead of reusing what a previous run left")]
        public bool Fresh { get; init; }

        public override ValidationResult Validate()
        {
            if (base.Validate() is { Successful: false } precision)
                return precision;
            if (Steps <= 0 || BatchSize <= 0)
                return ValidationResult.Error("--steps and --batch-size must be positive");
            if (TestImages < 6 || Images - TestImages < 2)
                return ValidationResult.Error("--test-images must be at least 6 and leave at least 2 training images");
            return ValidationResult.Success();
        }
    }

    /// <summary>The real photos shipped with the tool (DemoPhotos beside it), or null when absent.</summary>
    static string? BundledPhotos()
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "DemoPhotos");
        return Directory.Exists(Path.Combine(dir, "people")) ? dir : null;
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        if (s.Fresh)
            Demo.Clear(s.Out);
        bool untrained = GeneratorFiles.Default(s.Generator) is null;
        if (untrained)
            AnsiConsole.MarkupLine($"[black on yellow] note [/] [yellow]{Markup.Escape(Demo.UntrainedDisclaimer)}[/]");
        var options = new DemoOptions
        {
            OutDir = s.Out,
            Generator = s.Generator,
            Steps = s.Steps,
            Images = s.Images,
            TestImages = s.TestImages,
            BatchSize = s.BatchSize,
            AttrInputSize = s.AttrInputSize,
            Photos = s.Photos,
            ModelsDir = s.ModelsDir,
            Device = s.Device,
            Threads = s.Threads,
            OutputSize = s.OutputSize,
            Precision = ComputePrecisions.Parse(s.Precision),
            RealFacesDir = BundledPhotos(),
            DescribeCommand = DemoCommandLines.Describe,
        };
        string report = "";
        IReadOnlyList<(string Title, string Anchor, string Summary)> sections = [];
        AnsiConsole
            .Progress()
            .AutoClear(false)
            .Columns(
                new TaskDescriptionColumn(),
                new ProgressBarColumn(),
                new PercentageColumn(),
                new ElapsedTimeColumn(),
                new RemainingTimeColumn()
            )
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                var demo = new Demo(
                    options,
                    msg => AnsiConsole.MarkupLine(Markup.Escape(msg)),
                    (stage, done, total) =>
                    {
                        if (!tasks.TryGetValue(stage, out var t))
                            tasks[stage] = t = ctx.AddTask(Markup.Escape(stage), maxValue: total);
                        t.Value = done;
                    }
                );
                report = demo.Run(cancellation);
                sections = demo.Sections;
            });
        foreach (var (title, anchor, summary) in sections)
            AnsiConsole.MarkupLine(
                $"{Markup.Escape(title)}: [blue]{Markup.Escape(report)}#{Markup.Escape(anchor)}[/] ({Markup.Escape(summary)})"
            );
        AnsiConsole.MarkupLine(
            $"[green]report:[/] [blue]{Markup.Escape(report)}[/] and [blue]{Markup.Escape(Demo.MarkdownReportPath(s.Out))}[/]"
        );
        return 0;
    }
}
