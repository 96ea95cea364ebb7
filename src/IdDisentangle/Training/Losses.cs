using IdDisentangle.Runs;
using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Training;

/// <summary>The terms of the paper's objective, as small functions. Images are in [0,1] unless said.</summary>
internal static class Losses
{
    /// <summary>Landmark points the landmark loss keeps: 17..67 (the jawline 0..16 is dropped, it follows
    /// identity).</summary>
    public const int FirstNonJawPoint = 17;

    /// <summary>L_id = mean | E_id(out)/|E_id(out)| - E_id(I_id)/|E_id(I_id)| |, the L1 between L2-normalised
    /// embeddings.</summary>
    public static Tensor Identity(Tensor embeddingOut, Tensor embeddingId) =>
        (F.normalize(embeddingOut, dim: 1) - F.normalize(embeddingId, dim: 1)).abs().mean();

    /// <summary>
    /// L_lnd = mean over points 17..67 and both coordinates of (p_attr - p_out)^2, in the landmark network's pixel
    /// units (inputs [N,68,2]).
    /// </summary>
    public static Tensor Landmarks(Tensor landmarksOut, Tensor landmarksAttr) =>
        (
            landmarksOut.narrow(1, FirstNonJawPoint, landmarksOut.shape[1] - FirstNonJawPoint)
            - landmarksAttr.narrow(1, FirstNonJawPoint, landmarksAttr.shape[1] - FirstNonJawPoint)
        )
            .Squared()
            .mean();

    /// <summary>
    /// The pixel weights of the L1 term, the paper's inverse_gaussian_image: g, a Gaussian centred on the image
    /// (sigma = int(80 R / 256)) normalised to sum 1, inverted as max(g) + min(g) - g (so even the centre keeps a
    /// little weight) and normalised to sum 1. The border, where background and hair carry attributes, weighs more.
    /// [1,1,R,R].
    /// </summary>
    public static Tensor InverseGaussianMask(int size, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        double sigma = (int)(80.0 * size / 256.0),
            centre = (size - 1) / 2.0;
        var d = KeptScalars.Arange(size, ScalarType.Float64).Minus(centre);
        var g = torch.exp((-d.Squared().view(-1, 1).Plus(d.Squared().view(1, -1))).DividedBy(2 * sigma * sigma));
        g = g / g.sum();
        var m = g.max().Plus(g.min()) - g;
        return (m / m.sum()).to(dtype).view(1, 1, size, size).to(device ?? torch.CPU);
    }

    /// <summary>
    /// The paper's masked L1, Keras's MeanAbsoluteError(Reduction.SUM) with the mask as sample weight: per pixel the
    /// mean over channels of |a - b|, weighted by the mask (which sums to 1 per image) and summed over pixels and over
    /// the batch. So it grows with the batch size: 0.16 B times the mean image's weighted L1 inside L_rec.
    /// </summary>
    public static Tensor MaskedL1(Tensor a, Tensor b, Tensor mask) =>
        ((a - b).abs().mean([1], keepdim: true) * mask).sum();

    /// <summary>L_rec (same-identity steps): 0.84 (1 - MS-SSIM(out, target)) + 0.16 masked L1, or the masked L1
    /// alone.</summary>
    public static Tensor Reconstruction(Tensor output, Tensor target, Tensor mask, PixelLoss kind = PixelLoss.MsSsimL1)
    {
        var l1 = MaskedL1(output, target, mask);
        if (kind == PixelLoss.L1)
            return l1;
        return MsSsim.Compute(output, target).mean().SubtractedFrom(1).Times(0.84).Plus(l1.Times(0.16));
    }

    /// <summary>
    /// Non-saturating adversarial loss of the encoders and mapper: lambda_gan softplus(-D(M(...))), the paper's
    /// BinaryCrossentropy(from_logits) against ones (lambda_gan 1, or 0.5 with --unified).
    /// </summary>
    public static Tensor GeneratorAdversarial(Tensor fakeLogits, double lambdaGan = 1) =>
        F.softplus(-fakeLogits).mean().Times(lambdaGan);

    /// <summary>Logistic loss of D_W: lambda_gan (softplus(D(w_fake)) + softplus(-D(w_real))), StyleGAN's
    /// D_logistic.</summary>
    public static Tensor DiscriminatorLogistic(Tensor realLogits, Tensor fakeLogits, double lambdaGan = 1) =>
        F.softplus(fakeLogits).mean().Plus(F.softplus(-realLogits).mean()).Times(lambdaGan);

    /// <summary>
    /// R1 penalty (gamma / 2) E[ |grad_w D(w_real)|^2 ]: <paramref name="realW"/> must require grad and
    /// <paramref name="realLogits"/> come from it. The graph is kept (create_graph) so the penalty trains D.
    /// </summary>
    public static Tensor R1Penalty(Tensor realLogits, Tensor realW, double gamma)
    {
        var grads = torch.autograd.grad([realLogits.sum()], [realW], retain_graph: true, create_graph: true)[0];
        return grads.Squared().sum([1]).mean().Times(gamma / 2);
    }
}
