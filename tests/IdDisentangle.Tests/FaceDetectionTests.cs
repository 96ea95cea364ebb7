using IdDisentangle.Bench;
using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

public class FaceDetectionTests
{
    static string FaceApiModelDir => Path.Combine(TestModels.Store.Root, NpmWeights.FaceApi.StoreFolder, "model");

    static void RequireDetector() =>
        Skip.If(
            !NpmWeights.IsExtracted(TestModels.Store, NpmWeights.FaceApi)
                && !File.Exists(TestModels.Store.PathOf("faceapi-ssd")),
            $"face-api weights are not in the model store {TestModels.Store.Root}: run 'iddis models fetch' first (CI does)"
        );

    /// <summary>
    /// Our SSD MobileNet v1 + landmark pipeline equals face-api.js's detectAllFaces().withFaceLandmarks() run in
    /// Node on the same pixels: the same faces, scores, boxes and landmarks.
    /// </summary>
    [SkippableFact]
    [Trait("Category", TestCategories.External)]
    public void DetectionMatchesFaceApiJs()
    {
        RequireDetector();
        TfjsReference.Require();
        Skip.IfNot(
            NpmWeights.IsExtracted(TestModels.Store, NpmWeights.FaceApi),
            "the face-api package files are needed for face-api.js"
        );
        using var scope = NewDisposeScope();
        var files = new[]
        {
            "photos-unaligned/multi_people.jpg",
            "photos-unaligned/DST_01.jpg",
            "photos-unaligned/specific2.png",
            "ffhq-real-256/00005.png",
        };
        var images = files.Select(f => ImageIO.Read(TestPaths.Data([.. f.Split('/')]))).ToList();
        var reference = TfjsReference.RunFaceApi(FaceApiModelDir, images);
        using var detector = FaceDetector.Load(TestModels.Store, CPU);
        for (int i = 0; i < files.Length; i++)
        {
            var ours = detector.Detect(images[i]);
            var theirs = reference[i];
            Console.WriteLine($"{files[i]}: ours {ours.Count} faces, face-api.js {theirs.Count}");
            Assert.Equal(theirs.Count, ours.Count);
            for (int f = 0; f < ours.Count; f++)
            {
                var (score, box, lm) = theirs[f];
                var o = ours[f];
                double boxDiff = new[]
                {
                    o.Box.X - box[0],
                    o.Box.Y - box[1],
                    o.Box.Width - box[2],
                    o.Box.Height - box[3],
                }.Max(Math.Abs);
                // face-api.js cuts the face at the floored box but shifts the points back by the unfloored corner, a
                // sub-pixel offset we do not copy: our points sit at the crop's true origin.
                double sx = box[0] - Math.Floor(Math.Max(box[0], 0)),
                    sy = box[1] - Math.Floor(Math.Max(box[1], 0));
                double lmDiff = Enumerable
                    .Range(0, 68)
                    .Max(p =>
                        Math.Max(Math.Abs(o.Landmarks[p].X + sx - lm[p][0]), Math.Abs(o.Landmarks[p].Y + sy - lm[p][1]))
                    );
                Console.WriteLine(
                    $"  face {f}: score {o.Score:F5} vs {score:F5}, box diff {boxDiff:F4} px, landmarks diff {lmDiff:F4} px"
                );
                Assert.True(Math.Abs(o.Score - score) < 1e-3, $"{files[i]} face {f}: score {o.Score} vs {score}");
                Assert.True(boxDiff < 0.5, $"{files[i]} face {f}: box differs by {boxDiff} px");
                Assert.True(lmDiff < 0.01, $"{files[i]} face {f}: landmarks differ by {lmDiff} px");
            }
        }
    }

    static void RequireDlib() =>
        Skip.If(
            !File.Exists(TestModels.Store.PathOf("dlib-landmarks68")),
            $"dlib's landmark model is not in the model store {TestModels.Store.Root}: run 'iddis models fetch' first (CI does)"
        );

