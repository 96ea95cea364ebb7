using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Models.Identity;

/// <summary>
/// The paper's identity encoder: a ResNet-50 trained on VGGFace2, whose network is imported from its complete Keras
/// model file (<c>vggface2.h5</c>, by <c>VggFace2Weights.Load</c>); the embedding is the output of the layer before
/// the classifier. Input to <see cref="forward"/>: [N,3,224,224] as <see cref="Prepare"/> makes it.
/// </summary>
internal sealed class VggFace2 : nn.Module<Tensor, Tensor>
{
    public const int InputSize = 224;

    /// <summary>The VGGFace2 training set's mean, in BGR order and 0..255 units.</summary>
    public static readonly float[] MeanBgr = [91.4953f, 103.8827f, 131.0912f];

    readonly nn.Module<Tensor, Tensor> net;

    /// <param name="embeddingNet">The imported network up to its embedding layer.</param>
    /// <param name="source">The file it came from, for errors.</param>
    public VggFace2(nn.Module<Tensor, Tensor> embeddingNet, string source)
        : base(nameof(VggFace2))
    {
        net = embeddingNet;
        register_module("net", net);
        using var noGrad = torch.no_grad();
        using var probe = net.forward(torch.zeros(1, 3, InputSize, InputSize));
        if (probe.dim() != 2)
            throw new InvalidDataException(
                $"{source}: the network gives [{string.Join(",", probe.shape)}], not an embedding vector"
            );
        EmbeddingDim = (int)probe.shape[1];
    }

    public int EmbeddingDim { get; }

    /// <summary>
    /// The paper's preprocessing of [N,3,H,W] in [0,1]: rows and columns 10%-90% (the face of an FFHQ-aligned
    /// image), bilinear resize to 256, centre crop 224, 0..255, RGB to BGR, minus <see cref="MeanBgr"/>.
    /// Differentiable.
    /// </summary>
    public static Tensor Prepare(Tensor rgb01)
    {
        long h = rgb01.shape[2],
            w = rgb01.shape[3];
        long y0 = (long)(0.1 * h),
            y1 = (long)(0.9 * h),
            x0 = (long)(0.1 * w),
            x1 = (long)(0.9 * w);
        var x = rgb01[.., .., (int)y0..(int)y1, (int)x0..(int)x1];
        x = Imaging.ImageOps.Resize(x, 256, 256, Imaging.ResizeFilter.Bilinear);
        int o = (256 - InputSize) / 2;
        x = x[.., .., o..(o + InputSize), o..(o + InputSize)].Times(255f);
        var mean = torch.tensor(MeanBgr, dtype: x.dtype, device: x.device).view(1, 3, 1, 1);
        return x.flip(1) - mean;
    }

    public override Tensor forward(Tensor bgrCentred) => net.forward(bgrCentred);
}
