using IdDisentangle.Faces;
using IdDisentangle.Inference;
using IdDisentangle.Video;
using Spectre.Console;
using Spectre.Console.Cli;

namespace IdDisentangle.Cli.Commands;

/// <summary><c>iddis video</c>: one identity swapped into every frame of a clip, pasted back, audio kept.</summary>
internal sealed class VideoCommand : Command<VideoCommand.Settings>
{
    public sealed class Settings : TrainedModelSettings
    {
        [CommandOption("--out <FILE>")]
        [HelpText("Output video (its extension picks the container: .mp4, .mov, .mkv, .webm)")]
        public string Out { get; init; } = "";

        [CommandOption("--color-match")]
        [HelpText("Before pasting back, move each generated face's mean colour under the mask to the frame face's")]
        public bool ColorMatch { get; init; }

        [CommandOption("--id <FILE>")]
        [HelpText("Identity image (a photo: its largest face is aligned)")]
        public string Id { get; init; } = "";

        [CommandOption("--video <FILE>")]
        [HelpText("Input video (anything FFmpeg reads); its audio is copied to the output")]
        public string Video { get; init; } = "";

        [CommandOption("--start <SECONDS>")]
        [HelpText("Process from this time on")]
        public double? Start { get; init; }

        [CommandOption("--duration <SECONDS>")]
        [HelpText("Process this many seconds (default: to the end)")]
        public double? Duration { get; init; }

        [CommandOption("--no-landmark-smoothing")]
        [HelpText("Align each frame at its own landmarks instead of One Euro-filtered ones (jitters more)")]
        public bool NoLandmarkSmoothing { get; init; }

        [CommandOption("--w-smoothing <WEIGHT>")]
        [HelpText("Weight of the previous frame's w in each frame's w, in [0, 1); 0 turns smoothing in W off")]
        public double WSmoothing { get; init; } = 0.5;

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Id) || string.IsNullOrWhiteSpace(Video) || string.IsNullOrWhiteSpace(Out))
                return ValidationResult.Error("--id, --video and --out are required");
            return base.Validate();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var options = new VideoSwapOptions
        {
            Input = s.Video,
            Output = s.Out,
            Start = s.Start,
            Duration = s.Duration,
            WSmoothing = s.WSmoothing,
            ColourMatch = s.ColorMatch,
            Tracking = new TrackingOptions { AllFaces = s.AllFaces, SmoothLandmarks = !s.NoLandmarkSmoothing },
        };
        // The clip and the options are checked before the model loads, so a bad file fails fast.
        var info = VideoSwapJob.Check(options);
        AnsiConsole.MarkupLine(
            $"video [blue]{Markup.Escape(s.Video)}[/]: {info.Width}x{info.Height}, {info.FramesPerSecond:0.###} fps, "
                + $"{info.FrameCount} frames, {info.Duration:F2} s, {(info.HasAudio ? "with" : "without")} audio"
        );
        var id = InferenceJobs.ReadImage(s.Id);
        using var model = s.Load();
        using var faces = new FaceInputs(
            model.Generator.Resolution,
            model.Device,
            InputAlignment.Align,
            s.AllFaces,
            s.ModelsDir,
            s.AlignmentLandmarks
        );
        var idFace =
            ModelSettings.Align(faces, [id], cancellation).FirstOrDefault()
            ?? throw new InvalidDataException($"{s.Id}: no face found (--id)");
        long expected = VideoSwapJob.ExpectedFrames(info, s.Start, s.Duration);
        var result = ConsoleProgress.Run(
            "swapping frames",
            expected,
            "frames",
            p => VideoSwapJob.Run(model, faces.Aligner(), idFace, options, n => p.Advance(n), cancellation, info)
        );
        string what =
            $"{result.Frames} frames ({result.FramesWithFaces} with a face) in {result.Seconds:F1} s, "
            + $"{result.Frames / Math.Max(result.Seconds, 1e-9):F2} frames/s";
        if (!result.Completed)
        {
            AnsiConsole.MarkupLine(
                $"[yellow]cancelled:[/] the frames done are in [blue]{Markup.Escape(result.Output)}[/] ({what})"
            );
            return 130;
        }
        AnsiConsole.MarkupLine($"wrote [blue]{Markup.Escape(result.Output)}[/]: {what}");
        return 0;
    }
}
