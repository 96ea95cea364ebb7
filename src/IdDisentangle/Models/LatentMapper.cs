using IdDisentangle.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Models;

/// <summary>
/// M: the mapping from the concatenated identity and attribute codes to a latent w of the generator,
/// concat(z_id, z_attr) -> 2048 -> 1024 -> 512 -> style_dim, leaky ReLU (0.2) between layers and none after the
/// last. The input width follows the chosen encoders (128 + 2048 with face-api and InceptionV3).
/// </summary>
internal sealed class LatentMapper : nn.Module<Tensor, Tensor, Tensor>
{
    public static readonly int[] HiddenWidths = [2048, 1024, 512];

    readonly ModuleList<Linear> layers;

    public LatentMapper(int identityDim, int attributeDim, int styleDim = 512, Generator? init = null)
        : base(nameof(LatentMapper))
    {
        IdentityDim = identityDim;
        AttributeDim = attributeDim;
        StyleDim = styleDim;
        int[] widths = [identityDim + attributeDim, .. HiddenWidths, styleDim];
        layers = new ModuleList<Linear>();
        for (int i = 0; i + 1 < widths.Length; i++)
            layers.Add(nn.Linear(widths[i], widths[i + 1]));
        RegisterComponents();
        // The paper's LatentMappingNetwork: Keras's default Glorot-uniform kernels for the first two layers,
        // get_weights() (He-style variance scaling for leaky ReLU 0.2) for the last two, zero biases throughout.
        // Training passes a seeded init generator of its own: a run must not depend on what else in the process
        // draws from libtorch's global generator.
        for (int i = 0; i < layers.Count; i++)
            KerasInit.Dense(
                layers[i],
                i < 2 ? KerasInit.Kernel.GlorotUniform : KerasInit.Kernel.LeakyReluVarianceScaling,
                init
            );
    }

    public int IdentityDim { get; }
    public int AttributeDim { get; }
    public int StyleDim { get; }

    /// <summary>w = M(z_id, z_attr), [N, style_dim].</summary>
    public override Tensor forward(Tensor zId, Tensor zAttr)
    {
        var x = torch.cat([zId, zAttr], 1);
        for (int i = 0; i < layers.Count; i++)
        {
            x = layers[i].call(x);
            if (i < layers.Count - 1)
                x = x.LeakyRelu(0.2);
        }
        return x;
    }
}

/// <summary>D_W: tells mapped codes from the generator's own w. style_dim -> 256 -> 128 -> 64 -> 1, leaky ReLU 0.2; a
/// logit.</summary>
internal sealed class WDiscriminator : nn.Module<Tensor, Tensor>
{
    public static readonly int[] HiddenWidths = [256, 128, 64];

    readonly ModuleList<Linear> layers;

    public WDiscriminator(int styleDim = 512, Generator? init = null)
        : base(nameof(WDiscriminator))
    {
        int[] widths = [styleDim, .. HiddenWidths, 1];
        layers = new ModuleList<Linear>();
        for (int i = 0; i + 1 < widths.Length; i++)
            layers.Add(nn.Linear(widths[i], widths[i + 1]));
        RegisterComponents();
        foreach (var layer in layers)
            KerasInit.Dense(layer, KerasInit.Kernel.LeakyReluVarianceScaling, init); // the paper's W_D
    }

    /// <summary>w [N, style_dim] -> logit [N, 1] (positive: looks like the generator's own w).</summary>
    public override Tensor forward(Tensor w)
    {
        var x = w;
        for (int i = 0; i < layers.Count; i++)
        {
            x = layers[i].call(x);
            if (i < layers.Count - 1)
                x = x.LeakyRelu(0.2);
        }
        return x;
    }
}

/// <summary>The initialisers the paper's Keras layers use, for PyTorch-layout Linear layers ([out, in]).</summary>
internal static class KerasInit
{
    public enum Kernel
    {
        /// <summary>Keras's Dense default: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).</summary>
        GlorotUniform,

        /// <summary>
        /// The paper's get_weights(0.2): VarianceScaling(scale = 2 / (1 + 0.2^2)), fan_in, truncated normal, i.e.
        /// N(0, s^2) cut at 2 s with s = sqrt(scale / fan_in) / 0.87962566 (the truncation's variance correction).
        /// </summary>
        LeakyReluVarianceScaling,
    }

    public static void Dense(Linear layer, Kernel kernel, Generator? generator)
    {
        using var noGrad = torch.no_grad();
        var w = layer.weight!;
        long fanOut = w.shape[0],
            fanIn = w.shape[1];
        if (kernel == Kernel.GlorotUniform)
        {
            double limit = Math.Sqrt(6.0 / (fanIn + fanOut));
            w.uniform_(-limit, limit, generator);
        }
        else
        {
            // Inverse-CDF sampling of N(0, std^2) cut at +-2 std: erfinv of U(erf(-sqrt 2), erf(sqrt 2)), times std
            // sqrt 2.
            double std = Math.Sqrt(2.0 / (1 + 0.2 * 0.2) / fanIn) / 0.87962566103423978;
            const double Erf2 = 0.95449973610364158; // erf(2 / sqrt 2): the mass within two standard deviations
            w.uniform_(-Erf2, Erf2, generator).erfinv_().TimesInPlace(std * Math.Sqrt(2));
        }
        if (layer.bias is { } b)
            nn.init.zeros_(b);
    }
}
