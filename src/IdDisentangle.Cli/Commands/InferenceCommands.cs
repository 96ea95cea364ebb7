using System.ComponentModel;
using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.Networks;
using IdDisentangle.Runs;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using Spectre.Console;
using Spectre.Console.Cli;
using TorchSharp;

namespace IdDisentangle.Cli.Commands;

/// <summary>Options of every command that FFHQ-aligns real photos.</summary>
internal class FaceAlignmentSettings : ComputeSettings
{
    [CommandOption("--all-faces")]
    [HelpText("Align every face of a photo (STEM_face1, STEM_face2, ... by size) instead of only the largest")]
    public bool AllFaces { get; init; }

    [CommandOption("--landmarks <MODEL>")]
    [HelpText(
        "Landmarks that place the alignment: dlib (default; the model FFHQ was aligned with, non-commercial license) or face-api (MIT, about 2 px less precise at 256)"
    )]
    public string Landmarks { get; init; } = "dlib";

    public AlignmentLandmarks AlignmentLandmarks => LandmarkNetwork.Parse(Landmarks).Alignment;

    public override ValidationResult Validate() =>
        CliCommon.CheckChoice("--landmarks", Landmarks, () => LandmarkNetwork.Parse(Landmarks))
        ?? ValidationResult.Success();
}

/// <summary>Options of every command that runs a trained model.</summary>
/// <summary>Options of every command that loads a trained model (a run or the paper's release).</summary>
internal class TrainedModelSettings : FaceAlignmentSettings
{
    [CommandOption("--run <DIR>")]
    [HelpText("Training run folder (results/NAME); its config.json names the generator and encoders")]
    public string Run { get; init; } = "";

    [CommandOption("--release <DIR>")]
    [HelpText(
        "Instead of --run: a folder with the paper's released checkpoint (imported on first use, as iddis import-release does)"
    )]
    public string? Release { get; init; }

    [CommandOption("--checkpoint <NAME>")]
    [HelpText("best_id (default when present), best_lnd or last")]
    public string? Checkpoint { get; init; }

    [CommandOption("--generator <FILE>")]
    [HelpText("Use this generator instead of the run's")]
    public string? Generator { get; init; }

    [CommandOption("--precision <TYPE>")]
    [HelpText(PrecisionHelp.Text)]
    public string Precision { get; init; } = "fp32";

    public override ValidationResult Validate()
    {
        if (base.Validate() is { Successful: false } alignment)
            return alignment;
        if (string.IsNullOrWhiteSpace(Run) == string.IsNullOrWhiteSpace(Release))
            return ValidationResult.Error("give either --run DIR or --release DIR");
        return PrecisionHelp.Check(Precision) ?? ValidationResult.Success();
    }

    public DisentanglementModel Load()
    {
        TorchRuntime.SetThreads(Threads);
        string run = string.IsNullOrWhiteSpace(Release)
            ? Run
            : PaperRelease.ImportCached(Release, new ModelStore(ModelsDir), ModelSettings.Log);
        string? generator = Generator is null ? null : CliCommon.GeneratorPath(Generator, ModelsDir);
        var model = DisentanglementModel.FromRun(run, Checkpoint, generator, ModelsDir, Device);
        PrecisionHelp.Apply(Precision, model.Generator);
        int r = model.Generator.Resolution;
        AnsiConsole.MarkupLine(
            $"model [blue]{Markup.Escape(string.IsNullOrWhiteSpace(Release) ? Run : Release)}[/] "
                + $"({model.Checkpoint}), {r}x{r}, on {model.Device}"
        );
        return model;
    }
}

/// <summary>Options of every command that runs a trained model over inputs and writes outputs.</summary>
internal class ModelSettings : TrainedModelSettings
{
    [CommandOption("--crop-only")]
    [HelpText(
        "Write the generated aligned faces only; by default a result whose attribute image is a photo is pasted back into that photo"
    )]
    public bool CropOnly { get; init; }

    [CommandOption("--color-match")]
    [HelpText(
        "Before pasting back, move the generated face's mean colour under the mask to the photo face's (a less visible seam, a slightly weaker identity; see bench/README.md)"
    )]
    public bool ColorMatch { get; init; }

