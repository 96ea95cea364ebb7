using IdDisentangle.Imaging;
using IdDisentangle.Models.Dlib;
using IdDisentangle.Models.FaceApi;
using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Faces;

/// <summary>A face box in image pixels.</summary>
internal readonly record struct FaceBox(double X, double Y, double Width, double Height)
{
    public double Area => Width * Height;
    public double Right => X + Width;
    public double Bottom => Y + Height;
}

/// <summary>A detected face: its box, the detector's score and the 68 landmarks in image pixels.</summary>
internal sealed record DetectedFace(FaceBox Box, double Score, IReadOnlyList<PixelPoint> Landmarks);

/// <summary>
/// face-api.js's detection pipeline with its own weights: SSD MobileNet v1 on the image zero-padded (bottom and
/// right) to a square and resized to 512, greedy non-maximum suppression, then the 68-point landmark net on each
/// box (cropped, zero-padded to a centred square, resized to 112). Resizing is TensorFlow's legacy bilinear, which
/// face-api.js applies to tensor inputs, so results match face-api.js run on the same pixels.
/// </summary>
internal sealed class FaceDetector : IDisposable
{
    readonly SsdMobilenetV1 _ssd;
    readonly FaceLandmark68Net _landmarks;

    public FaceDetector(SsdMobilenetV1 ssd, FaceLandmark68Net landmarks, Device device)
    {
        Device = device;
        _ssd = ssd.to(device);
        _landmarks = landmarks.to(device);
        _ssd.eval();
        _landmarks.eval();
    }

    /// <summary>
    /// face-api.js's detector and landmark net from the model store; with <paramref name="dlibLandmarks"/> also dlib's
    /// shape predictor (<see cref="DlibLandmarks"/>).
    /// </summary>
    public static FaceDetector Load(
        ModelStore store,
        Device device,
        bool dlibLandmarks = false,
        bool mirrorAveraging = false
    ) =>
        new(Weights.PretrainedNetworks.FaceDetector(store), Weights.PretrainedNetworks.Landmarks68(store), device)
        {
            MirrorAveraging = mirrorAveraging,
            DlibLandmarks = dlibLandmarks ? Weights.PretrainedNetworks.DlibLandmarks68(store) : null,
        };

    public Device Device { get; }

    /// <summary>Score a box needs to count as a face (face-api.js's default 0.5).</summary>
    public double MinConfidence { get; init; } = 0.5;

    public int MaxResults { get; init; } = 100;

    /// <summary>Boxes overlapping a better one by more than this intersection over union are dropped.</summary>
    public double IouThreshold { get; init; } = 0.5;

    /// <summary>
    /// Also run the landmark net on the mirrored crop and average the two (points renumbered left-right). Off by
    /// default, which matches face-api.js; alignment turns it on, for steadier eye and mouth positions.
    /// </summary>
    public bool MirrorAveraging { get; init; }

    /// <summary>
    /// dlib's 68-point shape predictor. When set, the landmarks <see cref="Detect"/> returns are dlib's (those the
    /// FFHQ data set was aligned with), placed by face-api.js's landmarks instead of dlib's own HOG detector.
    /// </summary>
    public ShapePredictor? DlibLandmarks { get; init; }

    /// <summary>
    /// The FFHQ square's centre shift (<see cref="FfhqAlignment.Align"/>) for the landmarks this detector returns:
    /// none for dlib's, which FFHQ used; <see cref="FfhqAlignment.FaceApiCentreShift"/> for face-api.js's.
    /// </summary>
    public double AlignmentCentreShift => DlibLandmarks is null ? FfhqAlignment.FaceApiCentreShift : 0;

    /// <summary>Faces in <paramref name="image"/> ([3,H,W], [0,1]) with their landmarks, best score first.</summary>
    public IReadOnlyList<DetectedFace> Detect(Tensor image)
    {
        CheckImage(image);
        using var scope = torch.NewDisposeScope();
        var pixels = To255(image);
        var boxes = DetectBoxes255(pixels);
        var landmarks = Landmarks255(pixels, boxes.Select(b => b.Box).ToList());
        if (DlibLandmarks is { } dlib && boxes.Count > 0)
        {
            var intensities = IntensityImage.FromRgbBytes(pixels);
            landmarks = landmarks.Select(seed => RefineWithDlib(dlib, intensities, seed)).ToList();
        }
        return boxes.Select((b, i) => new DetectedFace(b.Box, b.Score, landmarks[i])).ToList();
    }

