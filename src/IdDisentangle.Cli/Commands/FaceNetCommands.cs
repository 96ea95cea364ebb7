using System.ComponentModel;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.IO;
using IdDisentangle.Models.FaceApi;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using SkiaSharp;
using Spectre.Console;
using Spectre.Console.Cli;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Cli.Commands;

/// <summary><c>iddis embed</c>: identity embeddings of face images, or the distance between two.</summary>
public sealed class EmbedCommand : Command<EmbedCommand.Settings>
{
    public sealed class Settings : ComputeSettings
    {
        [CommandArgument(0, "[IMAGES]")]
        [HelpText("Face images (cropped around the face)")]
        public string[] Images { get; init; } = [];

        [CommandOption("--net <NET>")]
        [HelpText("Identity network: faceapi (default; 128-D) or irse50 (512-D ArcFace, needs --weights model_ir_se50.pth)")]
        public string Net { get; init; } = "faceapi";

        [CommandOption("--weights <FILE>")]
        [HelpText("Weight file of --net irse50 (model_ir_se50.pth)")]
        public string? Weights { get; init; }

        [CommandOption("--out <FILE>")]
        [HelpText("Write the embeddings [N,D] as .npy")]
        public string? Out { get; init; }

        [CommandOption("--detect")]
        [HelpText("Find the face first (ordinary photos): face-api.js's detector and landmark-aligned box for faceapi, FFHQ alignment for irse50; a photo without a face gives a NaN row")]
        public bool Detect { get; init; }

        [CommandOption("--compare")]
        [HelpText("With two images: print their distance and the same/different verdict")]
        public bool Compare { get; init; }

        public override ValidationResult Validate()
        {
            if (Net is not ("faceapi" or "irse50")) return ValidationResult.Error($"--net {Net}: use faceapi or irse50");
            if (Net == "irse50" && Weights is null) return ValidationResult.Error("--net irse50 needs --weights FILE (model_ir_se50.pth)");
            if (Images.Length == 0) return ValidationResult.Error("give at least one image");
            if (Compare && Images.Length != 2) return ValidationResult.Error("--compare takes exactly two images");
            if (!Compare && Out is null) return ValidationResult.Error("--out FILE is required (or use --compare A B)");
            return ValidationResult.Success();
        }
    }

    /// <summary>face-api.js's FaceMatcher threshold: descriptors closer than this are the same person.</summary>
    public const double FaceApiThreshold = 0.6;

    /// <summary>Distance threshold between L2-normalised IR-SE50 embeddings (the default of TreB1eN's InsightFace_Pytorch face verification).</summary>
    public const double IrSe50Threshold = 1.54;

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(s.Threads);
        var device = TorchRuntime.ResolveDevice(s.Device);
        bool irse = s.Net == "irse50";
        using nn.Module<Tensor, Tensor> net = irse ? IrSe50Weights.Load(s.Weights!) : PretrainedNetworks.FaceRecognition(new ModelStore(s.ModelsDir));
        net.to(device);
        var (files, images) = CliCommon.ReadImages(s.Images);
        if (files.Count == 0) { AnsiConsole.MarkupLine("[red]error:[/] no readable image"); return 1; }
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        int size = irse ? Models.Identity.IrSe50.InputSize : FaceRecognitionNet.InputSize;
        Tensor e;
        if (s.Detect)
        {
            var store = new ModelStore(s.ModelsDir);
            // pSp's IR-SE50 saw faces aligned with dlib's landmarks: use them when the model is in the store.
            using var detector = FaceDetector.Load(store, device, dlibLandmarks: irse && File.Exists(store.PathOf("dlib-landmarks68")));
            var rows = new List<Tensor>();
            for (int i = 0; i < files.Count; i++)
            {
                var face = detector.Detect(images[i]).MaxBy(f => f.Box.Area);
                if (face is null)
                {
                    AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(files[i])}: no face found; its row is NaN[/]");
                    rows.Add(torch.full(1, irse ? Models.Identity.IrSe50.EmbeddingSize : FaceRecognitionNet.DescriptorSize, double.NaN));
                    continue;
                }
                var input = irse
                    ? Models.Identity.IrSe50.Prepare(FfhqAlignment.Align(images[i], face.Landmarks, 256, out _, detector.AlignmentCentreShift).unsqueeze(0), FaceCrop.FfhqArcFace)
                    : FaceDetector.CutFace((images[i] * 255f).round(), FaceDetector.RecognitionBox(face.Landmarks, (int)images[i].shape[2], (int)images[i].shape[1]), size, out _);
                rows.Add(net.call(input.to(device)).cpu());
            }
            e = torch.cat(rows, 0);
        }
        else
        {
            var batch = torch.cat(images.Select(i => SquareFit.Apply(i.unsqueeze(0), size, out var _)).ToArray(), 0).to(device);
            // face-api takes RGB 0..255; IR-SE50 takes [-1, 1].
            e = net.call(irse ? batch * 2 - 1 : batch * 255).cpu();
        }
        if (s.Compare)
        {
            if (files.Count != 2) { AnsiConsole.MarkupLine("[red]error:[/] --compare needs two readable images"); return 1; }
            double d = (e[0] - e[1]).norm().item<float>();
            double threshold = irse ? IrSe50Threshold : FaceApiThreshold;
            bool same = d < threshold;
            AnsiConsole.MarkupLine($"distance {d:F4} (threshold {threshold}): {(same ? "[green]same person[/]" : "[yellow]different people[/]")}");
        }
        if (s.Out is not null)
        {
            Npy.Write(s.Out, e);
            AnsiConsole.MarkupLine($"wrote {files.Count} embedding(s) [[{e.shape[0]},{e.shape[1]}]] to [blue]{Markup.Escape(s.Out)}[/]");
        }
        return 0;
    }
}

