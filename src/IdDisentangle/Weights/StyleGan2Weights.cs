using System.Text.RegularExpressions;
using IdDisentangle.Models;
using IdDisentangle.Runtime;
using IdDisentangle.Weights.Pickle;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Weights;

/// <summary>
/// StyleGAN2 checkpoints in rosinality's PyTorch layout: a training checkpoint (<c>g</c>, <c>d</c>, <c>g_ema</c>,
/// optimiser states, an argparse namespace, <c>latent_avg</c>) or a bare state dict. The configuration (resolution,
/// style width, mapping depth, channels per resolution) is read off the tensors; no flags are needed.
/// </summary>
internal static partial class StyleGan2Weights
{
    /// <summary>Samples used to estimate the mean w when a file has no <c>latent_avg</c>.</summary>
    public const int MeanLatentSamples = 10_000;

    public static StyleGan2Generator Load(string path, out GeneratorLoadReport report)
    {
        var root = TorchCheckpoint.Load(path);
        var notes = new List<string>();
        PyDict? stateDict;
        string layout;
        Tensor? latentAvg = null;
        if (root is PyDict d && d.GetOrNull("g_ema") is PyDict ema)
        {
            stateDict = ema;
            layout = "training checkpoint (g_ema)";
            latentAvg = d.GetOrNull("latent_avg") as Tensor;
        }
        else if (root is PyDict d2 && d2.GetOrNull("state_dict") is PyDict inner)
        {
            stateDict = inner;
            layout = "state_dict wrapper";
            latentAvg = d2.GetOrNull("latent_avg") as Tensor;
        }
        else if (root is PyDict bare && bare.Values.All(v => v is Tensor))
        {
            stateDict = bare;
            layout = "bare state dict";
            latentAvg = bare.GetOrNull("latent_avg") as Tensor;
        }
        else
        {
            string keys = root is PyDict rd ? string.Join(", ", rd.Keys.Take(10)) : root?.GetType().Name ?? "None";
            throw new WeightMismatchException(
                $"{path}: not a StyleGAN2 generator checkpoint (expected a g_ema state dict or a bare state dict; found {keys})"
            );
        }

        var tensors = TorchCheckpoint.Tensors(stateDict);
        tensors.Remove("latent_avg");
        var config = InferConfig(tensors, path);
        var g = new StyleGan2Generator(config);
        StateDicts.Assign(g, tensors, path);
        g.eval();
        foreach (var p in g.parameters())
            p.requires_grad = false;

        if (latentAvg is not null)
            g.MeanLatent = latentAvg.to(ScalarType.Float32);
        else
        {
            using var _ = torch.no_grad();
            using var rng = new torch.Generator(seed: 0);
            var sum = torch.zeros(config.StyleDim);
            for (int done = 0; done < MeanLatentSamples; done += 1000)
                sum = sum.Plus(g.Map(torch.randn([1000, config.StyleDim], generator: rng)).sum([0]));
            g.MeanLatent = sum.DividedBy(MeanLatentSamples);
            notes.Add($"latent_avg not in the file: mean w computed from {MeanLatentSamples} mapped samples (seed 0)");
        }
        report = new GeneratorLoadReport(path, "StyleGAN2", layout, latentAvg is not null, notes);
        return g;
    }

    /// <summary>Reads the configuration off rosinality state-dict tensors.</summary>
    public static StyleGan2Config InferConfig(IReadOnlyDictionary<string, Tensor> sd, string file)
    {
        Tensor Need(string key) =>
            sd.TryGetValue(key, out var t)
                ? t
                : throw new WeightMismatchException(
                    $"{file}: not a StyleGAN2 generator in the rosinality layout: missing {key}"
                );
        int styleDim = (int)Need("style.1.weight").shape[1];
        int mapping = sd
            .Keys.Select(k => MappingKey().Match(k))
            .Where(m => m.Success)
            .Select(m => int.Parse(m.Groups[1].Value))
            .DefaultIfEmpty(0)
            .Max();
        int rgbs =
            sd.Keys.Select(k => ToRgbKey().Match(k))
                .Where(m => m.Success)
                .Select(m => int.Parse(m.Groups[1].Value))
                .DefaultIfEmpty(-1)
                .Max() + 1;
        if (rgbs == 0)
            throw new WeightMismatchException(
                $"{file}: no to_rgbs.* tensors: not a StyleGAN2 generator in the rosinality layout"
            );
        int logSize = rgbs + 2;
        var channels = new Dictionary<int, int> { [4] = (int)Need("conv1.conv.weight").shape[1] };
        for (int i = 3; i <= logSize; i++)
            channels[1 << i] = (int)Need($"convs.{2 * (i - 3)}.conv.weight").shape[1];
        return new StyleGan2Config(1 << logSize, styleDim, mapping, channels);
    }

    /// <summary>
    /// Saves in the rosinality layout that PyTorch tools read: <c>{"g_ema": state_dict, "latent_avg": mean w}</c>.
    /// </summary>
    public static void Save(StyleGan2Generator g, string path)
    {
        var sd = g.state_dict().ToDictionary(p => p.Key, p => (object)p.Value);
        TorchCheckpoint.Save(path, new Dictionary<string, object> { ["g_ema"] = sd, ["latent_avg"] = g.MeanLatent });
    }

    [GeneratedRegex(@"^style\.(\d+)\.weight$")]
    private static partial Regex MappingKey();

    [GeneratedRegex(@"^to_rgbs\.(\d+)\.")]
    private static partial Regex ToRgbKey();
}
