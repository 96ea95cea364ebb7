using System.ComponentModel;
using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.IO;
using IdDisentangle.Models.FaceApi;
using IdDisentangle.Networks;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using SkiaSharp;
using Spectre.Console;
using Spectre.Console.Cli;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Cli.Commands;

/// <summary><c>iddis embed</c>: identity embeddings of face images, or the distance between two.</summary>
internal sealed class EmbedCommand : Command<EmbedCommand.Settings>
{
    public sealed class Settings : ComputeSettings
    {
        [CommandArgument(0, "[IMAGES]")]
        [HelpText("Face images (cropped around the face)")]
        public string[] Images { get; init; } = [];

        [CommandOption("--net <NET>")]
        [HelpText(
            "Identity network: faceapi (default; 128-D), irse50 (512-D ArcFace, needs --weights model_ir_se50.pth) or vggface2 (the paper's, needs --weights vggface2.h5)"
        )]
        public string Net { get; init; } = IdentityNetwork.FaceApi.Name;

        [CommandOption("--weights <FILE>")]
        [HelpText("Weight file of --net irse50 (model_ir_se50.pth) or vggface2 (vggface2.h5)")]
        public string? Weights { get; init; }

        [CommandOption("--out <FILE>")]
        [HelpText("Write the embeddings [N,D] as .npy")]
        public string? Out { get; init; }

        [CommandOption("--detect")]
        [HelpText(
            "Find the face first (ordinary photos): face-api.js's detector and landmark-aligned box for faceapi, FFHQ alignment for irse50 and vggface2; a photo without a face gives a NaN row"
        )]
        public bool Detect { get; init; }

        [CommandOption("--compare")]
        [HelpText("With two images: print their distance and the same/different verdict")]
        public bool Compare { get; init; }

        public IdentityNetwork Network => IdentityNetwork.Parse(Net);

        public override ValidationResult Validate()
        {
            if (CliCommon.CheckChoice("--net", Net, () => IdentityNetwork.Parse(Net)) is { } bad)
                return bad;
            if (Network.WeightsFile is { } file && Weights is null)
                return ValidationResult.Error($"--net {Net} needs --weights FILE ({file})");
            if (Images.Length == 0)
                return ValidationResult.Error("give at least one image");
            if (Compare && Images.Length != 2)
                return ValidationResult.Error("--compare takes exactly two images");
            if (!Compare && Out is null)
                return ValidationResult.Error("--out FILE is required (or use --compare A B)");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(s.Threads);
        var device = TorchRuntime.ResolveDevice(s.Device);
        using var embedder = IdentityEmbedder.Load(s.Network, new ModelStore(s.ModelsDir), s.Weights, device, s.Detect);
        var (files, images) = CliCommon.ReadImages(s.Images);
        if (files.Count == 0)
        {
            AnsiConsole.MarkupLine("[red]error:[/] no readable image");
            return 1;
        }
        var inputs = files.Select((f, i) => new InputImage(f, Path.GetFileNameWithoutExtension(f), images[i])).ToList();
        using var e = embedder.Embed(inputs, m => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(m)}[/]"));
        if (s.Compare)
        {
            if (files.Count != 2)
            {
                AnsiConsole.MarkupLine("[red]error:[/] --compare needs two readable images");
                return 1;
            }
            double d = IdentityEmbedder.Distance(e[0], e[1]);
            string verdict = embedder.SamePerson(d) switch
            {
                true => "[green]same person[/]",
                false => "[yellow]different people[/]",
                null => "no established threshold for this network",
            };
            var threshold = embedder.Network.VerificationThreshold;
            AnsiConsole.MarkupLine(
                $"distance {d:F4} (threshold {(threshold is null ? "none" : threshold)}): {verdict}"
            );
        }
        if (s.Out is not null)
        {
            Npy.Write(s.Out, e);
            AnsiConsole.MarkupLine(
                $"wrote {files.Count} embedding(s) [[{e.shape[0]},{e.shape[1]}]] to [blue]{Markup.Escape(s.Out)}[/]"
            );
        }
        return 0;
    }
}

/// <summary><c>iddis landmarks</c>: 68 facial landmarks per image, in the image's pixel coordinates.</summary>
internal sealed class LandmarksCommand : Command<LandmarksCommand.Settings>
{
    public sealed class Settings : ComputeSettings
    {
        [CommandArgument(0, "<IMAGES>")]
        [HelpText("Face images (cropped around the face)")]
        public string[] Images { get; init; } = [];

        [CommandOption("--net <NET>")]
        [HelpText(
            "Landmark model: faceapi (default; face-api.js's net, also what the landmark loss uses) or dlib (dlib's 68-point shape predictor, the points FFHQ was aligned with; needs --detect)"
        )]
        public string Net { get; init; } = LandmarkNetwork.FaceApi.Name;

        [CommandOption("--out <FILE>")]
        [HelpText("Write the landmarks [N,68,2] (x, y in image pixels) as .npy")]
        public string Out { get; init; } = "";

        [CommandOption("--detect")]
        [HelpText(
            "Find the face first (ordinary photos), as face-api.js's detectAllFaces().withFaceLandmarks(): the largest face; a photo without a face gives NaN points"
        )]
        public bool Detect { get; init; }

        [CommandOption("--draw <DIR>")]
        [HelpText("Also write each image with its points drawn, as DIR/STEM_landmarks.png")]
        public string? Draw { get; init; }

        public override ValidationResult Validate()
        {
            if (CliCommon.CheckChoice("--net", Net, () => LandmarkNetwork.Parse(Net)) is { } bad)
                return bad;
            if (LandmarkNetwork.Parse(Net) == LandmarkNetwork.Dlib && !Detect)
                return ValidationResult.Error(
                    "--net dlib needs --detect (dlib's predictor starts from a detected face)"
                );
            if (string.IsNullOrWhiteSpace(Out))
                return ValidationResult.Error("--out FILE is required");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(s.Threads);
        var device = TorchRuntime.ResolveDevice(s.Device);
        using var locator = LandmarkLocator.Load(
            LandmarkNetwork.Parse(s.Net),
            s.Detect,
            new ModelStore(s.ModelsDir),
            device
        );
        var (files, images) = CliCommon.ReadImages(s.Images);
        if (files.Count == 0)
        {
            AnsiConsole.MarkupLine("[red]error:[/] no readable image");
            return 1;
        }
        var all = new List<Tensor>();
        for (int i = 0; i < files.Count; i++)
        {
            cancellation.ThrowIfCancellationRequested();
            var image = new InputImage(files[i], Path.GetFileNameWithoutExtension(files[i]), images[i]);
            all.Add(locator.Locate(image, m => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(m)}[/]")));
            if (s.Draw is not null)
                ImageIO.Write(
                    Path.Combine(s.Draw, image.Stem + "_landmarks.png"),
                    LandmarkLocator.Draw(images[i], all[^1])
                );
        }
        Npy.Write(s.Out, torch.stack(all));
        AnsiConsole.MarkupLine(
            $"wrote landmarks of {files.Count} image(s) to [blue]{Markup.Escape(s.Out)}[/]"
                + (s.Draw is null ? "" : $" and drawings to [blue]{Markup.Escape(s.Draw)}[/]")
        );
        return 0;
    }
}
