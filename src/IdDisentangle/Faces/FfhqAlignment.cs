using IdDisentangle.Imaging;
using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Faces;

/// <summary>
/// The oriented square a face was cut from: corners in the source image's pixels (upper-left, lower-left,
/// lower-right, upper-right of the output).
/// </summary>
internal sealed record AlignmentQuad(
    PixelPoint UpperLeft,
    PixelPoint LowerLeft,
    PixelPoint LowerRight,
    PixelPoint UpperRight
)
{
    /// <summary>Where a point of the source image lands in an output of <paramref name="size"/> pixels.</summary>
    public PixelPoint ToOutput(PixelPoint p, int size)
    {
        // The quad is a parallelogram: solve p = UL + u (UR - UL) + v (LL - UL) for (u, v) in [0,1].
        double ax = UpperRight.X - UpperLeft.X,
            ay = UpperRight.Y - UpperLeft.Y;
        double bx = LowerLeft.X - UpperLeft.X,
            by = LowerLeft.Y - UpperLeft.Y;
        double dx = p.X - UpperLeft.X,
            dy = p.Y - UpperLeft.Y;
        double det = ax * by - ay * bx;
        double u = (dx * by - dy * bx) / det,
            v = (ax * dy - ay * dx) / det;
        return new PixelPoint(u * size - 0.5, v * size - 0.5);
    }
}

/// <summary>
/// The FFHQ dataset's face alignment (NVIDIA's ffhq-dataset recreate script): an oriented square from the eye
/// and mouth positions of the 68 landmarks, the image shrunk when the face is much larger than the output,
/// cropped, reflect-padded with the padding blurred and faded to the median colour towards the border, then
/// resampled (4x supersampled bilinear, antialiased down) to the output size.
/// </summary>
internal static class FfhqAlignment
{
    const int Supersample = 4; // FFHQ transforms at 4096 for a 1024 output

    /// <summary>
    /// face-api.js's 68 points sit higher on a face than the dlib points FFHQ was aligned with, which would frame
    /// faces about 1.5% of the side too high. Moving the square's centre down by this fraction of its half side
    /// removes that: calibrated (mean) on the even-numbered half of the FFHQ photos in the shared data, checked on
    /// the odd half (see the alignment test).
    /// </summary>
    public const double FaceApiCentreShift = 0.012;

    /// <summary>The square NVIDIA's recipe cuts for these 68 landmarks (<paramref name="centreShift"/> as for <see
    /// cref="Align"/>).</summary>
    public static AlignmentQuad Quad(IReadOnlyList<PixelPoint> landmarks, double centreShift = 0)
    {
        if (landmarks.Count != 68)
            throw new ArgumentException($"FFHQ alignment needs the 68 landmarks, got {landmarks.Count}");
        var (eyeLeft, eyeRight) = (Mean(landmarks, 36, 42), Mean(landmarks, 42, 48));
        var eyeAvg = (eyeLeft + eyeRight) * 0.5;
        var eyeToEye = eyeRight - eyeLeft;
        var mouthAvg = (V(landmarks[48]) + V(landmarks[54])) * 0.5;
        var eyeToMouth = mouthAvg - eyeAvg;

        // The square's half-side vectors: x across the face (eye line tilted towards the eye-mouth normal), y down it.
        var x = eyeToEye - new Vec(-eyeToMouth.Y, eyeToMouth.X);
        x = x / x.Length * Math.Max(eyeToEye.Length * 2.0, eyeToMouth.Length * 1.8);
        var y = new Vec(-x.Y, x.X);
        var c = eyeAvg + eyeToMouth * 0.1 + y * centreShift;
        return new AlignmentQuad((c - x - y).P, (c - x + y).P, (c + x + y).P, (c + x - y).P);
    }

