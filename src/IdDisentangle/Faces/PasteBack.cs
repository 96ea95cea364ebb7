using IdDisentangle.Imaging;
using IdDisentangle.Runtime;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Faces;

/// <summary>
/// Puts an aligned face back into the photo it was cut from: the face is warped through the inverse of the FFHQ
/// alignment (the recorded quad) and blended with a soft mask over the face; pixels outside the mask are the
/// photo's own, bit for bit.
/// </summary>
internal static class PasteBack
{
    /// <summary>Forehead: the brows pushed away from the chin by this fraction of their distance to it.</summary>
    const double Forehead = 0.25;

    /// <summary>The hull shrunk towards its centre by this fraction before feathering, so the soft edge stays inside.</summary>
    const double Erode = 0.06;

    /// <summary>
    /// The soft face mask [1,R,R] in the aligned square, from the face's 68 landmarks in photo pixels: the convex hull
    /// of the jaw, the brows raised to cover the forehead, shrunk a little and feathered.
    /// </summary>
    public static Tensor FaceMask(IReadOnlyList<PixelPoint> photoLandmarks, AlignmentQuad quad, int size)
    {
        var points = photoLandmarks.Select(p => quad.ToOutput(p, size)).ToList();
        var chin = points[8];
        var outline = points.Take(17).ToList();
        for (int i = 17; i < 27; i++)
            outline.Add(
                new PixelPoint(
                    points[i].X + (points[i].X - chin.X) * Forehead,
                    points[i].Y + (points[i].Y - chin.Y) * Forehead
                )
            );
        var hull = ConvexHull(outline);
        double cx = hull.Average(p => p.X),
            cy = hull.Average(p => p.Y);
        using var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Gray8, SKAlphaType.Opaque));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.Black);
            using var path = new SKPath();
            for (int i = 0; i < hull.Count; i++)
            {
                float x = (float)(cx + (hull[i].X + 0.5 - cx) * (1 - Erode)),
                    y = (float)(cy + (hull[i].Y + 0.5 - cy) * (1 - Erode));
                if (i == 0)
                    path.MoveTo(x, y);
                else
                    path.LineTo(x, y);
            }
            path.Close();
            float sigma = size / 40f;
            using var paint = new SKPaint
            {
                Color = SKColors.White,
                IsAntialias = true,
                Style = SKPaintStyle.Fill,
                MaskFilter = SKMaskFilter.CreateBlur(SKBlurStyle.Normal, sigma),
            };
            canvas.DrawPath(path, paint);
        }
        var bytes = bitmap.Bytes;
        return torch.tensor(bytes.Select(b => b / 255f).ToArray()).view(1, size, size);
    }

    /// <summary>
    /// <paramref name="photo"/> [3,H,W] with <paramref name="face"/> [3,R,R] (the aligned square of
    /// <paramref name="quad"/>) blended in through <paramref name="mask"/> [1,R,R]; only pixels the warped mask covers
    /// change.
    /// </summary>
    public static Tensor Paste(Tensor photo, Tensor face, AlignmentQuad quad, Tensor mask)
    {
        using var scope = torch.NewDisposeScope();
        int h = (int)photo.shape[1],
            w = (int)photo.shape[2];
        var corners = new[] { quad.UpperLeft, quad.LowerLeft, quad.LowerRight, quad.UpperRight };
        int x0 = Math.Max(0, (int)Math.Floor(corners.Min(c => c.X))),
            x1 = Math.Min(w, (int)Math.Ceiling(corners.Max(c => c.X)) + 1);
        int y0 = Math.Max(0, (int)Math.Floor(corners.Min(c => c.Y))),
            y1 = Math.Min(h, (int)Math.Ceiling(corners.Max(c => c.Y)) + 1);
        if (x1 <= x0 || y1 <= y0)
            return photo.clone().MoveToOuterDisposeScope();
        // Each photo pixel's (u, v) in the square, as AlignmentQuad.ToOutput solves it; grid_sample wants 2u - 1.
        double ax = quad.UpperRight.X - quad.UpperLeft.X,
            ay = quad.UpperRight.Y - quad.UpperLeft.Y;
        double bx = quad.LowerLeft.X - quad.UpperLeft.X,
            by = quad.LowerLeft.Y - quad.UpperLeft.Y;
        double det = ax * by - ay * bx;
        var xs = KeptScalars.Arange(x0, x1, ScalarType.Float64).Minus(quad.UpperLeft.X).view(1, -1);
        var ys = KeptScalars.Arange(y0, y1, ScalarType.Float64).Minus(quad.UpperLeft.Y).view(-1, 1);
        var u = (xs.Times(by) - ys.Times(bx)).DividedBy(det);
        var v = (ys.Times(ax) - xs.Times(ay)).DividedBy(det);
        var grid = torch.stack([u.Times(2).Minus(1), v.Times(2).Minus(1)], -1).unsqueeze(0).to(ScalarType.Float32);
        var sampled = F.grid_sample(
            torch.cat([face.to(ScalarType.Float32), mask.to(ScalarType.Float32)], 0).unsqueeze(0),
            grid,
            GridSampleMode.Bilinear,
            GridSamplePaddingMode.Zeros,
            align_corners: false
        )[0];
        var warpedFace = sampled.narrow(0, 0, 3).Clamp(0, 1);
        var alpha = sampled.narrow(0, 3, 1).Clamp(0, 1);
        var region = photo.narrow(1, y0, y1 - y0).narrow(2, x0, x1 - x0);
        var blended = torch.where(
            alpha.GreaterThan(0),
            (region * alpha.SubtractedFrom(1)).Plus(warpedFace * alpha),
            region
        );
        var result = photo.clone();
        result.narrow(1, y0, y1 - y0).narrow(2, x0, x1 - x0).copy_(blended);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <paramref name="face"/> [3,R,R] recoloured so that, weighted by <paramref name="mask"/> [1,R,R], each channel
    /// has the mean (and with <paramref name="matchSpread"/> the standard deviation) it has in
    /// <paramref name="reference"/> (the aligned input from the photo):
    /// a global colour transfer (Reinhard et al. 2001, in RGB) that removes a colour cast between the generated face
    /// and the photo, at the price of also moving the skin tone towards the attribute face's.
    /// </summary>
    public static Tensor MatchColours(Tensor face, Tensor reference, Tensor mask, bool matchSpread = true)
    {
        using var scope = torch.NewDisposeScope();
        var weight = mask.to(ScalarType.Float32) / mask.sum().ClampMin(1e-6);
        (Tensor Mean, Tensor Std) Stats(Tensor image)
        {
            var mean = (image * weight).sum([1, 2], keepdim: true);
            var std = ((image - mean).Squared() * weight).sum([1, 2], keepdim: true).sqrt();
            return (mean, std);
        }
        var (fm, fs) = Stats(face.to(ScalarType.Float32));
        var (rm, rs) = Stats(reference.to(ScalarType.Float32));
        var gain = matchSpread ? rs / fs.ClampMin(1e-4) : torch.ones_like(rs);
        return ((face - fm) * gain).Plus(rm).Clamp(0, 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The steps of one paste-back side by side, each <paramref name="size"/> pixels square: the photo around the
    /// face, the aligned input, the swapped face, the mask, and the result around the face.
    /// </summary>
    public static Tensor Steps(
        Tensor photo,
        Tensor alignedInput,
        Tensor swapped,
        Tensor mask,
        Tensor result,
        AlignmentQuad quad,
        int size = 256
    )
    {
        using var scope = torch.NewDisposeScope();
        int h = (int)photo.shape[1],
            w = (int)photo.shape[2];
        var corners = new[] { quad.UpperLeft, quad.LowerLeft, quad.LowerRight, quad.UpperRight };
        double cx = corners.Average(c => c.X),
            cy = corners.Average(c => c.Y);
        double half = Math.Max(corners.Max(c => c.X) - cx, corners.Max(c => c.Y) - cy) * 1.15;
        int side = Math.Max(1, Math.Min((int)Math.Round(2 * half), Math.Min(h, w)));
        int x0 = Math.Clamp((int)Math.Round(cx - side / 2.0), 0, w - side),
            y0 = Math.Clamp((int)Math.Round(cy - side / 2.0), 0, h - side);
        Tensor Around(Tensor image) =>
            ImageOps.Resize(image.narrow(1, y0, side).narrow(2, x0, side), size, size, ResizeFilter.Area);
        Tensor Square(Tensor image) => ImageOps.Resize(image.expand(3, -1, -1), size, size, ResizeFilter.Bilinear);
        return ImageGrid
            .Compose(
                [Around(photo), Square(alignedInput), Square(swapped), Square(mask), Around(result)],
                1,
                5,
                new GridLayout
                {
                    ColumnLabels = ["photo", "aligned input", "swapped", "mask", "pasted back"],
                    Padding = 4,
                }
            )
            .MoveToOuterDisposeScope();
    }

    /// <summary>Andrew's monotone chain: the hull's corners, counter-clockwise.</summary>
    static List<PixelPoint> ConvexHull(List<PixelPoint> points)
    {
        var p = points.OrderBy(q => q.X).ThenBy(q => q.Y).ToList();
        if (p.Count < 3)
            return p;
        static double Cross(PixelPoint o, PixelPoint a, PixelPoint b) =>
            (a.X - o.X) * (b.Y - o.Y) - (a.Y - o.Y) * (b.X - o.X);
        var hull = new List<PixelPoint>();
        foreach (var pass in new[] { p, Enumerable.Reverse(p).ToList() })
        {
            int start = hull.Count;
            foreach (var q in pass)
            {
                while (hull.Count >= start + 2 && Cross(hull[^2], hull[^1], q) <= 0)
                    hull.RemoveAt(hull.Count - 1);
                hull.Add(q);
            }
            hull.RemoveAt(hull.Count - 1);
        }
        return hull;
    }
}
