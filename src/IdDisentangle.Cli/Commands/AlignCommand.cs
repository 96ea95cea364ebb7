using System.ComponentModel;
using IdDisentangle.Faces;
using IdDisentangle.Inference;
using IdDisentangle.Runtime;
using Spectre.Console;
using Spectre.Console.Cli;

namespace IdDisentangle.Cli.Commands;

/// <summary>iddis align: FFHQ-align a folder of photos once (see <see cref="AlignmentJob"/>).</summary>
internal sealed class AlignCommand : Command<AlignCommand.Settings>
{
    public sealed class Settings : FaceAlignmentSettings
    {
        [CommandOption("--input-dir <DIR>")]
        [HelpText("Folder of photos")]
        public string InputDir { get; init; } = "";

        [CommandOption("--out <DIR>")]
        [HelpText("Output folder: STEM.png per photo (STEM_face1.png, ... with --all-faces) and alignment.json")]
        public string Out { get; init; } = "";

        [CommandOption("--size <N>")]
        [HelpText(
            "Side of the aligned faces in pixels (default 1024, FFHQ's; use the generator's resolution to pass them to inference with --aligned)"
        )]
        public int Size { get; init; } = 1024;

        [CommandOption("--overwrite")]
        [HelpText(
            "Align photos again even when their output exists (default: pass over them, so an interrupted run resumes)"
        )]
        public bool Overwrite { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(InputDir))
                return ValidationResult.Error("--input-dir is required");
            if (string.IsNullOrWhiteSpace(Out))
                return ValidationResult.Error("--out is required");
            if (Size is < 16 or > 4096)
                return ValidationResult.Error($"--size {Size}: expected 16 to 4096");
            return base.Validate();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(s.Threads);
        var device = TorchRuntime.ResolveDevice(s.Device);
        var photos = Imaging.ImageFolder.List(s.InputDir).Images.Count;
        using var aligner = FaceAligner.Load(
            new ModelStore(s.ModelsDir),
            device,
            s.Size,
            s.AllFaces,
            s.AlignmentLandmarks
        );
        var summary = ConsoleProgress.Run(
            "aligning faces",
            photos,
            "photo",
            p =>
                AlignmentJob.Run(
                    aligner,
                    s.InputDir,
                    s.Out,
                    s.Overwrite,
                    ModelSettings.Log,
                    () => p.Advance(1),
                    cancellation
                )
        );
        AnsiConsole.MarkupLine(
            $"{summary.Faces} face(s) from {summary.Photos} photo(s) in [blue]{Markup.Escape(s.Out)}[/]"
                + $" ({summary.WithoutFace} without a face, {summary.AlreadyThere} already aligned, {summary.Unreadable} unreadable)"
        );
        return 0;
    }
}
