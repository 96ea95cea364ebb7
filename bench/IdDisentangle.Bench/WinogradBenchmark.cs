using System.Diagnostics;
using IdDisentangle.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Bench;

/// <summary>
/// The 3x3 convolutions of the standard 256 generator at batch 1 through oneDNN and as Winograd's F(4x4, 3x3)
/// (scales folded in, as the generator runs them), with the relative error of each against float64; then the
/// whole forward both ways, alternating in one process so that the VM's drift hits both alike.
/// </summary>
internal static class WinogradBenchmark
{
    public static Dictionary<string, object> Run(Options o)
    {
        torch.set_num_threads(o.Threads);
        using var noGrad = torch.inference_mode();
        var result = new Dictionary<string, object> { ["bench"] = "winograd", ["threads"] = o.Threads };
        int iters = o.Iters > 0 ? o.Iters : 7;
        foreach (var (c, size) in new[] { (512, 16), (512, 32), (512, 64), (256, 128), (128, 256) })
        {
            using var scope = torch.NewDisposeScope();
            var x = MemoryLayout.ChannelsLast(torch.randn(1, c, size, size));
            var w = MemoryLayout.ChannelsLast(torch.randn(c, c, 3, 3));
            var u = WinogradConvolution.TransformWeight(w);
            var ug = WinogradConvolution.ForGroupedProducts(u);
            var s = torch.rand(1, c) + 0.5;
            var d = torch.rand(1, c) + 0.5;
            var ms = Alternating(
                iters,
                () => nn.functional.conv2d(x, w, padding: [1, 1]),
                () => WinogradConvolution.Convolve(x, u, s, d, grouped: false),
                () => WinogradConvolution.Convolve(x, ug, s, d, grouped: true)
            );
            var x64 = x.to(ScalarType.Float64) * s.view(1, c, 1, 1);
            var reference = nn.functional.conv2d(x64, w.to(ScalarType.Float64), padding: [1, 1]) * d.view(1, c, 1, 1);
            var plain = nn.functional.conv2d(x * s.view(1, c, 1, 1), w, padding: [1, 1]) * d.view(1, c, 1, 1);
            double scale = reference.abs().max().item<double>();
            double Error(Tensor y) => (y - reference).abs().max().item<double>() / scale;
            result[$"{c}ch_{size}px"] = new Dictionary<string, double>
            {
                ["direct_ms"] = ms[0],
                ["winograd_batched_ms"] = ms[1],
                ["winograd_grouped_ms"] = ms[2],
                ["winograd_batched_rel_error"] = Error(WinogradConvolution.Convolve(x, u, s, d, grouped: false)),
                ["winograd_grouped_rel_error"] = Error(WinogradConvolution.Convolve(x, ug, s, d, grouped: true)),
                ["direct_rel_error"] = Error(plain),
            };
        }
        torch.manual_seed(0);
        var config = StyleGan2Config.Standard(o.Size);
        using var g = new StyleGan2Generator(config);
        g.eval();
        var latent = g.Map(torch.randn(1, config.StyleDim)).detach();
        var variants = new (string Name, bool? Winograd)[] { ("direct", false), ("winograd", null) };
        var times = variants.Select(_ => new List<double>()).ToArray();
        for (int round = 0; round < iters + 1; round++)
        for (int v = 0; v < variants.Length; v++)
        {
            g.Winograd = variants[v].Winograd;
            using var scope = torch.NewDisposeScope();
            var sw = Stopwatch.StartNew();
            g.Synthesize(latent);
            if (round > 0)
                times[v].Add(sw.Elapsed.TotalMilliseconds);
        }
        for (int v = 0; v < variants.Length; v++)
        {
            times[v].Sort();
            result[$"forward_{variants[v].Name}_ms"] = times[v][times[v].Count / 2];
        }
        return result;
    }

    /// <summary>The median milliseconds of each variant, run in turn round after round (one warm-up round).</summary>
    static double[] Alternating(int rounds, params Func<Tensor>[] variants)
    {
        var times = variants.Select(_ => new List<double>()).ToArray();
        for (int round = 0; round <= rounds; round++)
        for (int v = 0; v < variants.Length; v++)
        {
            var sw = Stopwatch.StartNew();
            using (variants[v]()) { }
            if (round > 0)
                times[v].Add(sw.Elapsed.TotalMilliseconds);
        }
        return times.Select(t => t.Order().ElementAt(t.Count / 2)).ToArray();
    }
}
