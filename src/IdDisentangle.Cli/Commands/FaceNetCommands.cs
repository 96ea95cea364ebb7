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
        public string Net { get; init; } = "faceapi";

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
        public string Net { get; init; } = "faceapi";

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
        using var net = PretrainedNetworks.Landmarks68(new ModelStore(s.ModelsDir));
        net.to(device);
        var (files, images) = CliCommon.ReadImages(s.Images);
        if (files.Count == 0)
        {
            AnsiConsole.MarkupLine("[red]error:[/] no readable image");
            return 1;
        }
        using var scope = torch.NewDisposeScope();
        using var _ = torch.inference_mode();
        var all = new List<Tensor>();
        using var detector = s.Detect
            ? FaceDetector.Load(
                new ModelStore(s.ModelsDir),
                device,
                dlibLandmarks: LandmarkNetwork.Parse(s.Net) == LandmarkNetwork.Dlib
            )
            : null;
        for (int i = 0; i < files.Count; i++)
        {
            var mapped = new float[2 * FaceLandmark68Net.Points];
            if (detector is not null)
            {
                var face = detector.Detect(images[i]).MaxBy(f => f.Box.Area);
                if (face is null)
                    AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(files[i])}: no face found; its points are NaN[/]");
                for (int k = 0; k < FaceLandmark68Net.Points; k++)
                    (mapped[2 * k], mapped[2 * k + 1]) = face is null
                        ? (float.NaN, float.NaN)
                        : ((float)face.Landmarks[k].X, (float)face.Landmarks[k].Y);
            }
            else
            {
                var input = SquareFit.Apply(images[i].unsqueeze(0), FaceLandmark68Net.InputSize, out var fit);
                var xy = net.forward(input.to(device) * 255).cpu()[0].data<float>().ToArray();
                for (int k = 0; k < xy.Length; k += 2)
                {
                    var (x, y) = fit.ToImage(xy[k], xy[k + 1]);
                    mapped[k] = (float)x;
                    mapped[k + 1] = (float)y;
                }
            }
            all.Add(torch.tensor(mapped).view(FaceLandmark68Net.Points, 2));
            if (s.Draw is not null)
            {
                string dest = Path.Combine(s.Draw, Path.GetFileNameWithoutExtension(files[i]) + "_landmarks.png");
                ImageIO.Write(dest, DrawPoints(images[i], mapped));
            }
        }
        Npy.Write(s.Out, torch.stack(all));
        AnsiConsole.MarkupLine(
            $"wrote landmarks of {files.Count} image(s) to [blue]{Markup.Escape(s.Out)}[/]"
                + (s.Draw is null ? "" : $" and drawings to [blue]{Markup.Escape(s.Draw)}[/]")
        );
        return 0;
    }

    static Tensor DrawPoints(Tensor image, float[] xy)
    {
        using var bmp = SkiaTensors.ToBitmap(image);
        using (var canvas = new SKCanvas(bmp))
        using (
            var paint = new SKPaint
            {
                Color = new SKColor(0, 230, 0),
                IsAntialias = true,
                Style = SKPaintStyle.Fill,
            }
        )
        {
            float r = Math.Max(1.5f, Math.Max(bmp.Width, bmp.Height) / 160f);
            for (int k = 0; k < xy.Length; k += 2)
                canvas.DrawCircle(xy[k], xy[k + 1], r, paint);
        }
        return SkiaTensors.FromBitmap(bmp);
    }
}
