using IdDisentangle.Models.Backbones;
using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Weights;

/// <summary>Loading Keras (and torchvision) ImageNet weights into the attribute backbones.</summary>
internal static class BackboneWeights
{
    /// <summary>Loads Keras InceptionV3 weights (names conv2d_N/kernel, batch_normalization_N/beta, ...).</summary>
    public static void LoadKeras(this InceptionV3 net, IReadOnlyDictionary<string, Tensor> tf, string file)
    {
        static int Number(string key) => int.Parse(key[(key.LastIndexOf('_', key.IndexOf('/')) + 1)..key.IndexOf('/')]);
        var convs = tf
            .Keys.Where(k =>
                k.StartsWith("conv2d", StringComparison.Ordinal) && k.EndsWith("/kernel", StringComparison.Ordinal)
            )
            .OrderBy(k => k == "conv2d/kernel" ? 0 : Number(k))
            .ToList();
        var bns = tf
            .Keys.Where(k =>
                k.StartsWith("batch_normalization", StringComparison.Ordinal)
                && k.EndsWith("/moving_mean", StringComparison.Ordinal)
            )
            .OrderBy(k => k == "batch_normalization/moving_mean" ? 0 : Number(k))
            .Select(k => k[..k.IndexOf('/')])
            .ToList();
        var units = net.UnitsInKerasOrder();
        if (convs.Count != units.Count || bns.Count != units.Count)
            throw new WeightMismatchException(
                $"{file}: {convs.Count} convolutions and {bns.Count} batch norms, InceptionV3 has {units.Count}"
            );
        var sd = new Dictionary<string, Tensor>();
        for (int i = 0; i < units.Count; i++)
        {
            var (name, _) = units[i];
            var kernel = TfjsWeights.ConvFilter(tf[convs[i]]);
            sd[$"{name}.conv.weight"] = kernel;
            string bn = bns[i];
            var beta = tf[$"{bn}/beta"];
            sd[$"{name}.bn.weight"] = tf.TryGetValue($"{bn}/gamma", out var gamma) ? gamma : torch.ones_like(beta);
            sd[$"{name}.bn.bias"] = beta;
            sd[$"{name}.bn.running_mean"] = tf[$"{bn}/moving_mean"];
            sd[$"{name}.bn.running_var"] = tf[$"{bn}/moving_variance"];
            sd[$"{name}.bn.num_batches_tracked"] = torch.tensor(0L);
        }
        StateDicts.Assign(net, sd, file);
        net.PoolExcludesPadding = true;
    }

    /// <summary>Loads a torchvision inception_v3 state dict; the classifier (fc) and the auxiliary head are
    /// ignored.</summary>
    public static void LoadTorchvision(this InceptionV3 net, IReadOnlyDictionary<string, Tensor> sd, string file)
    {
        var kept = sd.Where(p =>
                !p.Key.StartsWith("fc.", StringComparison.Ordinal)
                && !p.Key.StartsWith("AuxLogits.", StringComparison.Ordinal)
            )
            .ToDictionary(p => p.Key, p => p.Value);
        if (!kept.Keys.Any(k => k.EndsWith("num_batches_tracked", StringComparison.Ordinal)))
            foreach (var (name, _) in net.UnitsInKerasOrder())
                kept[$"{name}.bn.num_batches_tracked"] = torch.tensor(0L);
        StateDicts.Assign(net, kept, file);
        net.PoolExcludesPadding = false;
    }

    /// <summary>Keras ResNet50 weights (TensorFlow names and layouts) into the torchvision layout.</summary>
    public static void LoadKeras(this ResNet50 net, IReadOnlyDictionary<string, Tensor> tf, string file)
    {
        if (!net.StrideOnFirst1x1)
            throw new InvalidOperationException("Keras ResNet50 weights need a ResNet50(strideOnFirst1x1: true)");
        var src = new TensorSource(tf, file);
        Tensor Take(string k) => src.Take(k);
        var sd = new Dictionary<string, Tensor>();
        void ConvBn(string conv, string bn, string target, string targetBn)
        {
            sd[$"{target}.weight"] = TfjsWeights.ConvFilter(Take($"{conv}/kernel"));
            // BN(conv + b) with eps 1e-3 == BN'(conv) with mean - b and var + 1e-3 - 1e-5 (torchvision's eps).
            var bias = src.Has($"{conv}/bias") ? Take($"{conv}/bias") : torch.zeros(sd[$"{target}.weight"].shape[0]);
            sd[$"{targetBn}.weight"] = Take($"{bn}/gamma");
            sd[$"{targetBn}.bias"] = Take($"{bn}/beta");
            sd[$"{targetBn}.running_mean"] = Take($"{bn}/moving_mean") - bias;
            sd[$"{targetBn}.running_var"] = Take($"{bn}/moving_variance").Plus(1e-3 - 1e-5);
            sd[$"{targetBn}.num_batches_tracked"] = torch.tensor(0L);
        }
        ConvBn("conv1", "bn_conv1", "conv1", "bn1");
        int[] blocks = [3, 4, 6, 3];
        for (int s = 0; s < 4; s++)
        for (int b = 0; b < blocks[s]; b++)
        {
            string id = $"{s + 2}{(char)('a' + b)}",
                prefix = $"layer{s + 1}.{b}";
            ConvBn($"res{id}_branch2a", $"bn{id}_branch2a", $"{prefix}.conv1", $"{prefix}.bn1");
            ConvBn($"res{id}_branch2b", $"bn{id}_branch2b", $"{prefix}.conv2", $"{prefix}.bn2");
            ConvBn($"res{id}_branch2c", $"bn{id}_branch2c", $"{prefix}.conv3", $"{prefix}.bn3");
            if (b == 0)
                ConvBn($"res{id}_branch1", $"bn{id}_branch1", $"{prefix}.downsample.0", $"{prefix}.downsample.1");
        }
        sd["fc.weight"] = Take("fc1000/kernel").t().contiguous();
        sd["fc.bias"] = Take("fc1000/bias");
        src.RequireAllUsed();
        StateDicts.Assign(net, sd, file);
    }
}
