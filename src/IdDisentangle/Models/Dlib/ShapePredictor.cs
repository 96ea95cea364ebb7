using IdDisentangle.Imaging;
using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Models.Dlib;

/// <summary>
/// An 8-bit intensity image as dlib's shape predictor reads an RGB photo: each pixel the integer mean of its red,
/// green and blue bytes, rows top to bottom.
/// </summary>
internal sealed class IntensityImage
{
    public IntensityImage(byte[] pixels, int width, int height)
    {
        if (pixels.Length != (long)width * height)
            throw new ArgumentException($"{pixels.Length} pixels for a {width}x{height} image");
        Pixels = pixels;
        Width = width;
        Height = height;
    }

    public byte[] Pixels { get; }
    public int Width { get; }
    public int Height { get; }

    /// <summary>From an RGB image [3,H,W] in [0,1] (values are rounded to bytes first, as they were decoded).</summary>
    public static IntensityImage FromRgb(Tensor image)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        return FromRgbBytes(image.to(CPU).to(ScalarType.Float32).Times(255f).round_());
    }

    /// <summary>From an RGB image [3,H,W] already holding whole byte values 0..255 (any device and float
    /// type).</summary>
    public static IntensityImage FromRgbBytes(Tensor image)
    {
        if (image.dim() != 3 || image.shape[0] != 3)
            throw new ArgumentException($"expected an RGB image [3,H,W], got [{string.Join(",", image.shape)}]");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using Scalar three = 3;
        var bytes = image.to(CPU).Clamp(0, 255).to(ScalarType.Int32);
        var mean = bytes.sum([0]).div_(three, rounding_mode: RoundingMode.floor).to(ScalarType.Byte).contiguous();
        return new IntensityImage(mean.data<byte>().ToArray(), (int)image.shape[2], (int)image.shape[1]);
    }
}

/// <summary>A box in dlib's convention: integer pixel columns and rows, right and bottom inclusive.</summary>
internal readonly record struct DlibRectangle(long Left, long Top, long Right, long Bottom)
{
    public long Width => Right - Left + 1;
    public long Height => Bottom - Top + 1;
    public double Area => (double)Width * Height;
}

/// <summary>
/// One regression tree of the cascade: a complete binary tree whose splits compare the difference of two feature
/// pixels with a threshold, and whose leaves hold a shape increment.
/// </summary>
internal sealed record RegressionTree(int[] FirstPixel, int[] SecondPixel, float[] Thresholds, float[][] Leaves);

/// <summary>
/// One level of the cascade: the pixels it samples, each given as a landmark of the mean shape (its anchor) plus an
/// offset, and the trees whose leaf increments are added to the shape.
/// </summary>
internal sealed record CascadeLevel(int[] Anchors, float[] OffsetX, float[] OffsetY, RegressionTree[] Trees);

/// <summary>
/// Kazemi and Sullivan's ensemble of regression trees ("One Millisecond Face Alignment with an Ensemble of
/// Regression Trees", CVPR 2014) as dlib implements it: starting from the mean shape placed in the face box, each
/// cascade level samples pixel intensities at points that follow the current shape (through the similarity that
/// maps the mean shape onto it) and adds its trees' leaf increments. Shapes live in box coordinates, the box's top
/// left corner at (0,0) and its bottom right at (1,1). With dlib's 68-point model this gives the landmarks the FFHQ
/// data set was aligned with.
/// </summary>
internal sealed class ShapePredictor
{
    readonly float[] _meanShape;
    readonly CascadeLevel[] _levels;

    public ShapePredictor(float[] meanShape, IReadOnlyList<CascadeLevel> levels)
    {
        if (meanShape.Length == 0 || meanShape.Length % 2 != 0)
            throw new ArgumentException($"a shape needs an even number of coordinates, got {meanShape.Length}");
        foreach (var (level, l) in levels.Select((x, i) => (x, i)))
        {
            int pixels = level.Anchors.Length;
            if (level.OffsetX.Length != pixels || level.OffsetY.Length != pixels)
                throw new ArgumentException($"cascade level {l}: {pixels} anchors but {level.OffsetX.Length} offsets");
            if (level.Anchors.Any(a => a < 0 || a >= meanShape.Length / 2))
                throw new ArgumentException($"cascade level {l}: an anchor is not a landmark");
            foreach (var tree in level.Trees)
            {
                if (
                    tree.Leaves.Length != tree.Thresholds.Length + 1
                    || (tree.Leaves.Length & (tree.Leaves.Length - 1)) != 0
                )
                    throw new ArgumentException(
                        $"cascade level {l}: a tree with {tree.Thresholds.Length} splits and {tree.Leaves.Length} leaves is not complete"
                    );
                if (tree.FirstPixel.Concat(tree.SecondPixel).Any(p => p < 0 || p >= pixels))
                    throw new ArgumentException($"cascade level {l}: a split reads a pixel the level does not sample");
                if (tree.Leaves.Any(v => v.Length != meanShape.Length))
                    throw new ArgumentException(
                        $"cascade level {l}: a leaf is not a shape increment of {meanShape.Length} values"
                    );
            }
        }
        _meanShape = meanShape;
        _levels = levels.ToArray();
    }