    /// <summary>
    /// The FFHQ photos are already aligned, so aligning them again must leave the eyes where they were. For all 80
    /// photos, with dlib's landmarks (the model FFHQ was aligned with) placed by face-api.js's, two measures: where
    /// the input's eye centres land through the alignment transform (exactly where those pixels end up), and the eye
    /// centres found again on the result (adds the detection noise of a second, resampled image). Nothing is fitted
    /// to either: the recipe is NVIDIA's, the landmark model dlib's. Measured here: through the transform median
    /// 0.65 px, 90th percentile 1.67 px, 151/160 within 2 px; found again median 0.97 px, 90th percentile 2.26 px.
    /// The eyes beyond 2 px are faces dlib itself misjudges (glasses half hidden, a hand, strong profile): NVIDIA's
    /// own pipeline (dlib's HOG detector and the same predictor; the C++ reference) leaves more of them beyond 2 px
    /// through the transform, 18 of 160 (DlibTests.AlignmentKeepsTheEyesAsWellAsTheFfhqPipeline).
    /// </summary>
    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public void AligningFfhqImagesKeepsTheEyes()
    {
        RequireDetector();
        RequireDlib();
        using var scope = NewDisposeScope();
        using var detector = FaceDetector.Load(TestModels.Store, CPU, dlibLandmarks: true, mirrorAveraging: true);
        var files = Directory
            .GetFiles(TestPaths.Data("ffhq-real-256"), "*.png")
            .OrderBy(f => f, StringComparer.Ordinal)
            .ToList();
        var redetected = new List<(double Dx, double Dy, double Dist)>();
        var transformed = new List<double>();
        foreach (var file in files)
        {
            using var imageScope = NewDisposeScope();
            var image = ImageIO.Read(file);
            var before = detector.Detect(image).MaxBy(f => f.Box.Area);
            Assert.NotNull(before);
            var aligned = FfhqAlignment.Align(
                image,
                before.Landmarks,
                256,
                out var quad,
                detector.AlignmentCentreShift
            );
            Assert.Equal(new long[] { 3, 256, 256 }, aligned.shape);
            var after = detector.Detect(aligned).MaxBy(f => f.Box.Area);
            Assert.NotNull(after);
            foreach (int eye in new[] { 36, 42 })
            {
                var (p, q) = (EyeCentre(before.Landmarks, eye), EyeCentre(after.Landmarks, eye));
                redetected.Add((q.X - p.X, q.Y - p.Y, Dist(p, q)));
                transformed.Add(Dist(p, quad.ToOutput(p, 256)));
                if (Dist(p, q) > 2)
                    Console.WriteLine($"{Path.GetFileName(file)} eye {eye}: moved {Dist(p, q):F2} px");
            }
        }
        static string Summary(List<double> d) =>
            $"median {d[d.Count / 2]:F2} px, 90th percentile {d[(int)(d.Count * 0.9)]:F2} px, max {d[^1]:F2} px, within 2 px {d.Count(v => v < 2)}/{d.Count}";
        var dist = redetected.Select(s => s.Dist).Order().ToList();
        double biasX = redetected.Average(s => s.Dx),
            biasY = redetected.Average(s => s.Dy);
        Console.WriteLine(
            $"eye centres over {files.Count} images, found again on the result: {Summary(dist)}, mean offset ({biasX:F2}, {biasY:F2}) px"
        );
        Console.WriteLine($"through the alignment transform: {Summary(transformed.Order().ToList())}");
        var through = transformed.Order().ToList();
        Assert.True(
            through[through.Count / 2] < 1.0,
            $"median eye centre shift through the transform {through[through.Count / 2]:F2} px"
        );
        Assert.True(
            through[(int)(through.Count * 0.9)] < 2.0,
            $"90th percentile eye centre shift through the transform {through[(int)(through.Count * 0.9)]:F2} px"
        );
        Assert.True(dist[dist.Count / 2] < 1.25, $"median eye centre shift found again {dist[dist.Count / 2]:F2} px");
        Assert.True(
            dist[(int)(dist.Count * 0.9)] < 2.5,
            $"90th percentile eye centre shift found again {dist[(int)(dist.Count * 0.9)]:F2} px"
        );
        Assert.True(
            Math.Abs(biasX) < 0.75 && Math.Abs(biasY) < 0.75,
            $"alignment moves eyes by ({biasX:F2}, {biasY:F2}) px on average"
        );
    }

