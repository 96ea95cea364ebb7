using IdDisentangle.Models;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Bench;

/// <summary>
/// Where the StyleGAN2 forward's time goes: each operation of the synthesis network timed alone at its real shapes
/// (batch 1, the generator's layout, inference mode), per resolution, next to the whole forward measured in the same
/// process; the sum against the whole says how much of the forward the table explains. Rows marked as not in the
/// forward are alternatives measured beside what the generator does (the layout, a polyphase upsampling).
/// </summary>
internal static class GeneratorProfile
{
    public static Dictionary<string, object> Run(Options o)
    {
        torch.set_num_threads(o.Threads);
        torch.manual_seed(0);
        var config = StyleGan2Config.Standard(o.Size);
        int iters = o.Iters > 0 ? o.Iters : 7;
        var rows = new List<Dictionary<string, object>>();
        using var noGrad = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        using var blur = new StyleGan2Generator.Blur(2, 1, 1);
        using var unpaddedBlur = new StyleGan2Generator.Blur(2, 0, 0);
        using var upsample = new StyleGan2Generator.Upsample();

        double Time(string op, int res, double flops, Action run, bool inForward = true)
        {
            var (_, min) = Measure.Time(
                () =>
                {
                    using var s = torch.NewDisposeScope();
                    run();
                },
                2,
                iters
            );
            rows.Add(
                new()
                {
                    ["op"] = op,
                    ["res"] = res,
                    ["ms"] = min * 1000,
                    ["gflops"] = flops > 0 ? flops / min / 1e9 : 0,
                    ["in_forward"] = inForward,
                }
            );
            return inForward ? min : 0;
        }

        // The generator's layout at a resolution, and the other one.
        static Tensor Layout(Tensor t, int r) =>
            r >= StyleGan2Generator.ChannelsLastFrom ? MemoryLayout.ChannelsLast(t) : t.contiguous();
        static Tensor Other(Tensor t, int r) =>
            r >= StyleGan2Generator.ChannelsLastFrom ? t.contiguous() : MemoryLayout.ChannelsLast(t);
        static string OtherName(int r) => r >= StyleGan2Generator.ChannelsLastFrom ? "NCHW" : "channels-last";
        // --impl bf16: activations and convolution weights in bfloat16, as StyleGan2Generator.ComputeType does.
        var type = o.Impl == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        double total = 0;
        int c4 = config.Channels[4];
        for (int log = 2; log <= config.LogSize; log++)
        {
            int r = 1 << log;
            int cout = config.Channels[r],
                cin = log == 2 ? c4 : config.Channels[r / 2];
            var s1 = torch.randn(1, cin);
            var w1 = torch.randn(cout, cin, 3, 3);
            var w2 = torch.randn(cout, cout, 3, 3);
            var s2 = torch.randn(1, cout);
            // The squared taps of the frozen weights, which the generator keeps from one forward to the next.
            var taps1 = StyleGan2Generator.ModulatedConv2d.SumOfSquaredTaps(w1);
            var taps2 = StyleGan2Generator.ModulatedConv2d.SumOfSquaredTaps(w2);
            Tensor Taps(Tensor w) => ReferenceEquals(w, w1) ? taps1 : taps2;
            var y = Layout(torch.randn(1, cout, r, r), r).to(type);
            var noise = torch.randn(1, 1, r, r);
            var bias = torch.randn(1, cout, 1, 1).to(type);
            // The generator's own single-sample weight (scale 1: the random weights stand for scaled ones).
            Tensor Modulated(Tensor w, Tensor s) =>
                StyleGan2Generator.ModulatedConv2d.ModulatedWeight(w, Taps(w), s.view(-1), 1.0, true, 1.0).to(type);
            // Or, where the activation is the smaller, the style on the input and the demodulation on the output.
            void StyleOnActivations(Tensor x, Tensor w, Tensor s, Tensor y)
            {
                var d = torch.rsqrt(Taps(w).matmul(s.view(-1).square()));
                _ = x * s.view(1, -1, 1, 1).to(type);
                _ = y * d.view(1, -1, 1, 1).to(type);
            }
            bool ActivationPath(int res) =>
                type == ScalarType.Float32
                && StyleGan2Generator.ModulatedConv2d.ModulatesActivations(res * res, 3, cout);
            if (log > 2)
            {
                var x = Layout(torch.randn(1, cin, r / 2, r / 2), r).to(type);
                var taps = (StyleGan2Generator.MakeKernel() * 4).flip(0, 1);
                bool onActivations = ActivationPath(r / 2);
                var wt = (onActivations ? w1.to(type) : Modulated(w1, s1)).transpose(0, 1);
                var wp = PolyphaseWeight(Modulated(w1, s1).to(ScalarType.Float32), taps).to(type);
                total += onActivations
                    ? Time("style: x s, y d, demodulation", r, 0, () => StyleOnActivations(x, w1, s1, y))
                    : Time("weights: modulate, demodulate", r, 0, () => Modulated(w1, s1).transpose(0, 1));
                double upFlops = 2.0 * cin * cout * 9 * r * r / 4;
                // As the generator does it: from 128 px input the input padded and the blur's padding one less.
                bool padded = StyleGan2Generator.ModulatedConv2d.PadsInputToUpsample(r / 2, cin);
                Tensor Up() =>
                    padded
                        ? F.conv_transpose2d(F.pad(x, [1, 1, 1, 1]), wt, strides: [2, 2], padding: [1, 1])
                        : F.conv_transpose2d(x, wt, strides: [2, 2]);
                total += Time(
                    padded ? "up conv: transposed 3x3, stride 2 (input padded)" : "up conv: transposed 3x3, stride 2",
                    r,
                    upFlops,
                    () => Up()
                );
                var t = Up();
                var upBlur = padded ? unpaddedBlur : blur;
                total += Time("up conv: 4x4 blur (depthwise)", r, 2.0 * cout * 16 * r * r, () => upBlur.forward(t));
                var tc = Other(t, r);
                Time(
                    $"  the blur in {OtherName(r)}",
                    r,
                    2.0 * cout * 16 * r * r,
                    () => upBlur.forward(tc),
                    inForward: false
                );
                Time(
                    "  polyphase alternative: 3x3 conv, 4x out + shuffle",
                    r,
                    upFlops,
                    () => F.pixel_shuffle(F.conv2d(x, wp, padding: [1, 1]), 2),
                    inForward: false
                );
                Time(
                    "  polyphase alternative: its weights",
                    r,
                    0,
                    () => PolyphaseWeight(Modulated(w1, s1).to(ScalarType.Float32), taps),
                    inForward: false
                );
                total += Time("noise + bias + leaky ReLU", r, 0, () => Epilogue(y, noise, bias));
            }
            bool winograd =
                type == ScalarType.Float32 && StyleGan2Generator.ModulatedConv2d.WinogradIsFaster(r * r, cout, cout);
            double convFlops = 2.0 * cout * cout * 9 * r * r;
            bool onActivations2 = ActivationPath(r);
            total += onActivations2
                ? Time("style: x s, y d, demodulation", r, 0, () => StyleOnActivations(y, w2, s2, y), !winograd)
                : Time("weights: modulate, demodulate", r, 0, () => Modulated(w2, s2), !winograd);
            var w2m = onActivations2 ? w2.to(type) : Modulated(w2, s2);
            total += Time("3x3 conv", r, convFlops, () => F.conv2d(y, w2m, padding: [1, 1]), !winograd);
            var yc = Other(y, r);
            Time(
                $"  the 3x3 conv in {OtherName(r)}",
                r,
                convFlops,
                () => F.conv2d(yc, w2m, padding: [1, 1]),
                inForward: false
            );
            total += Time("noise + bias + leaky ReLU", r, 0, () => Epilogue(y, noise, bias), !winograd);
            if (type == ScalarType.Float32)
            {
                // GFLOP/s of the direct convolution's multiply-adds: how fast the layer runs, not what it computes.
                var u = WinogradConvolution.TransformWeight(w2);
                if (WinogradConvolution.GroupsProducts(WinogradConvolution.Tiles(y)))
                    u = WinogradConvolution.ForGroupedProducts(u);
                var epilogue = new WinogradConvolution.Epilogue(noise, 0.1f, bias.view(-1), 0.2f, null);
                total += Time(
                    "3x3 conv as Winograd F(4x4, 3x3), with style, demodulation, noise, bias, leaky ReLU",
                    r,
                    convFlops,
                    () => WinogradConvolution.Convolve(y, u, s2, s2, epilogue),
                    winograd
                );
            }
            var wrgb = (torch.randn(3, cout, 1, 1) * s2.view(1, -1, 1, 1)).to(type);
            var rgbBias = torch.randn(1, 3, 1, 1);
            total += Time(
                "toRGB 1x1 + bias",
                r,
                2.0 * cout * 3 * r * r,
                () => F.conv2d(y, wrgb).to(ScalarType.Float32).add_(rgbBias)
            );
            if (log > 2)
            {
                var skip = torch.randn(1, 3, r / 2, r / 2);
                total += Time("skip upsample (depthwise transposed 4x4)", r, 0, () => upsample.forward(skip));
            }
        }

        using var g = new StyleGan2Generator(config);
        g.eval();
        g.ComputeType = type == ScalarType.Float32 ? null : type;
        var latent = g.Map(torch.randn(1, config.StyleDim));
        var (_, forward) = Measure.Time(
            () =>
            {
                using var s = torch.NewDisposeScope();
                g.Synthesize(latent);
            },
            2,
            iters
        );
        return new()
        {
            ["bench"] = "profile",
            ["type"] = type.ToString(),
            ["size"] = o.Size,
            ["threads"] = o.Threads,
            ["forward_ms"] = forward * 1000,
            ["sum_of_ops_ms"] = total * 1000,
            ["rows"] = rows,
        };
    }

