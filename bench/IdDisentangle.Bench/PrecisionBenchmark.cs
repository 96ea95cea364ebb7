using IdDisentangle.Models;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Bench;

/// <summary>
/// The StyleGAN2 256 forward in bfloat16 against float32, batch 1 without autograd: time per image in each (in
/// turns, so that the VM's drift hits both), the image difference (PSNR on [0,1]) and how far face-api.js's
/// recognition net moves the renders' descriptors (Euclidean; 0.6 is its same-person threshold). Random weights: no
/// 256 FFHQ generator can be downloaded here, so the renders are textures, not faces.
/// </summary>
internal static class PrecisionBenchmark
{
    public static Dictionary<string, object> Run(Options o)
    {
        torch.set_num_threads(o.Threads);
        int samples = o.Iters > 0 ? o.Iters : 8;
        using var g = PipelineBenchmarks.StandardGenerator(o.Size);
        var store = new ModelStore();
        using var eId = new IdentityEncoder(PretrainedNetworks.FaceRecognition(store), Imaging.FaceCrop.FfhqFaceApi);
        eId.eval();
        using var noGrad = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(2);
        var ws = g.Map(torch.randn(samples, g.StyleDim));

        Tensor Render(int i, ScalarType type)
        {
            g.ComputeType = type == ScalarType.Float32 ? null : type;
            return g.Synthesize(ws.narrow(0, i, 1));
        }
        Render(0, ScalarType.Float32).Dispose(); // warm-up of both paths
        Render(0, ScalarType.BFloat16).Dispose();
        var fp32Times = new List<double>();
        var bf16Times = new List<double>();
        var psnr = new List<double>();
        var descriptorMoves = new List<double>();
        for (int i = 0; i < samples; i++)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var a = Render(i, ScalarType.Float32);
            fp32Times.Add(sw.Elapsed.TotalSeconds);
            sw.Restart();
            var b = Render(i, ScalarType.BFloat16);
            bf16Times.Add(sw.Elapsed.TotalSeconds);
            var a01 = a.add(1).div(2).clamp(0, 1);
            var b01 = b.add(1).div(2).clamp(0, 1);
            double mse = (a01 - b01).square().mean().ToDouble();
            psnr.Add(10 * Math.Log10(1 / Math.Max(mse, 1e-12)));
            descriptorMoves.Add((eId.call(a01) - eId.call(b01)).norm().ToDouble());
        }
        g.ComputeType = null;
        double fp32 = Median(fp32Times),
            bf16 = Median(bf16Times);
        return new()
        {
            ["bench"] = "precision",
            ["size"] = o.Size,
            ["threads"] = o.Threads,
            ["samples"] = samples,
            ["fp32_ms"] = fp32 * 1000,
            ["bf16_ms"] = bf16 * 1000,
            ["speedup"] = fp32 / bf16,
            ["psnr_db_mean"] = psnr.Average(),
            ["psnr_db_min"] = psnr.Min(),
            ["descriptor_move_mean"] = descriptorMoves.Average(),
            ["descriptor_move_max"] = descriptorMoves.Max(),
            ["huge_pages"] = HugePages.Active,
        };
    }

    static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