    [CommandOption("--batch-size <B>")]
    [HelpText("Pairs rendered at once")]
    public int BatchSize { get; init; } = 8;

    [CommandOption("--out <PATH>")]
    [HelpText("Output folder (or file for swap); existing folders are kept, inputs never overwritten")]
    public string Out { get; init; } = "";

    [CommandOption("--no-align")]
    [HelpText("Do not detect and align faces: every input is only resized to the generator's resolution")]
    public bool NoAlign { get; init; }

    [CommandOption("--aligned")]
    [HelpText(
        "Inputs already at the generator's resolution are FFHQ-aligned (generated faces, FFHQ crops): use them as they are; others are still aligned"
    )]
    public bool Aligned { get; init; }

    public override ValidationResult Validate()
    {
        if (base.Validate() is { Successful: false } model)
            return model;
        if (string.IsNullOrWhiteSpace(Out))
            return ValidationResult.Error("--out is required");
        if (BatchSize <= 0)
            return ValidationResult.Error("--batch-size must be positive");
        return ValidationResult.Success();
    }

    public static void Log(string message) => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(message)}[/]");

    /// <summary>How this command turns inputs into the generator's input (alignment per --no-align, --aligned,
    /// --all-faces).</summary>
    public FaceInputs Faces(DisentanglementModel model) =>
        new(
            model.Generator.Resolution,
            model.Device,
            NoAlign ? InputAlignment.None
                : Aligned ? InputAlignment.TrustAlignedAtResolution
                : InputAlignment.Align,
            AllFaces,
            ModelsDir,
            AlignmentLandmarks
        );

    /// <summary>The faces of <paramref name="images"/>, with a progress bar while faces are detected.</summary>
    public static List<InputImage> Align(
        FaceInputs faces,
        IReadOnlyList<InputImage> images,
        CancellationToken cancellation
    )
    {
        int toAlign = faces.CountToAlign(images);
        if (toAlign == 0)
            return faces.Align(images, Log, cancellation: cancellation);
        List<InputImage> result = [];
        ConsoleProgress.Run(
            "aligning faces",
            toAlign,
            "image",
            p => result = faces.Align(images, Log, () => p.Advance(1), cancellation)
        );
        return result;
    }

    /// <summary>How results are written: pasted back into their attribute photo unless --crop-only.</summary>
    public Func<InputImage, TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>? Output(FaceInputs faces) =>
        CropOnly ? null : InferenceJobs.PasteBackInto(faces, ColorMatch);

    /// <summary>Fails when alignment left nothing of a folder (every photo without a face).</summary>
    public static List<InputImage> RequireFaces(List<InputImage> images, string dir) =>
        images.Count > 0 ? images : throw new InvalidDataException($"{dir}: no face found in any image");
}

/// <summary>Options of the commands that render pairs (grid, pairs, swap).</summary>
internal class PairSettings : ModelSettings
{
    [CommandOption("--reconstruct")]
    [HelpText(
        "First replace each input x by the model's reconstruction G(x, x). The paper's pair inference does not (it renders G(M(id, attr)) directly); its interpolation does it for generated inputs"
    )]
    public bool Reconstruct { get; init; }
}

/// <summary>A folder of identity images and a folder of attribute images.</summary>
internal class FolderPairSettings : PairSettings
{
    [CommandOption("--id-dir <DIR>")]
    [HelpText("Identity images")]
    public string IdDir { get; init; } = "";

    [CommandOption("--attr-dir <DIR>")]
    [HelpText("Attribute images (infer pairs: matched to identity images by file stem)")]
    public string AttrDir { get; init; } = "";

    public override ValidationResult Validate()
    {
        if (string.IsNullOrWhiteSpace(IdDir) || string.IsNullOrWhiteSpace(AttrDir))
            return ValidationResult.Error("--id-dir and --attr-dir are required");
        return base.Validate();
    }

    /// <summary>Both folders read (before the model loads, so a bad folder fails fast).</summary>
    public (List<InputImage> Ids, List<InputImage> Attrs) ReadInputs() =>
        (InferenceJobs.ReadFolder(IdDir, Log), InferenceJobs.ReadFolder(AttrDir, Log));

