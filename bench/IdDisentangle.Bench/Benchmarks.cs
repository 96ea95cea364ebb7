using IdDisentangle.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Bench;

internal static class Benchmarks
{
    /// <summary>fp32 square GEMM through TorchSharp (BLAS; not the ceiling: conv-peak is).</summary>
    public static Dictionary<string, object> Gemm(Options o)
    {
        torch.set_num_threads(o.Threads);
        const int n = 2048;
        using var scope = torch.NewDisposeScope();
        var a = torch.randn(n, n);
        var b = torch.randn(n, n);
        var (median, min) = Measure.Time(
            () =>
            {
                using var c = a.mm(b);
            },
            2,
            o.Iters > 0 ? o.Iters : 7
        );
        return new()
        {
            ["bench"] = "gemm",
            ["impl"] = "torchsharp",
            ["n"] = n,
            ["threads"] = o.Threads,
            ["seconds"] = median,
            ["gflops"] = 2.0 * n * n * n / median / 1e9,
            ["gflops_best"] = 2.0 * n * n * n / min / 1e9,
        };
    }

    /// <summary>
    /// The machine's convolution ceiling as TorchSharp reaches it: 3x3 convolutions, 256 to 256 channels at 128x128
    /// (and 512 at 64x64), channels-last, no autograd, fp32 and bf16; the best of the shapes and runs.
    /// </summary>
    public static Dictionary<string, object> ConvPeak(Options o)
    {
        torch.set_num_threads(o.Threads);
        using var noGrad = torch.inference_mode();
        var result = new Dictionary<string, object> { ["bench"] = "conv-peak", ["threads"] = o.Threads };
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            double best = 0;
            foreach (var (c, size) in new[] { (256, 128), (512, 64) })
            {
                using var scope = torch.NewDisposeScope();
                var x = MemoryLayout.ChannelsLast(torch.randn(1, c, size, size).to(dtype));
                var w = MemoryLayout.ChannelsLast(torch.randn(c, c, 3, 3).to(dtype));
                var (_, min) = Measure.Time(
                    () =>
                    {
                        using var y = nn.functional.conv2d(x, w, padding: [1, 1]);
                    },
                    2,
                    o.Iters > 0 ? o.Iters : 7
                );
                best = Math.Max(best, 2.0 * c * c * 9 * size * size / min / 1e9);
            }
            result[dtype == ScalarType.Float32 ? "fp32_gflops" : "bf16_gflops"] = best;
        }
        return result;
    }

    /// <summary>StyleGAN2 synthesis forward at the standard configuration, random weights, stored noise.</summary>
    public static Dictionary<string, object> Generator(Options o)
    {
        torch.set_num_threads(o.Threads);
        torch.manual_seed(0);
        var config = StyleGan2Config.Standard(o.Size);
        using var g = new StyleGan2Generator(config);
        g.eval();
        if (o.Impl == "direct")
            g.Winograd = false;
        using var scope = torch.NewDisposeScope();
        var w = g.Map(torch.randn(o.Batch, config.StyleDim)).detach();
        int iters = o.Iters > 0 ? o.Iters : (o.Batch == 1 ? 7 : 3);
        var (median, min) = Measure.Time(
            () =>
            {
                using var _ = torch.inference_mode();
                using var s = torch.NewDisposeScope();
                g.Synthesize(w);
            },
            2,
            iters
        );
        double flops = Flops.StyleGan2Synthesis(config) * o.Batch;
        return new()
        {
            ["bench"] = "generator",
            ["impl"] = "IdDisentangle (TorchSharp)",
            ["size"] = o.Size,
            ["batch"] = o.Batch,
            ["threads"] = o.Threads,
            ["seconds"] = median,
            ["ms_per_image"] = median * 1000 / o.Batch,
            ["gflops"] = flops / median / 1e9,
            ["gflop_per_image"] = flops / o.Batch / 1e9,
            ["peak_rss_mib"] = Measure.PeakRssMiB(),
            ["best_seconds"] = min,
        };
    }

    /// <summary>
    /// A 1024 generator used at 256 (--output-size 256): the full synthesis then area downsampling, against
    /// stopping the synthesis at the 256 block (the cost of a 256 generator with the same channels up to 256),
    /// one image at a time without autograd.
    /// </summary>
    public static Dictionary<string, object> OutputSize(Options o)
    {
        torch.set_num_threads(o.Threads);
        torch.manual_seed(0);
        int full = o.Size > 256 ? o.Size : 1024;
        using var big = new ResizedGenerator(new StyleGan2Generator(StyleGan2Config.Standard(full)), 256);
        using var early = new StyleGan2Generator(StyleGan2Config.Standard(256));
        using var scope = torch.NewDisposeScope();
        var w = big.Map(torch.randn(1, 512)).detach();
        int iters = o.Iters > 0 ? o.Iters : 3;
        double Seconds(IStyleGenerator g) =>
            Measure
                .Time(
                    () =>
                    {
                        using var _ = torch.inference_mode();
                        using var s = torch.NewDisposeScope();
                        g.Synthesize(w);
                    },
                    1,
                    iters
                )
                .Median;
        double downsampled = Seconds(big),
            stopped = Seconds(early);
        return new()
        {
            ["bench"] = "output-size",
            ["generator"] = full,
            ["output"] = 256,
            ["threads"] = o.Threads,
            ["full_then_area_ms_per_image"] = downsampled * 1000,
            ["stop_at_256_ms_per_image"] = stopped * 1000,
            ["ratio"] = downsampled / stopped,
        };
    }
}

/// <summary>Convolution FLOPs (2 x multiply-adds) of the StyleGAN2 synthesis network, per image.</summary>
internal static class Flops
{
    public static double StyleGan2Synthesis(StyleGan2Config c)
    {
        double total = 0;
        static double Conv(double cin, double cout, int k, double hOut) => 2 * cin * cout * k * k * hOut * hOut;
        int c4 = c.Channels[4];
        total += Conv(c4, c4, 3, 4) + Conv(c4, 3, 1, 4);
        int cin = c4;
        for (int i = 3; i <= c.LogSize; i++)
        {
            int r = 1 << i,
                cout = c.Channels[r];
            total += Conv(cin, cout, 3, r / 2); // stride-2 transposed 3x3: every input pixel meets the whole kernel
            total += 2.0 * cout * 16 * r * r; // 4x4 depthwise FIR blur, r x r outputs
            total += Conv(cout, cout, 3, r);
            total += Conv(cout, 3, 1, r);
            total += 2.0 * 3 * 16 * r * r / 4; // skip upsampling FIR (depthwise, stride 2)
            cin = cout;
        }
        return total;
    }
}