    /// <summary>
    /// face-api.js's landmarks alone (<c>--landmarks face-api</c>) keep the eyes less well: their points are not
    /// dlib's, and <see cref="FfhqAlignment.FaceApiCentreShift"/> (calibrated on the even-numbered half) only removes
    /// the mean offset. On the odd half, measured here: median 2.06 px, 90th percentile 5.0 px, 35 of 76 eyes
    /// within 2 px, mean offset (-0.1, 1.0) px.
    /// </summary>
    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public void AligningWithFaceApiLandmarksKeepsTheEyesRoughly()
    {
        RequireDetector();
        using var scope = NewDisposeScope();
        using var detector = FaceDetector.Load(TestModels.Store, CPU, mirrorAveraging: true);
        var files = Directory
            .GetFiles(TestPaths.Data("ffhq-real-256"), "*.png")
            .Where(f => int.Parse(Path.GetFileNameWithoutExtension(f)) % 2 == 1)
            .OrderBy(f => f, StringComparer.Ordinal)
            .ToList();
        var shifts = new List<(double Dx, double Dy, double Dist)>();
        foreach (var file in files)
        {
            using var imageScope = NewDisposeScope();
            var image = ImageIO.Read(file);
            var before = detector.Detect(image).MaxBy(f => f.Box.Area);
            Assert.NotNull(before);
            var aligned = FfhqAlignment.Align(image, before.Landmarks, 256, out _, FfhqAlignment.FaceApiCentreShift);
            var after = detector.Detect(aligned).MaxBy(f => f.Box.Area);
            Assert.NotNull(after);
            foreach (int eye in new[] { 36, 42 })
            {
                var (p, q) = (EyeCentre(before.Landmarks, eye), EyeCentre(after.Landmarks, eye));
                shifts.Add((q.X - p.X, q.Y - p.Y, Dist(p, q)));
            }
        }
        var d = shifts.Select(s => s.Dist).OrderBy(v => v).ToList();
        double median = d[d.Count / 2],
            p90 = d[(int)(d.Count * 0.9)],
            biasX = shifts.Average(s => s.Dx),
            biasY = shifts.Average(s => s.Dy);
        Console.WriteLine(
            $"face-api landmarks, eye centre shift over {files.Count} images: median {median:F2} px, 90th percentile {p90:F2} px, "
                + $"within 2 px {d.Count(v => v < 2)}/{d.Count}; mean offset ({biasX:F2}, {biasY:F2}) px"
        );
        Assert.True(median < 2.5, $"median eye centre shift {median:F2} px");
        Assert.True(p90 < 6.0, $"90th percentile eye centre shift {p90:F2} px");
        Assert.True(
            Math.Abs(biasX) < 1.5 && Math.Abs(biasY) < 1.5,
            $"alignment moves eyes by ({biasX:F2}, {biasY:F2}) px on average"
        );
    }

    /// <summary>
    /// The fixed crop the face-api nets see during training reproduces face-api.js on detected faces far better
    /// than pSp's crop, and no nearby square does clearly better (the full search: bench 'face-crop').
    /// </summary>
    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public void FfhqFaceApiCropAgreesWithDetectedFaces()
    {
        RequireDetector();
        using var scope = NewDisposeScope();
        var files = Directory
            .GetFiles(TestPaths.Data("ffhq-real-256"), "*.png")
            .OrderBy(f => f, StringComparer.Ordinal)
            .Take(24)
            .ToList();
        using var detector = FaceDetector.Load(TestModels.Store, CPU);
        using var recognition = PretrainedNetworks.FaceRecognition(TestModels.Store);
        using var landmarks = PretrainedNetworks.Landmarks68(TestModels.Store);
        var calibration = new FaceCropCalibration(
            detector,
            recognition,
            landmarks,
            files.Select(f => ImageIO.Read(f)).ToList()
        );
        var chosen = calibration.Score(FaceCrop.FfhqFaceApi);
        var psp = calibration.Score(FaceCrop.FfhqArcFace);
        Console.WriteLine($"chosen crop: {chosen}; pSp's crop: {psp}");
        Assert.True(
            chosen.DescriptorDistance < 0.25 && chosen.DescriptorDistance < psp.DescriptorDistance / 2,
            $"descriptors: {chosen} vs pSp {psp}"
        );
        Assert.True(chosen.LandmarkPx < 3.0 && chosen.LandmarkPx < psp.LandmarkPx, $"landmarks: {chosen} vs pSp {psp}");
        var c = FaceCrop.FfhqFaceApi;
        const double d = 8 / 256.0;
        foreach (
            var nearby in new[]
            {
                c with
                {
                    Left = c.Left - d,
                    Right = c.Right - d,
                },
                c with
                {
                    Left = c.Left + d,
                    Right = c.Right + d,
                },
                c with
                {
                    Top = c.Top - d,
                    Bottom = c.Bottom - d,
                },
                c with
                {
                    Top = c.Top + d,
                    Bottom = c.Bottom + d,
                },
                c with
                {
                    Left = c.Left - d / 2,
                    Top = c.Top - d / 2,
                    Right = c.Right + d / 2,
                    Bottom = c.Bottom + d / 2,
                },
                c with
                {
                    Left = c.Left + d / 2,
                    Top = c.Top + d / 2,
                    Right = c.Right - d / 2,
                    Bottom = c.Bottom - d / 2,
                },
            }
        )
        {
            var a = calibration.Score(nearby, landmarks: false);
            Assert.True(
                a.DescriptorDistance > chosen.DescriptorDistance - 0.01,
                $"{nearby} agrees better: {a.DescriptorDistance:F3} < {chosen.DescriptorDistance:F3}"
            );
        }
    }

