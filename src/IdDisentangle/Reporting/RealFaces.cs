using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.Networks;
using IdDisentangle.Runtime;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Reporting;

/// <summary>Same/different decisions over every pair of labelled faces at a distance threshold.</summary>
internal sealed record IdentityMatrix(
    IReadOnlyList<string> Labels,
    IReadOnlyList<string> People,
    double[,] Distances,
    double Threshold
)
{
    public IEnumerable<(int I, int J, bool Same, double Distance)> Pairs()
    {
        for (int i = 0; i < Labels.Count; i++)
        for (int j = i + 1; j < Labels.Count; j++)
            yield return (i, j, People[i] == People[j], Distances[i, j]);
    }

    /// <summary>The share of pairs whose decision (distance below the threshold: same person) is right.</summary>
    public double Accuracy => Pairs().Average(p => p.Same == p.Distance < Threshold ? 1.0 : 0.0);

    /// <summary>The largest distance between two photos of one person.</summary>
    public double SameMax => Pairs().Where(p => p.Same).Max(p => p.Distance);

    /// <summary>The smallest distance between photos of two people.</summary>
    public double DifferentMin => Pairs().Where(p => !p.Same).Min(p => p.Distance);
}

/// <summary>What the real-faces part of the demo found, with its pictures as PNG bytes.</summary>
internal sealed record RealFacesResult(
    IReadOnlyList<(string Name, byte[] Png, int Faces)> Annotated,
    byte[]? AlignedGrid,
    int AlignedFaces,
    IdentityMatrix Matrix,
    byte[] MatrixPng,
    RoundTrip? PasteBack
);

/// <summary>
/// A photo's aligned crops pasted back unmodified: the photo, the masks (the photo darkened outside them) and how
/// close the result is inside the masks.
/// </summary>
internal sealed record RoundTrip(
    string Name,
    byte[] ResultPng,
    byte[] MaskPng,
    double PsnrInside,
    bool OutsideIdentical
);

/// <summary>
/// The half of the pipeline that works on real faces without any generator: face detection and 68 landmarks drawn on
/// photos, their FFHQ-aligned crops, and a same/different identity matrix over labelled face photos (folders named
/// after the person) with face-api.js's descriptors at its verification threshold.
/// </summary>
internal static class RealFaces
{
    /// <summary>
    /// Runs on the photos of <paramref name="photoDirs"/> (detection and alignment; every face) and on the labelled
    /// faces of <paramref name="peopleDir"/> (PEOPLE/NAME/*.png, fitted whole into the recognition net's square).
    /// </summary>
    public static RealFacesResult Run(
        IReadOnlyList<string> photoDirs,
        string peopleDir,
        ModelStore store,
        Device device,
        Action<string> log,
        CancellationToken cancellation = default
    )
    {
        var annotated = new List<(string, byte[], int)>();
        var aligned = new List<Tensor>();
        RoundTrip? roundTrip = null;
        bool dlib = File.Exists(store.PathOf("dlib-landmarks68"));
        var landmarks = dlib ? AlignmentLandmarks.Dlib : AlignmentLandmarks.FaceApi;
        using (var aligner = FaceAligner.Load(store, device, 128, allFaces: true, landmarks))
        using (var detector = FaceDetector.Load(store, device, dlibLandmarks: dlib))
            foreach (var dir in photoDirs)
            foreach (var file in ImageFolder.List(dir).Images)
            {
                cancellation.ThrowIfCancellationRequested();
                using var scope = torch.NewDisposeScope();
                var image = ImageIO.Read(file);
                var faces = detector.Detect(image);
                annotated.Add((Path.GetFileName(file), ImageIO.Encode(Annotate(image, faces)), faces.Count));
                var alignedFaces = aligner.AlignFaces(
                    new InputImage(file, Path.GetFileNameWithoutExtension(file), image),
                    log
                );
                foreach (var face in alignedFaces)
                    aligned.Add(face.Face.Image.MoveToOuterDisposeScope());
                if (roundTrip is null && alignedFaces.Count > 1)
                    roundTrip = PasteBackRoundTrip(Path.GetFileName(file), image, alignedFaces);
            }
        byte[]? grid = null;
        if (aligned.Count > 0)
        {
            using var all = torch.stack(aligned);
            grid = ImageIO.Encode(ImageGrid.Compose(all, Math.Min(8, aligned.Count)));
            foreach (var a in aligned)
                a.Dispose();
        }
        var matrix = Identities(peopleDir, store, device, log);
        return new RealFacesResult(annotated, grid, aligned.Count, matrix, Heatmap(matrix), roundTrip);
    }