    /// <summary>Both folders' images turned into faces at the generator's resolution, with one detector for
    /// both.</summary>
    public (List<InputImage> Ids, List<InputImage> Attrs) AlignInputs(
        FaceInputs faces,
        List<InputImage> ids,
        List<InputImage> attrs,
        CancellationToken cancellation
    )
    {
        return (
            RequireFaces(Align(faces, ids, cancellation), IdDir),
            RequireFaces(Align(faces, attrs, cancellation), AttrDir)
        );
    }
}

internal sealed class InferGridCommand : Command<InferGridCommand.Settings>
{
    public sealed class Settings : FolderPairSettings { }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var (ids, attrs) = s.ReadInputs();
        using var model = s.Load();
        using var faces = s.Faces(model);
        (ids, attrs) = s.AlignInputs(faces, ids, attrs, cancellation);
        int n = 0;
        ConsoleProgress.Run(
            "identity swaps",
            ids.Count * attrs.Count,
            "pair",
            p =>
                n = InferenceJobs.Grid(
                    model,
                    ids,
                    attrs,
                    s.Out,
                    s.BatchSize,
                    s.Reconstruct,
                    k => p.Advance(k),
                    cancellation,
                    s.Output(faces)
                )
        );
        AnsiConsole.MarkupLine($"{n} result(s) and grid.png in [blue]{Markup.Escape(s.Out)}[/]");
        return 0;
    }
}

internal sealed class InferPairsCommand : Command<InferPairsCommand.Settings>
{
    public sealed class Settings : FolderPairSettings { }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var (ids, attrs) = s.ReadInputs();
        using var model = s.Load();
        using var faces = s.Faces(model);
        (ids, attrs) = s.AlignInputs(faces, ids, attrs, cancellation);
        (int, IReadOnlyList<string>) result = default;
        ConsoleProgress.Run(
            "pairs",
            ids.Count,
            "pair",
            p =>
                result = InferenceJobs.Pairs(
                    model,
                    ids,
                    attrs,
                    s.Out,
                    s.BatchSize,
                    s.Reconstruct,
                    k => p.Advance(k),
                    cancellation,
                    s.Output(faces)
                )
        );
        foreach (var u in result.Item2 ?? [])
            AnsiConsole.MarkupLine($"[yellow]unmatched:[/] {Markup.Escape(u)}");
        AnsiConsole.MarkupLine($"{result.Item1} pair(s) in [blue]{Markup.Escape(s.Out)}[/]");
        return 0;
    }
}

internal sealed class InterpolateCommand : Command<InterpolateCommand.Settings>
{
    public sealed class Settings : ModelSettings
    {
        [CommandOption("--input-dir <DIR>")]
        [HelpText("A folder of subfolders, each with 1 'id' + 2 'attr' images or 2 'id' + 1 'attr'")]
        public string InputDir { get; init; } = "";

        [CommandOption("--steps <N>")]
        [HelpText("Frames, both end points included")]
        public int Steps { get; init; } = 9;

        [CommandOption("--no-loop-fake")]
        [HelpText(
            "Encode the inputs as they are; by default generated inputs are first replaced by their reconstruction G(x, x), as the paper's interpolation does (loop_fake)"
        )]
        public bool NoLoopFake { get; init; }

        [CommandOption("--real-id")]
        [HelpText("The identity images are real photos: never replaced by a reconstruction")]
        public bool RealId { get; init; }

        [CommandOption("--real-attr")]
        [HelpText("The attribute images are real photos: never replaced by a reconstruction")]
        public bool RealAttr { get; init; }

        [CommandOption("--space <SPACE>")]
        [HelpText(
            "w (default: linear in W, as the paper) or codes (linear in the concatenated identity and attribute codes, each frame mapped by M)"
        )]
        public string Space { get; init; } = "w";

        public InterpolationOptions Options =>
            new()
            {
                LoopFake = !NoLoopFake,
                RealId = RealId,
                RealAttr = RealAttr,
                Space = Space.ToLowerInvariant() switch
                {
                    "w" => InterpolationSpace.W,
                    "codes" or "z" => InterpolationSpace.Codes,
                    _ => throw new ArgumentException($"--space {Space}: expected w or codes"),
                },
            };

