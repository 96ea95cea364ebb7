using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

public class FaceDetectionTests
{
    static string FaceApiModelDir => Path.Combine(TestModels.Store.Root, NpmWeights.FaceApi.StoreFolder, "model");

    static void RequireDetector() =>
        Skip.If(!NpmWeights.IsExtracted(TestModels.Store, NpmWeights.FaceApi) && !File.Exists(TestModels.Store.PathOf("faceapi-ssd")),
            $"face-api weights are not in the model store {TestModels.Store.Root}: run 'iddis models fetch' first (CI does)");

    /// <summary>
    /// Our SSD MobileNet v1 + landmark pipeline equals face-api.js's detectAllFaces().withFaceLandmarks() run in
    /// Node on the same pixels: the same faces, scores, boxes and landmarks.
    /// </summary>
    [SkippableFact]
    public void DetectionMatchesFaceApiJs()
    {
        RequireDetector();
        TfjsReference.Require();
        Skip.IfNot(NpmWeights.IsExtracted(TestModels.Store, NpmWeights.FaceApi), "the face-api package files are needed for face-api.js");
        using var scope = NewDisposeScope();
        var files = new[] { "photos-unaligned/multi_people.jpg", "photos-unaligned/DST_01.jpg", "photos-unaligned/specific2.png", "ffhq-real-256/00005.png" };
        var images = files.Select(f => ImageIO.Read(TestPaths.SharedFile(["data", .. f.Split('/')]))).ToList();
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
                double boxDiff = new[] { o.Box.X - box[0], o.Box.Y - box[1], o.Box.Width - box[2], o.Box.Height - box[3] }.Max(Math.Abs);
                // face-api.js cuts the face at the floored box but shifts the points back by the unfloored corner, a
                // sub-pixel offset we do not copy: our points sit at the crop's true origin.
                double sx = box[0] - Math.Floor(Math.Max(box[0], 0)), sy = box[1] - Math.Floor(Math.Max(box[1], 0));
                double lmDiff = Enumerable.Range(0, 68).Max(p => Math.Max(Math.Abs(o.Landmarks[p].X + sx - lm[p][0]), Math.Abs(o.Landmarks[p].Y + sy - lm[p][1])));
                Console.WriteLine($"  face {f}: score {o.Score:F5} vs {score:F5}, box diff {boxDiff:F4} px, landmarks diff {lmDiff:F4} px");
                Assert.True(Math.Abs(o.Score - score) < 1e-3, $"{files[i]} face {f}: score {o.Score} vs {score}");
                Assert.True(boxDiff < 0.5, $"{files[i]} face {f}: box differs by {boxDiff} px");
                Assert.True(lmDiff < 0.01, $"{files[i]} face {f}: landmarks differ by {lmDiff} px");
            }
        }
    }
}