    /// <summary>
    /// The upsampling layer (stride-2 transposed 3x3 convolution, then the 4x4 blur) as one stride-2 transposed
    /// convolution with the 6x6 kernel C = W * blur, split into its four output phases: a plain 3x3 convolution with
    /// 4 x out channels on the low-resolution input, then a pixel shuffle. Per axis C[j] = sum_a W[a] f[a + 3 - j]
    /// and phase p takes C[4 + p - 2t], t = 0..2. It computes 4x the multiply-adds of the transposed convolution;
    /// measured here as the alternative the generator does not use (bench/README.md). The weights are built with
    /// small products: as a convolution of the weights, libtorch 2.10 gave a wrong input gradient (a 3x3 input
    /// padded by 3; PyTorch 1.13 gives the right one).
    /// </summary>
    static Tensor PolyphaseWeight(Tensor w, Tensor taps)
    {
        long o = w.shape[0],
            i = w.shape[1];
        var f = taps.sum(1) / taps.sum().sqrt();
        var g = F.pad(f, [2, 2]); // g[k + 2] = f[k]
        var a = g[torch.tensor(PhaseIndex, [2, 3, 3])]; // A_p[a, t] = f[a + 2t - 1 - p]
        return torch.einsum("oiab,pat,qbs->opqits", w, a, a).reshape(o * 4, i, 3, 3);
    }

    static readonly long[] PhaseIndex =
    [
        .. from p in Enumerable.Range(0, 2)
        from a in Enumerable.Range(0, 3)
        from t in Enumerable.Range(0, 3)
        select (long)(a + 2 * t + 1 - p),
    ];

    /// <summary>The epilogue of a styled convolution as the generator runs it, in place.</summary>
    static Tensor Epilogue(Tensor y, Tensor noise, Tensor bias)
    {
        y.add_((noise * 0.1).to(y.dtype));
        y.add_(bias);
        return F.leaky_relu(y, 0.2, inplace: true);
    }
}