/// <summary><c>iddis landmarks</c>: 68 facial landmarks per image, in the image's pixel coordinates.</summary>
public sealed class LandmarksCommand : Command<LandmarksCommand.Settings>
{
    public sealed class Settings : ComputeSettings
    {
        [CommandArgument(0, "<IMAGES>")]
        [HelpText("Face images (cropped around the face)")]
        public string[] Images { get; init; } = [];

        [CommandOption("--net <NET>")]
        [HelpText("Landmark model: faceapi (default; face-api.js's net, also what the landmark loss uses) or dlib (dlib's 68-point shape predictor, the points FFHQ was aligned with; needs --detect)")]
        public string Net { get; init; } = "faceapi";

        [CommandOption("--out <FILE>")]
        [HelpText("Write the landmarks [N,68,2] (x, y in image pixels) as .npy")]
        public string Out { get; init; } = "";

        [CommandOption("--detect")]
        [HelpText("Find the face first (ordinary photos), as face-api.js's detectAllFaces().withFaceLandmarks(): the largest face; a photo without a face gives NaN points")]
        public bool Detect { get; init; }

        [CommandOption("--draw <DIR>")]
        [HelpText("Also write each image with its points drawn, as DIR/STEM_landmarks.png")]
        public string? Draw { get; init; }

        public override ValidationResult Validate()
        {
            if (Net is not ("faceapi" or "dlib")) return ValidationResult.Error($"--net {Net}: expected faceapi or dlib");
            if (Net == "dlib" && !Detect) return ValidationResult.Error("--net dlib needs --detect (dlib's predictor starts from a detected face)");
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out FILE is required");
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
        if (files.Count == 0) { AnsiConsole.MarkupLine("[red]error:[/] no readable image"); return 1; }
        using var scope = torch.NewDisposeScope();
        using var _ = torch.inference_mode();
        var all = new List<Tensor>();
        using var detector = s.Detect ? FaceDetector.Load(new ModelStore(s.ModelsDir), device, dlibLandmarks: s.Net == "dlib") : null;
        for (int i = 0; i < files.Count; i++)
        {
            var mapped = new float[2 * FaceLandmark68Net.Points];
            if (detector is not null)
            {
                var face = detector.Detect(images[i]).MaxBy(f => f.Box.Area);
                if (face is null) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(files[i])}: no face found; its points are NaN[/]");
                for (int k = 0; k < FaceLandmark68Net.Points; k++)
                    (mapped[2 * k], mapped[2 * k + 1]) = face is null ? (float.NaN, float.NaN) : ((float)face.Landmarks[k].X, (float)face.Landmarks[k].Y);
            }
            else
            {
                var input = SquareFit.Apply(images[i].unsqueeze(0), FaceLandmark68Net.InputSize, out var fit);
                var xy = net.forward(input.to(device) * 255).cpu()[0].data<float>().ToArray();
                for (int k = 0; k < xy.Length; k += 2)
                {
                    var (x, y) = fit.ToImage(xy[k], xy[k + 1]);
                    mapped[k] = (float)x; mapped[k + 1] = (float)y;
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
        AnsiConsole.MarkupLine($"wrote landmarks of {files.Count} image(s) to [blue]{Markup.Escape(s.Out)}[/]" +
                               (s.Draw is null ? "" : $" and drawings to [blue]{Markup.Escape(s.Draw)}[/]"));
        return 0;
    }

    static Tensor DrawPoints(Tensor image, float[] xy)
    {
        using var bmp = SkiaTensors.ToBitmap(image);
        using (var canvas = new SKCanvas(bmp))
        using (var paint = new SKPaint { Color = new SKColor(0, 230, 0), IsAntialias = true, Style = SKPaintStyle.Fill })
        {
            float r = Math.Max(1.5f, Math.Max(bmp.Width, bmp.Height) / 160f);
            for (int k = 0; k < xy.Length; k += 2) canvas.DrawCircle(xy[k], xy[k + 1], r, paint);
        }
        return SkiaTensors.FromBitmap(bmp);
    }
}
