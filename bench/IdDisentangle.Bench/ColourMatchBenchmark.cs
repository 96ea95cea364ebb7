using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.Networks;
using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Bench;

/// <summary>
/// Does colour matching help paste-back? Real faces stand in for a perfect generator: the aligned face of FFHQ photo
/// A is pasted into photo B (through B's alignment square and mask), plain and colour-matched to B's face. Measured:
/// the colour difference where the face meets the photo (mean absolute difference to B's own pixels in the mask's
/// soft edge, 0.1 &lt; mask &lt; 0.9: what makes a seam visible), and how much of A's identity survives (face-api.js
/// descriptor distance of the pasted face to A's photo; 0.6 is face-api.js's same-person threshold).
/// </summary>
internal static class ColourMatchBenchmark
{
    static double Mean(IEnumerable<double> xs) => xs.Where(double.IsFinite).DefaultIfEmpty(double.NaN).Average();

    public static Dictionary<string, object> Run(Options o)
    {
        torch.set_num_threads(o.Threads);
        string dir = o.Images ?? Path.Combine(Suite.FindRepo(), "tests", "fixtures", "data", "ffhq-real-256");
        var files = ImageFolder.List(dir).Images.Take(o.Iters > 0 ? o.Iters : 24).ToList();
        var store = new ModelStore();
        using var aligner = FaceAligner.Load(store, CPU, 256);
        using var embedder = IdentityEmbedder.Load(IdentityNetwork.FaceApi, store, null, CPU, detect: true);
        var photos = files
            .Select(f => new InputImage(f, Path.GetFileNameWithoutExtension(f), ImageIO.Read(f)))
            .ToList();
        var faces = photos.Select(p => aligner.AlignFaces(p, _ => { }).FirstOrDefault()).ToList();
        var seams = (Plain: new List<double>(), Matched: new List<double>(), Mean: new List<double>());
        var ids = (
            Plain: new List<double>(),
            Matched: new List<double>(),
            Mean: new List<double>(),
            Photo: new List<double>()
        );
        for (int i = 0; i + 1 < photos.Count; i += 2)
        {
            if (faces[i] is not { } a || faces[i + 1] is not { } b)
                continue;
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.inference_mode();
            var mask = PasteBack.FaceMask(b.Detection.Landmarks, b.Quad, 256);
            var matched = PasteBack.MatchColours(a.Face.Image, b.Face.Image, mask);
            var meanOnly = PasteBack.MatchColours(a.Face.Image, b.Face.Image, mask, matchSpread: false);
            var edge = (mask > 0.1f).logical_and(mask < 0.9f).expand(3, -1, -1);
            double Seam(Tensor face) => (face - b.Face.Image).abs().masked_select(edge).mean().ToDouble();
            seams.Plain.Add(Seam(a.Face.Image));
            seams.Matched.Add(Seam(matched));
            seams.Mean.Add(Seam(meanOnly));
            var results = new[] { a.Face.Image, matched, meanOnly }
                .Select(f => new InputImage(
                    b.Face.Path,
                    "pasted",
                    PasteBack.Paste(photos[i + 1].Image, f, b.Quad, mask)
                ))
                .ToList();
            var e = embedder.Embed([photos[i], photos[i + 1], .. results], _ => { });
            if (Environment.GetEnvironmentVariable("IDDIS_BENCH_SAVE") is { } save)
                ImageIO.Write(
                    Path.Combine(save, $"pair{i:00}.png"),
                    ImageGrid.Compose(
                        [photos[i].Image, photos[i + 1].Image, results[0].Image, results[1].Image, results[2].Image],
                        1,
                        5
                    )
                );
            ids.Photo.Add(IdentityEmbedder.Distance(e[0], e[1]));
            ids.Plain.Add(IdentityEmbedder.Distance(e[0], e[2]));
            ids.Matched.Add(IdentityEmbedder.Distance(e[0], e[3]));
            ids.Mean.Add(IdentityEmbedder.Distance(e[0], e[4]));
        }
        return new()
        {
            ["pairs"] = seams.Plain.Count,
            ["seam_plain"] = Mean(seams.Plain),
            ["seam_matched"] = Mean(seams.Matched),
            ["seam_mean_only"] = Mean(seams.Mean),
            ["id_distance_plain"] = Mean(ids.Plain),
            ["id_distance_matched"] = Mean(ids.Matched),
            ["id_distance_mean_only"] = Mean(ids.Mean),
            ["id_distance_attribute_photo"] = Mean(ids.Photo),
            ["no_face_found_plain"] = ids.Plain.Count(d => !double.IsFinite(d)),
            ["no_face_found_matched"] = ids.Matched.Count(d => !double.IsFinite(d)),
            ["no_face_found_mean_only"] = ids.Mean.Count(d => !double.IsFinite(d)),
            ["same_person_plain"] = ids.Plain.Count(d => d < 0.6),
            ["same_person_matched"] = ids.Matched.Count(d => d < 0.6),
            ["same_person_mean_only"] = ids.Mean.Count(d => d < 0.6),
        };
    }
}