    /// <summary>
    /// dlib's landmarks for a face located by other landmarks: the shape predictor runs in the box dlib's detector
    /// would typically give that face (<see cref="DlibDetectorBox"/>), once from the seed and once more from its
    /// own points, so the result depends on dlib's geometry rather than on the seed's.
    /// </summary>
    public static PixelPoint[] RefineWithDlib(ShapePredictor dlib, IntensityImage image, IReadOnlyList<PixelPoint> seed)
    {
        var first = dlib.Predict(image, DlibDetectorBox(seed));
        return dlib.Predict(image, DlibDetectorBox(first));
    }

    /// <summary>
    /// Where dlib's frontal face detector puts its box around a face with these 68 points. Its boxes come from a
    /// few pyramid scales, so around the same face they vary by about 7%; this is their mean relation, fitted on
    /// the 114 faces it finds in the shared photos (FFHQ, identities, unaligned photos; called as the FFHQ script
    /// calls it, one upsampling) with dlib's own landmarks: centre 0.050 s left of and 0.120 s above the points'
    /// centroid, side 2.79 s, where s is the points' RMS distance from their centroid.
    /// </summary>
    public static DlibRectangle DlibDetectorBox(IReadOnlyList<PixelPoint> points)
    {
        double cx = points.Average(p => p.X),
            cy = points.Average(p => p.Y);
        double s = Math.Sqrt(points.Average(p => (p.X - cx) * (p.X - cx) + (p.Y - cy) * (p.Y - cy)));
        double side = 2.79 * s;
        long left = (long)Math.Round(cx - 0.050 * s - side / 2),
            top = (long)Math.Round(cy - 0.120 * s - side / 2),
            extent = (long)Math.Round(side);
        return new DlibRectangle(left, top, left + extent, top + extent);
    }

    /// <summary>The detector alone: face boxes and scores, best first.</summary>
    public IReadOnlyList<(FaceBox Box, double Score)> DetectBoxes(Tensor image)
    {
        CheckImage(image);
        using var scope = torch.NewDisposeScope();
        return DetectBoxes255(To255(image));
    }

    IReadOnlyList<(FaceBox Box, double Score)> DetectBoxes255(Tensor pixels)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        int h = (int)pixels.shape[1],
            w = (int)pixels.shape[2],
            side = Math.Max(h, w);
        var x = pixels.unsqueeze(0);
        if (h != w)
            x = F.pad(x, [0, side - w, 0, side - h]);
        x = TfOps.ResizeBilinearLegacy(x, SsdMobilenetV1.InputSize, SsdMobilenetV1.InputSize);
        var (boxT, scoreT) = _ssd.forward(x);
        float[] raw = boxT[0].cpu().data<float>().ToArray();
        float[] scores = scoreT[0].cpu().data<float>().ToArray();

