using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Training;

/// <summary>
/// Multi-scale SSIM (Wang et al. 2003) exactly as TensorFlow's <c>tf.image.ssim_multiscale</c> computes it with
/// its defaults, which the paper's reconstruction loss uses: 5 scales weighted 0.0448, 0.2856, 0.3001, 0.2363,
/// 0.1333; an 11x11 Gaussian window (sigma 1.5) applied VALID; k1 0.01, k2 0.03; contrast-structure terms and the
/// last scale's SSIM clipped at 0 (ReLU); 2x2 average pooling between scales, an odd size first padded by
/// repeating its last row/column; the mean over colour channels. Differentiable.
/// </summary>
internal static class MsSsim
{
    public static readonly double[] Weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];
    public const int WindowSize = 11;
    public const double WindowSigma = 1.5;

    /// <summary>
    /// The smallest input side for which every scale still holds the 11 px window: the coarsest scale is about
    /// size / 16, so 161 px; TensorFlow refuses smaller inputs.
    /// </summary>
    public static int MinimumSize => MinimumSide();

    /// <summary>MS-SSIM of two batches [N,C,H,W] with values in [0, maxVal]: one value per image, [N].</summary>
    public static Tensor Compute(Tensor a, Tensor b, double maxVal = 1.0, double k1 = 0.01, double k2 = 0.03)
    {
        if (!a.shape.SequenceEqual(b.shape))
            throw new ArgumentException(
                $"MS-SSIM of images of different shapes [{string.Join(",", a.shape)}] and [{string.Join(",", b.shape)}]"
            );
        long h = a.shape[2],
            w = a.shape[3];
        if (Math.Min(h, w) < MinimumSize)
            throw new ArgumentException(
                $"MS-SSIM (TensorFlow's definition) needs images of at least {MinimumSize} px: at {h}x{w} the coarsest of its 5 scales is smaller than the 11 px window; use the L1 pixel loss at this resolution"
            );
        long c = a.shape[1];
        var window = GaussianWindow(a.dtype, a.device).expand(c, 1, WindowSize, WindowSize);
        double c1 = Math.Pow(k1 * maxVal, 2),
            c2 = Math.Pow(k2 * maxVal, 2);
        var x = a;
        var y = b;
        var terms = new List<Tensor>();
        Tensor ssim = null!;
        for (int scale = 0; scale < Weights.Length; scale++)
        {
            if (scale > 0)
            {
                x = Downsample(x);
                y = Downsample(y);
            }
            Tensor Filter(Tensor t) => F.conv2d(t, window, groups: c);
            var mx = Filter(x);
            var my = Filter(y);
            var num0 = (mx * my).Times(2);
            var den0 = mx.Squared().Plus(my.Squared());
            var luminance = num0.Plus(c1) / den0.Plus(c1);
            var num1 = Filter(x * y).Times(2);
            var den1 = Filter(x.Squared().Plus(y.Squared()));
            var cs = (num1 - num0).Plus(c2) / (den1 - den0).Plus(c2);
            ssim = (luminance * cs).mean([2, 3]); // [N, C]
            if (scale < Weights.Length - 1)
                terms.Add(F.relu(cs.mean([2, 3])).Power(Weights[scale]));
        }
        terms.Add(F.relu(ssim).Power(Weights[^1]));
        var product = terms.Aggregate((p, t) => p * t); // [N, C]
        return product.mean([1]);
    }

    /// <summary>The 11x11 window: exp(-(dx^2 + dy^2) / (2 sigma^2)) normalised to sum 1 (TensorFlow takes a
    /// softmax).</summary>
    static Tensor GaussianWindow(ScalarType dtype, Device device)
    {
        var coords = KeptScalars.Arange(WindowSize, ScalarType.Float64).Minus((WindowSize - 1) / 2.0);
        var g = coords.Squared().Times(-0.5 / (WindowSigma * WindowSigma));
        var g2 = g.view(1, -1).Plus(g.view(-1, 1));
        return torch.softmax(g2.flatten(), 0).view(1, 1, WindowSize, WindowSize).to(dtype, device);
    }

    /// <summary>2x2 average pooling; an odd side is first padded at its end by repeating the last row/column
    /// (TensorFlow's SYMMETRIC pad of 1).</summary>
    static Tensor Downsample(Tensor t)
    {
        long ph = t.shape[2] % 2,
            pw = t.shape[3] % 2;
        if (ph != 0 || pw != 0)
            t = F.pad(t, [0, pw, 0, ph], PaddingModes.Replicate);
        return F.avg_pool2d(t, 2, 2);
    }

    static int MinimumSide()
    {
        for (int s = 1; ; s++)
        {
            int side = s;
            for (int k = 1; k < Weights.Length; k++)
                side = (side + 1) / 2;
            if (side >= WindowSize)
                return s;
        }
    }
}