    /// <summary>
    /// Our FFHQ alignment against the recipe as NVIDIA's script computes it with PIL and scipy
    /// (TestData/ffhq-align/ffhq_align_ref.py), on the same landmarks: a large photo (shrink path), faces of a group
    /// photo and an FFHQ image (padding paths). Resampling filters differ (PIL's Lanczos and 8-bit steps against
    /// antialiased bicubic in float), so the images agree to a small mean difference, not bit for bit: measured
    /// 0.0022-0.0026 mean (0.6/255), 99th percentile 0.009-0.014.
    /// </summary>
    [SkippableFact]
    [Trait("Category", TestCategories.External)]
    public void AlignmentMatchesTheFfhqScript()
    {
        RequireDetector();
        ExternalTools.RequirePython("python3-pil python3-scipy python3-numpy", "PIL", "scipy", "numpy");
        using var scope = NewDisposeScope();
        using var detector = FaceDetector.Load(TestModels.Store, CPU);
        string dir = TestPaths.NewTempDir();
        int n = 0;
        foreach (
            var (file, size) in new[]
            {
                ("photos-unaligned/DST_01.jpg", 256),
                ("photos-unaligned/multi_people.jpg", 128),
                ("ffhq-real-256/00004.png", 256),
            }
        )
        {
            string path = TestPaths.Data([.. file.Split('/')]);
            var image = ImageIO.Read(path);
            foreach (var face in detector.Detect(image))
            {
                string json = Path.Combine(dir, $"{n}.json"),
                    outFile = Path.Combine(dir, $"{n}.npy");
                File.WriteAllText(
                    json,
                    System.Text.Json.JsonSerializer.Serialize(face.Landmarks.Select(p => new[] { p.X, p.Y }))
                );
                var psi = new System.Diagnostics.ProcessStartInfo(
                    ExternalTools.Python,
                    [
                        TestPaths.TestData("ffhq-align", "ffhq_align_ref.py"),
                        path,
                        json,
                        outFile,
                        size.ToString(),
                        FfhqAlignment.FaceApiCentreShift.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ]
                )
                {
                    RedirectStandardError = true,
                };
                using (var p = System.Diagnostics.Process.Start(psi)!)
                {
                    string err = p.StandardError.ReadToEnd();
                    p.WaitForExit();
                    Assert.True(p.ExitCode == 0, err);
                }
                var ours = FfhqAlignment.Align(image, face.Landmarks, size, out _, FfhqAlignment.FaceApiCentreShift);
                var theirs = IdDisentangle.IO.Npy.Read(outFile);
                float mean = (ours - theirs).abs().mean().item<float>();
                var sorted = (ours - theirs).abs().flatten().sort().Values;
                float p99 = sorted[(long)(0.99 * sorted.shape[0])].item<float>();
                Console.WriteLine($"{file} face {n}: mean |diff| {mean:F4}, 99th percentile {p99:F4}");
                Assert.True(mean < 0.005f && p99 < 0.03f, $"{file}: mean |diff| {mean}, 99th percentile {p99}");
                n++;
            }
        }
        Assert.True(n >= 5);
    }

    static PixelPoint EyeCentre(IReadOnlyList<PixelPoint> lm, int first) =>
        new(Enumerable.Range(first, 6).Average(i => lm[i].X), Enumerable.Range(first, 6).Average(i => lm[i].Y));

    static double Dist(PixelPoint a, PixelPoint b) => Math.Sqrt((a.X - b.X) * (a.X - b.X) + (a.Y - b.Y) * (a.Y - b.Y));
}