    /// <summary>
    /// Aligns the face whose 68 landmarks (image pixels) are given. <paramref name="image"/> is [3,H,W] in [0,1];
    /// the result is [3,size,size] in [0,1] on the same device. <paramref name="centreShift"/> moves the square
    /// down by that fraction of its half side (<see cref="FaceApiCentreShift"/> for face-api.js landmarks, 0 for
    /// dlib's).
    /// </summary>
    public static Tensor Align(
        Tensor image,
        IReadOnlyList<PixelPoint> landmarks,
        int size,
        out AlignmentQuad quad,
        double centreShift = 0
    )
    {
        quad = Quad(landmarks, centreShift);
        if (image.dim() != 3 || image.shape[0] != 3)
            throw new ArgumentException($"expected an image [3,H,W], got [{string.Join(",", image.shape)}]");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();

        Vec[] q = [V(quad.UpperLeft), V(quad.LowerLeft), V(quad.LowerRight), V(quad.UpperRight)];
        double qsize = (q[3] - q[0]).Length;

        var img = image.to(ScalarType.Float32);
        int h = (int)img.shape[1],
            w = (int)img.shape[2];

        // Shrink a face much larger than the output first, so the final resampling does not alias.
        int shrink = (int)Math.Floor(qsize / size * 0.5);
        if (shrink > 1)
        {
            int rw = (int)Math.Round((double)w / shrink, MidpointRounding.ToEven),
                rh = (int)Math.Round((double)h / shrink, MidpointRounding.ToEven);
            img = ImageOps.Resize(img, rh, rw, ResizeFilter.Bicubic);
            for (int i = 0; i < 4; i++)
                q[i] = q[i] / shrink;
            qsize /= shrink;
            (h, w) = (rh, rw);
        }

        // Crop to the quad plus a border.
        int border = Math.Max((int)Math.Round(qsize * 0.1, MidpointRounding.ToEven), 3);
        var (minX, minY, maxX, maxY) = Bounds(q);
        int c0 = Math.Max(minX - border, 0),
            c1 = Math.Max(minY - border, 0),
            c2 = Math.Min(maxX + border, w),
            c3 = Math.Min(maxY + border, h);
        if (c2 - c0 < w || c3 - c1 < h)
        {
            img = img[.., c1..c3, c0..c2];
            for (int i = 0; i < 4; i++)
                q[i] = q[i] - new Vec(c0, c1);
            (h, w) = (c3 - c1, c2 - c0);
        }

        // Pad where the quad leaves the image: reflected content, blurred and faded to the median colour outwards.
        (minX, minY, maxX, maxY) = Bounds(q);
        int[] pad =
        [
            Math.Max(-minX + border, 0),
            Math.Max(-minY + border, 0),
            Math.Max(maxX - w + border, 0),
            Math.Max(maxY - h + border, 0),
        ];
        if (pad.Max() > border - 4)
        {
            int least = (int)Math.Round(qsize * 0.3, MidpointRounding.ToEven);
            for (int i = 0; i < 4; i++)
                pad[i] = Math.Max(pad[i], least);
            img = ReflectPad(img, pad[0], pad[1], pad[2], pad[3]);
            (h, w) = ((int)img.shape[1], (int)img.shape[2]);
            var xs = KeptScalars.Arange(w, ScalarType.Float32, img.device).view(1, 1, w);
            var ys = KeptScalars.Arange(h, ScalarType.Float32, img.device).view(1, h, 1);
            var mask = torch.maximum(
                torch.minimum(xs.DividedBy(pad[0]), xs.SubtractedFrom(w - 1).DividedBy(pad[2])).SubtractedFrom(1f),
                torch.minimum(ys.DividedBy(pad[1]), ys.SubtractedFrom(h - 1).DividedBy(pad[3])).SubtractedFrom(1f)
            );
            img = img.Plus((GaussianBlur(img, qsize * 0.02) - img) * mask.Times(3f).Plus(1f).Clamp(0, 1));
            img = img.Plus((Median(img) - img) * mask.Clamp(0, 1));
            for (int i = 0; i < 4; i++)
                q[i] = q[i] + new Vec(pad[0], pad[1]);
        }

        var result = Transform(img, q, size * Supersample);
        result = ImageOps.Resize(result, size, size, ResizeFilter.Bicubic).Clamp(0, 1);

        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Samples the parallelogram <paramref name="q"/> of <paramref name="img"/> onto a size x size grid,
    /// bilinearly.</summary>
    static Tensor Transform(Tensor img, Vec[] q, int size)
    {
        int h = (int)img.shape[1],
            w = (int)img.shape[2];
        // Output pixel centre (i + 0.5) / size along each side of the quad, in source pixel coordinates.
        var t = KeptScalars.Arange(size, ScalarType.Float64, img.device).Plus(0.5).DividedBy(size);
        var u = t.view(1, size, 1);
        var v = t.view(size, 1, 1);
        var origin = torch
            .tensor(new[] { q[0].X, q[0].Y }, dtype: ScalarType.Float64, device: img.device)
            .view(1, 1, 2);
        var across = torch
            .tensor(new[] { q[3].X - q[0].X, q[3].Y - q[0].Y }, dtype: ScalarType.Float64, device: img.device)
            .view(1, 1, 2);
        var down = torch
            .tensor(new[] { q[1].X - q[0].X, q[1].Y - q[0].Y }, dtype: ScalarType.Float64, device: img.device)
            .view(1, 1, 2);
        var src = origin.Plus(u * across).Plus(v * down); // [size,size,2] (x, y)
        var scale = torch.tensor(new[] { 2.0 / w, 2.0 / h }, dtype: ScalarType.Float64, device: img.device);
        // align_corners=false convention
        var grid = (src.Plus(0.5) * scale).Minus(1).to(ScalarType.Float32).unsqueeze(0);
        return F.grid_sample(
                img.unsqueeze(0),
                grid,
                mode: GridSampleMode.Bilinear,
                padding_mode: GridSamplePaddingMode.Zeros,
                align_corners: false
            )
            .squeeze(0);
    }

    /// <summary>numpy's 'reflect' padding (mirror without repeating the edge), for any pad width.</summary>
    static Tensor ReflectPad(Tensor img, int left, int top, int right, int bottom)
    {
        var rows = MirrorIndex(img.shape[1], top, bottom, repeatEdge: false, img.device);
        var cols = MirrorIndex(img.shape[2], left, right, repeatEdge: false, img.device);
        return img.index_select(1, rows).index_select(2, cols);
    }

    static Tensor MirrorIndex(long n, int before, int after, bool repeatEdge, Device device)
    {
        var idx = new long[n + before + after];
        long period = repeatEdge ? 2 * n : 2 * (n - 1);
        for (long i = 0; i < idx.Length; i++)
        {
            if (n == 1)
            {
                idx[i] = 0;
                continue;
            }
            long m = ((i - before) % period + period) % period;
            idx[i] = repeatEdge ? (m < n ? m : period - 1 - m) : (m < n ? m : period - m);
        }
        return torch.tensor(idx, device: device);
    }

    /// <summary>scipy.ndimage.gaussian_filter over the two image axes (truncate 4, 'reflect' = mirror with the
    /// edge).</summary>
    static Tensor GaussianBlur(Tensor img, double sigma)
    {
        int radius = (int)(4.0 * sigma + 0.5);
        if (radius < 1)
            return img;
        var k = Enumerable
            .Range(-radius, 2 * radius + 1)
            .Select(i => Math.Exp(-0.5 * i * i / (sigma * sigma)))
            .ToArray();
        double sum = k.Sum();
        var kernel = torch.tensor(k.Select(v => (float)(v / sum)).ToArray(), device: img.device);
        long c = img.shape[0],
            h = img.shape[1],
            w = img.shape[2];
        var x = img.index_select(1, MirrorIndex(h, radius, radius, repeatEdge: true, img.device))
            .index_select(2, MirrorIndex(w, radius, radius, repeatEdge: true, img.device))
            .unsqueeze(0);
        x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups: c);
        x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups: c);
        return x.squeeze(0);
    }

    /// <summary>numpy's median per channel over all pixels (the mean of the two middle values for an even
    /// count).</summary>
    static Tensor Median(Tensor img)
    {
        var flat = img.flatten(1);
        long n = flat.shape[1];
        var lower = flat.kthvalue((n + 1) / 2, 1).values;
        var upper = flat.kthvalue(n / 2 + 1, 1).values;
        return lower.Plus(upper).DividedBy(2).view(-1, 1, 1);
    }

    static (int MinX, int MinY, int MaxX, int MaxY) Bounds(Vec[] q) =>
        (
            (int)Math.Floor(q.Min(p => p.X)),
            (int)Math.Floor(q.Min(p => p.Y)),
            (int)Math.Ceiling(q.Max(p => p.X)),
            (int)Math.Ceiling(q.Max(p => p.Y))
        );

    static Vec V(PixelPoint p) => new(p.X, p.Y);

    static Vec Mean(IReadOnlyList<PixelPoint> points, int from, int to)
    {
        var s = new Vec(0, 0);
        for (int i = from; i < to; i++)
            s += V(points[i]);
        return s / (to - from);
    }

    readonly record struct Vec(double X, double Y)
    {
        public double Length => Math.Sqrt(X * X + Y * Y);
        public PixelPoint P => new(X, Y);

        public static Vec operator +(Vec a, Vec b) => new(a.X + b.X, a.Y + b.Y);

        public static Vec operator -(Vec a, Vec b) => new(a.X - b.X, a.Y - b.Y);

        public static Vec operator *(Vec a, double s) => new(a.X * s, a.Y * s);

        public static Vec operator /(Vec a, double s) => new(a.X / s, a.Y / s);
    }
}