        // face-api.js maps the relative box through the rounded size the image had inside the 512 square.
        double scale = (double)SsdMobilenetV1.InputSize / side;
        double padX = SsdMobilenetV1.InputSize / Math.Round(w * scale),
            padY = SsdMobilenetV1.InputSize / Math.Round(h * scale);
        var result = new List<(FaceBox, double)>();
        foreach (int i in NonMaxSuppression(raw, scores))
        {
            double top = Math.Max(0, raw[4 * i]) * padY,
                bottom = Math.Min(1, raw[4 * i + 2]) * padY;
            double left = Math.Max(0, raw[4 * i + 1]) * padX,
                right = Math.Min(1, raw[4 * i + 3]) * padX;
            result.Add((new FaceBox(left * w, top * h, (right - left) * w, (bottom - top) * h), scores[i]));
        }
        return result;
    }

    /// <summary>The 68 landmarks of each box, in image pixels (averaged with the mirrored image's when <see
    /// cref="MirrorAveraging"/>).</summary>
    public IReadOnlyList<PixelPoint[]> Landmarks(Tensor image, IReadOnlyList<FaceBox> boxes)
    {
        CheckImage(image);
        using var scope = torch.NewDisposeScope();
        return Landmarks255(To255(image), boxes);
    }

    IReadOnlyList<PixelPoint[]> Landmarks255(Tensor pixels, IReadOnlyList<FaceBox> boxes)
    {
        if (boxes.Count == 0)
            return [];
        var direct = LandmarksOnce(pixels, boxes);
        if (!MirrorAveraging)
            return direct;
        int w = (int)pixels.shape[2];
        using var mirrored = pixels.flip(2);
        var flipped = LandmarksOnce(mirrored, boxes.Select(b => b with { X = w - b.Right }).ToList());
        return direct
            .Select(
                (pts, f) =>
                    pts.Select(
                            (p, i) =>
                            {
                                var q = flipped[f][MirrorIndex[i]];
                                // Pixel centres sit at integer coordinates: column x mirrors to w - 1 - x.
                                return new PixelPoint((p.X + (w - 1 - q.X)) / 2, (p.Y + q.Y) / 2);
                            }
                        )
                        .ToArray()
            )
            .ToList();
    }

    /// <summary>For each of the 68 points, its counterpart in the mirrored face (iBUG 300-W numbering).</summary>
    static readonly int[] MirrorIndex = BuildMirrorIndex();

    static int[] BuildMirrorIndex()
    {
        var m = new int[68];
        for (int i = 0; i < 17; i++)
            m[i] = 16 - i; // jaw
        for (int i = 17; i < 27; i++)
            m[i] = 43 - i; // eyebrows
        for (int i = 27; i < 31; i++)
            m[i] = i; // nose bridge
        for (int i = 31; i < 36; i++)
            m[i] = 66 - i; // nostrils
        int[] eye = [36, 37, 38, 39, 40, 41],
            otherEye = [45, 44, 43, 42, 47, 46];
        for (int i = 0; i < 6; i++)
            (m[eye[i]], m[otherEye[i]]) = (otherEye[i], eye[i]);
        for (int i = 0; i < 12; i++)
            m[48 + i] = 48 + (18 - i) % 12; // outer lip: 48<->54, 49<->53, 55<->59, ...
        for (int i = 0; i < 8; i++)
            m[60 + i] = 60 + (12 - i) % 8; // inner lip: 60<->64, 61<->63, 65<->67
        return m;
    }

    /// <summary>The landmark net on each box of an image already in 0..255 on the device.</summary>
    IReadOnlyList<PixelPoint[]> LandmarksOnce(Tensor pixels, IReadOnlyList<FaceBox> boxes)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        var crops = new List<Tensor>();
        var frames = new List<(int X, int Y, int W, int H)>();
        foreach (var b in boxes)
        {
            crops.Add(CutFace(pixels, b, FaceLandmark68Net.InputSize, out var frame));
            frames.Add(frame);
        }
        var points = _landmarks.forward(torch.cat(crops, 0)).cpu().to(ScalarType.Float64);
        var data = points.data<double>().ToArray();
        var result = new List<PixelPoint[]>();
        for (int f = 0; f < frames.Count; f++)
        {
            var (cx, cy, cw, ch) = frames[f];
            // Undo the centred padding and the resize (face-api.js's postprocessing), then shift into the image.
            double s = (double)FaceLandmark68Net.InputSize / Math.Max(cw, ch);
            double sw = cw * s,
                sh = ch * s;
            double px = sw < sh ? Math.Abs(sw - sh) / 2 : 0,
                py = sh < sw ? Math.Abs(sw - sh) / 2 : 0;
            var pts = new PixelPoint[FaceLandmark68Net.Points];
            for (int p = 0; p < pts.Length; p++)
            {
                double rx = (data[(f * pts.Length + p) * 2] - px) / sw,
                    ry = (data[(f * pts.Length + p) * 2 + 1] - py) / sh;
                pts[p] = new PixelPoint(cx + rx * cw, cy + ry * ch);
            }
            result.Add(pts);
        }
        return result;
    }

    /// <summary>
    /// Cuts <paramref name="box"/> out of <paramref name="image"/> ([3,H,W], any range) as face-api.js does for a
    /// network input: clipped to the image and floored, zero-padded to a centred square, resized (TensorFlow's
    /// legacy bilinear) to size x size. <paramref name="frame"/> is the pixel rectangle that was cut. Returns
    /// [1,3,size,size].
    /// </summary>
    public static Tensor CutFace(Tensor image, FaceBox box, int size, out (int X, int Y, int W, int H) frame)
    {
        int h = (int)image.shape[1],
            w = (int)image.shape[2];
        double x0 = Math.Max(box.X, 0),
            y0 = Math.Max(box.Y, 0);
        int cx = Math.Min((int)Math.Floor(x0), w - 1),
            cy = Math.Min((int)Math.Floor(y0), h - 1);
        int cw = Math.Max(1, Math.Min((int)Math.Floor(Math.Min(box.Right - x0, w - x0)), w - cx));
        int ch = Math.Max(1, Math.Min((int)Math.Floor(Math.Min(box.Bottom - y0, h - y0)), h - cy));
        var crop = image[.., cy..(cy + ch), cx..(cx + cw)].unsqueeze(0);
        int diff = Math.Abs(ch - cw),
            after = (int)Math.Round(diff * 0.5, MidpointRounding.AwayFromZero),
            before = diff - after;
        crop = ch > cw ? F.pad(crop, [before, after, 0, 0]) : F.pad(crop, [0, 0, before, after]);
        frame = (cx, cy, cw, ch);
        return TfOps.ResizeBilinearLegacy(crop, size, size);
    }

    /// <summary>
    /// The box face-api.js gives its recognition net (withFaceDescriptors, dlib-style): a square of side
    /// mean(eye-to-mouth distance) / 0.45 whose reference point, the mean of the two eye centres and the mouth
    /// centre, sits at 50% across and 43% down.
    /// </summary>
    public static FaceBox RecognitionBox(IReadOnlyList<PixelPoint> landmarks, int width, int height)
    {
        PixelPoint Centre(int from, int to) =>
            new(
                Enumerable.Range(from, to - from).Average(i => landmarks[i].X),
                Enumerable.Range(from, to - from).Average(i => landmarks[i].Y)
            );
        var (left, right, mouth) = (Centre(36, 42), Centre(42, 48), Centre(48, 68));
        double ToMouth(PixelPoint p) =>
            Math.Sqrt((mouth.X - p.X) * (mouth.X - p.X) + (mouth.Y - p.Y) * (mouth.Y - p.Y));
        int size = (int)Math.Floor((ToMouth(left) + ToMouth(right)) / 2 / 0.45);
        double rx = (left.X + right.X + mouth.X) / 3,
            ry = (left.Y + right.Y + mouth.Y) / 3;
        int x = (int)Math.Floor(Math.Max(0, rx - 0.5 * size)),
            y = (int)Math.Floor(Math.Max(0, ry - 0.43 * size));
        return new FaceBox(x, y, Math.Min(size, width + x), Math.Min(size, height + y));
    }

    /// <summary>face-api.js's suppression: candidates above the score threshold, best first, kept unless a kept box
    /// overlaps too much.</summary>
    IEnumerable<int> NonMaxSuppression(float[] boxes, float[] scores)
    {
        var candidates = Enumerable
            .Range(0, scores.Length)
            .Where(i => scores[i] > MinConfidence)
            .OrderByDescending(i => scores[i])
            .ThenBy(i => i)
            .ToList();
        var selected = new List<int>();
        foreach (int c in candidates)
        {
            if (selected.Count >= Math.Min(MaxResults, scores.Length))
                break;
            if (selected.All(s => Iou(boxes, c, s) <= IouThreshold))
                selected.Add(c);
        }
        return selected;
    }

    static double Iou(float[] b, int i, int j)
    {
        double Area(int k) =>
            (Math.Max(b[4 * k], b[4 * k + 2]) - Math.Min(b[4 * k], b[4 * k + 2]))
            * (Math.Max(b[4 * k + 1], b[4 * k + 3]) - Math.Min(b[4 * k + 1], b[4 * k + 3]));
        double ai = Area(i),
            aj = Area(j);
        if (ai <= 0 || aj <= 0)
            return 0;
        double ymin = Math.Max(Math.Min(b[4 * i], b[4 * i + 2]), Math.Min(b[4 * j], b[4 * j + 2]));
        double xmin = Math.Max(Math.Min(b[4 * i + 1], b[4 * i + 3]), Math.Min(b[4 * j + 1], b[4 * j + 3]));
        double ymax = Math.Min(Math.Max(b[4 * i], b[4 * i + 2]), Math.Max(b[4 * j], b[4 * j + 2]));
        double xmax = Math.Min(Math.Max(b[4 * i + 1], b[4 * i + 3]), Math.Max(b[4 * j + 1], b[4 * j + 3]));
        double inter = Math.Max(ymax - ymin, 0) * Math.Max(xmax - xmin, 0);
        return inter / (ai + aj - inter);
    }

    // The networks were trained on 8-bit pixels: round so a decoded image gives exactly its byte values.
    Tensor To255(Tensor image) => image.to(Device).to(ScalarType.Float32).Times(255f).round_();

    static void CheckImage(Tensor image)
    {
        if (image.dim() != 3 || image.shape[0] != 3)
            throw new ArgumentException($"expected an RGB image [3,H,W], got [{string.Join(",", image.shape)}]");
    }

    public void Dispose()
    {
        _ssd.Dispose();
        _landmarks.Dispose();
    }
}