    public int PartCount => _meanShape.Length / 2;
    public int LevelCount => _levels.Length;
    public int TreeCount => _levels.Sum(l => l.Trees.Length);

    /// <summary>
    /// The landmarks of the face in <paramref name="box"/>, in image pixels (pixel centres at integers). dlib rounds
    /// them to whole pixels; these are the same points before rounding.
    /// </summary>
    public PixelPoint[] Predict(IntensityImage image, DlibRectangle box)
    {
        var shape = (float[])_meanShape.Clone();
        // The box's corners map (0,0) and (1,1) to the top-left and bottom-right pixel centres.
        double sx = box.Right - box.Left,
            sy = box.Bottom - box.Top;
        var values = new float[_levels.Max(l => l.Anchors.Length)];
        foreach (var level in _levels)
        {
            var (a, b) = SimilarityToCurrent(shape);
            for (int i = 0; i < level.Anchors.Length; i++)
            {
                int anchor = level.Anchors[i];
                float u = a * level.OffsetX[i] - b * level.OffsetY[i] + shape[2 * anchor];
                float v = b * level.OffsetX[i] + a * level.OffsetY[i] + shape[2 * anchor + 1];
                long x = (long)Math.Floor(box.Left + sx * u + 0.5),
                    y = (long)Math.Floor(box.Top + sy * v + 0.5);
                values[i] =
                    x >= 0 && y >= 0 && x < image.Width && y < image.Height ? image.Pixels[y * image.Width + x] : 0;
            }
            foreach (var tree in level.Trees)
            {
                int node = 0,
                    splits = tree.Thresholds.Length;
                while (node < splits)
                    node =
                        values[tree.FirstPixel[node]] - values[tree.SecondPixel[node]] > tree.Thresholds[node]
                            ? 2 * node + 1
                            : 2 * node + 2;
                var leaf = tree.Leaves[node - splits];
                for (int k = 0; k < shape.Length; k++)
                    shape[k] += leaf[k];
            }
        }
        var points = new PixelPoint[PartCount];
        for (int p = 0; p < points.Length; p++)
            points[p] = new PixelPoint(box.Left + sx * shape[2 * p], box.Top + sy * shape[2 * p + 1]);
        return points;
    }

    /// <summary>
    /// The least-squares similarity [[a,-b],[b,a]] taking the mean shape onto <paramref name="shape"/> (both centred):
    /// how the sampled pixels' offsets turn and scale with the face.
    /// </summary>
    (float A, float B) SimilarityToCurrent(float[] shape)
    {
        int n = PartCount;
        double mfx = 0,
            mfy = 0,
            mtx = 0,
            mty = 0;
        for (int i = 0; i < n; i++)
        {
            mfx += _meanShape[2 * i];
            mfy += _meanShape[2 * i + 1];
            mtx += shape[2 * i];
            mty += shape[2 * i + 1];
        }
        mfx /= n;
        mfy /= n;
        mtx /= n;
        mty /= n;
        double dot = 0,
            cross = 0,
            norm = 0;
        for (int i = 0; i < n; i++)
        {
            double fx = _meanShape[2 * i] - mfx,
                fy = _meanShape[2 * i + 1] - mfy;
            double tx = shape[2 * i] - mtx,
                ty = shape[2 * i + 1] - mty;
            dot += fx * tx + fy * ty;
            cross += fx * ty - fy * tx;
            norm += fx * fx + fy * fy;
        }
        return norm == 0 ? (1f, 0f) : ((float)(dot / norm), (float)(cross / norm));
    }
}