        public override ValidationResult Validate() =>
            Space.ToLowerInvariant() is "w" or "codes" or "z"
                ? base.Validate()
                : ValidationResult.Error($"--space {Space}: expected w or codes");
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var folders = InferenceJobs.InterpolationFolders(s.InputDir);
        using var model = s.Load();
        using var faces = s.Faces(model);
        int done = 0;
        ConsoleProgress.Run(
            "interpolations",
            folders.Count,
            "folder",
            p =>
                done = InferenceJobs.InterpolateFolders(
                    model,
                    faces,
                    folders,
                    s.Out,
                    s.Steps,
                    s.Options,
                    ModelSettings.Log,
                    () => p.Advance(1),
                    cancellation,
                    pasteBack: !s.CropOnly,
                    colourMatch: s.ColorMatch
                )
        );
        AnsiConsole.MarkupLine($"{done} interpolation(s) in [blue]{Markup.Escape(s.Out)}[/]");
        return done > 0 ? 0 : 1;
    }
}

internal sealed class SwapCommand : Command<SwapCommand.Settings>
{
    public sealed class Settings : PairSettings
    {
        [CommandOption("--id <FILE>")]
        [HelpText("Identity image")]
        public string Id { get; init; } = "";

        [CommandOption("--attr <FILE>")]
        [HelpText("Attribute image")]
        public string Attr { get; init; } = "";

        [CommandOption("--save-crops")]
        [HelpText(
            "Also write the aligned result, the paste-back mask and a picture of the steps beside --out (STEM_crop.png, STEM_mask.png, STEM_steps.png)"
        )]
        public bool SaveCrops { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        foreach (var input in new[] { s.Id, s.Attr })
            if (Path.GetFullPath(input) == Path.GetFullPath(s.Out))
                throw new IOException($"{s.Out}: refusing to overwrite an input image");
        var id = InferenceJobs.ReadImage(s.Id);
        var attr = InferenceJobs.ReadImage(s.Attr);
        using var model = s.Load();
        using var faces = s.Faces(model);
        var aligned = ModelSettings.Align(faces, [id, attr], cancellation);
        var idFace =
            aligned.FirstOrDefault(f => f.Path == id.Path)
            ?? throw new InvalidDataException($"{s.Id}: no face found (--id)");
        var attrFace =
            aligned.LastOrDefault(f => f.Path == attr.Path)
            ?? throw new InvalidDataException($"{s.Attr}: no face found (--attr)");
        if (s.AllFaces && !s.CropOnly && faces.PlacementOf(attrFace) is not null)
        {
            var every = aligned.Where(f => f.Path == attr.Path).ToList();
            ImageIO.Write(s.Out, InferenceJobs.SwapEveryFace(model, idFace, every, faces, s.Reconstruct, s.ColorMatch));
            AnsiConsole.MarkupLine(
                $"wrote [blue]{Markup.Escape(s.Out)}[/] ({every.Count} face(s) of the attribute photo swapped)"
            );
            return 0;
        }
        var swapped = InferenceJobs.Swap(model, idFace, attrFace, s.Reconstruct);
        var placement = faces.PlacementOf(attrFace);
        string stem = Path.Combine(
            Path.GetDirectoryName(Path.GetFullPath(s.Out))!,
            Path.GetFileNameWithoutExtension(s.Out)
        );
        if (placement is null || s.CropOnly)
            ImageIO.Write(s.Out, swapped);
        else
        {
            var (photo, mask) = InferenceJobs.PasteIntoPhoto(swapped, placement, colourMatch: s.ColorMatch);
            ImageIO.Write(s.Out, photo);
            if (s.SaveCrops)
            {
                ImageIO.Write(stem + "_mask.png", mask.expand(3, -1, -1));
                ImageIO.Write(
                    stem + "_steps.png",
                    PasteBack.Steps(placement.Photo.Image, attrFace.Image, swapped, mask, photo, placement.Face.Quad)
                );
            }
        }
        if (s.SaveCrops)
            ImageIO.Write(stem + "_crop.png", swapped);
        AnsiConsole.MarkupLine(
            $"wrote [blue]{Markup.Escape(s.Out)}[/]"
                + (
                    placement is not null && !s.CropOnly
                        ? " (the swapped face pasted back into the attribute photo)"
                        : ""
                )
        );
        return 0;
    }
}