    /// <summary>Every aligned crop of a photo pasted back unmodified, with the masks used.</summary>
    static RoundTrip PasteBackRoundTrip(string name, Tensor photo, IReadOnlyList<AlignedFace> faces)
    {
        var result = photo;
        var covered = torch.zeros(1, photo.shape[1], photo.shape[2]);
        foreach (var face in faces)
        {
            int size = (int)face.Face.Image.shape[^1];
            var mask = PasteBack.FaceMask(face.Detection.Landmarks, face.Quad, size);
            result = PasteBack.Paste(result, face.Face.Image, face.Quad, mask);
            var alpha = PasteBack.Paste(torch.zeros_like(photo), torch.ones(3, size, size), face.Quad, mask);
            covered = torch.maximum(covered, alpha.narrow(0, 0, 1));
        }
        var inside = covered.GreaterThan(0.5).expand_as(photo);
        double mse = (result - photo).Squared().masked_select(inside).mean().ToDouble();
        var outside = covered.EqualTo(0).expand_as(photo);
        bool identical = result.masked_select(outside).eq(photo.masked_select(outside)).all().item<bool>();
        var shown = photo * covered.Times(0.75).Plus(0.25);
        return new RoundTrip(name, ImageIO.Encode(result), ImageIO.Encode(shown), 10 * Math.Log10(1 / mse), identical);
    }

    /// <summary>face-api.js descriptors of PEOPLE/NAME/*.png and their pairwise distances.</summary>
    public static IdentityMatrix Identities(string peopleDir, ModelStore store, Device device, Action<string> log)
    {
        var images = new List<InputImage>();
        var people = new List<string>();
        foreach (var person in Directory.GetDirectories(peopleDir).Order(StringComparer.Ordinal))
        foreach (var file in ImageFolder.List(person).Images)
        {
            images.Add(new InputImage(file, Path.GetFileNameWithoutExtension(file), ImageIO.Read(file)));
            people.Add(Path.GetFileName(person));
        }
        if (images.Count < 2)
            throw new SettingException(Setting.Photos, peopleDir, "fewer than two labelled face photos (NAME/*.png)");
        var network = IdentityNetwork.FaceApi;
        using var embedder = IdentityEmbedder.Load(network, store, null, device, detect: false);
        using var e = embedder.Embed(images, log);
        using var d = torch.cdist(e.unsqueeze(0), e.unsqueeze(0))[0].to(ScalarType.Float64);
        var distances = new double[images.Count, images.Count];
        var flat = d.data<double>().ToArray();
        for (int i = 0; i < images.Count; i++)
        for (int j = 0; j < images.Count; j++)
            distances[i, j] = flat[i * images.Count + j];
        foreach (var image in images)
            image.Image.Dispose();
        return new IdentityMatrix(
            images.Select(i => i.Stem).ToList(),
            people,
            distances,
            network.VerificationThreshold!.Value
        );
    }

    /// <summary>The photo with each detected face's box and 68 landmarks drawn.</summary>
    static Tensor Annotate(Tensor image, IReadOnlyList<DetectedFace> faces)
    {
        using var bmp = SkiaTensors.ToBitmap(image);
        using (var canvas = new SKCanvas(bmp))
        {
            float scale = Math.Max(bmp.Width, bmp.Height) / 600f;
            using var box = new SKPaint
            {
                Color = new SKColor(255, 200, 0),
                IsAntialias = true,
                Style = SKPaintStyle.Stroke,
                StrokeWidth = 2 * scale,
            };
            using var dot = new SKPaint
            {
                Color = new SKColor(0, 230, 0),
                IsAntialias = true,
                Style = SKPaintStyle.Fill,
            };
            foreach (var face in faces)
            {
                var b = face.Box;
                canvas.DrawRect((float)b.X, (float)b.Y, (float)b.Width, (float)b.Height, box);
                foreach (var p in face.Landmarks)
                    canvas.DrawCircle((float)p.X, (float)p.Y, 1.5f * scale, dot);
            }
        }
        return SkiaTensors.FromBitmap(bmp);
    }

    /// <summary>The distance matrix as a heatmap (ScottPlot), pairs within the threshold marked "same".</summary>
    static byte[] Heatmap(IdentityMatrix m)
    {
        int n = m.Labels.Count;
        var plot = new ScottPlot.Plot();
        // ScottPlot draws the heatmap's row 0 at the top, at y = n - 1.
        var heat = plot.Add.Heatmap(m.Distances);
        heat.Colormap = new ScottPlot.Colormaps.Viridis();
        plot.Add.ColorBar(heat).Label = "descriptor distance";
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j && m.Distances[i, j] < m.Threshold)
            {
                var t = plot.Add.Text("same", j, n - 1 - i);
                t.LabelFontSize = 9;
                t.LabelFontColor = ScottPlot.Colors.White;
                t.LabelAlignment = ScottPlot.Alignment.MiddleCenter;
            }
        var ticks = Enumerable.Range(0, n).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.SetTicks(ticks, m.Labels.ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
        plot.Axes.Bottom.TickLabelStyle.Alignment = ScottPlot.Alignment.MiddleLeft;
        plot.Axes.Bottom.MinimumSize = 90;
        plot.Axes.Left.SetTicks(ticks, m.Labels.Reverse().ToArray());
        plot.Title(
            $"face-api.js descriptor distances (same person below {m.Threshold}; accuracy {m.Accuracy * 100:F1}%)"
        );
        return plot.GetImageBytes(760, 760, ScottPlot.ImageFormat.Png);
    }
}
