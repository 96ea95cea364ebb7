using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using TorchSharp;

namespace IdDisentangle.Bench;

/// <summary>
/// Reproduces the choice of <see cref="FaceCrop.FfhqFaceApi"/>: on FFHQ-aligned photos, the square crop whose
/// face-api.js results agree best with face-api.js's pipeline on the detected faces.
/// </summary>
internal static class FaceCropSearch
{
    public static int Run(Options o)
    {
        torch.set_num_threads(o.Threads);
        string dir = o.Images ?? Path.Combine(Suite.FindRepo(), "tests", "fixtures", "data", "ffhq-real-256");
        var files = ImageFolder.List(dir).Images;
        Console.WriteLine($"{files.Count} images from {dir}");
        var store = new ModelStore();
        using var detector = FaceDetector.Load(store, torch.CPU);
        using var recognition = PretrainedNetworks.FaceRecognition(store);
        using var landmarks = PretrainedNetworks.Landmarks68(store);
        var calibration = new FaceCropCalibration(
            detector,
            recognition,
            landmarks,
            files.Select(f => ImageIO.Read(f)).ToList()
        );
        foreach (
            var (name, crop) in new[]
            {
                ("whole image", FaceCrop.None),
                ("pSp's ArcFace crop", FaceCrop.FfhqArcFace),
                ("FfhqFaceApi (chosen)", FaceCrop.FfhqFaceApi),
            }
        )
            Print(name, crop, calibration.Score(crop), (int)ImageIO.Read(files[0]).shape[2]);
        foreach (bool byLandmarks in new[] { false, true })
        {
            Console.WriteLine($"search by {(byLandmarks ? "landmark distance" : "descriptor distance")}:");
            var (crop, agreement) = calibration.Search(byLandmarks, line => Console.WriteLine("  " + line));
            Print("  best", crop, agreement, (int)ImageIO.Read(files[0]).shape[2]);
        }
        return 0;
    }

    static void Print(string name, FaceCrop crop, CropAgreement a, int size)
    {
        var (x0, y0, x1, y1) = crop.Box(size, size);
        Console.WriteLine(
            $"{name}: columns {x0}-{x1}, rows {y0}-{y1} of {size}: landmarks {a.LandmarkPx:F2} px, descriptor distance {a.DescriptorDistance:F3}"
        );
    }
}
