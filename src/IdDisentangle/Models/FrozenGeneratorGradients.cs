using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Models;

/// <summary>
/// The backward pass of a frozen StyleGAN2 generator's batched layers, written by hand so that autograd keeps only
/// what the gradient with respect to the latent needs. Training backpropagates through G to w but never updates G.
/// Composed of libtorch operations, a styled convolution z = lrelu(conv(x * s, W) * d + noise + b) keeps x * s (the
/// convolution saves its input even when its weight is frozen), v = conv(x * s, W) (for the gradient of d), the
/// transposed convolution's output (the blur saves it) and z: up to four full activations per layer. Here a layer
/// keeps only its input x (the previous layer's z) and z, and needs no v: dL/dd = sum dL/d(v d) v, and v d is the
/// pre-activation minus noise and bias, where dL/d(pre) pre = dL/dz z because leaky ReLU is positively homogeneous.
/// </summary>
internal static class FrozenGeneratorGradients
{
    /// <summary>What a styled convolution computes besides its tensors.</summary>
    internal sealed record StyledConvSpec(bool Upsample, int BlurPadding, double? Clamp);

    const double Slope = 0.2;

    /// <summary>
    /// z = clamp(lrelu(conv(x * s, W) * d + noise + bias)): x [N, in, H, W], s [N, in], d [N, out] (demodulation
    /// times the activation gain), noise and bias already scaled, W the frozen [out, in, 3, 3] weight (scale
    /// included), blurKernel the depthwise FIR after an upsampling (stride-2 transposed) convolution, else null.
    /// </summary>
    public static Tensor StyledConv(
        Tensor x,
        Tensor s,
        Tensor d,
        Tensor noise,
        Tensor bias,
        Tensor weight,
        Tensor? blurKernel,
        StyledConvSpec spec
    ) => StyledConvFunction.apply(x, s, d, noise, bias, weight, blurKernel!, spec);

    /// <summary>conv(x * s, W) for the 1x1 RGB convolution (no demodulation): x [N, in, H, W], s [N, in].</summary>
    public static Tensor ToRgb(Tensor x, Tensor s, Tensor weight) => ToRgbFunction.apply(x, s, weight);

    internal sealed class StyledConvFunction : autograd.SingleTensorFunction<StyledConvFunction>
    {
        public override string Name => "FrozenStyledConv";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (x, s, d, noise, bias) = (
                (Tensor)vars[0],
                (Tensor)vars[1],
                (Tensor)vars[2],
                (Tensor)vars[3],
                (Tensor)vars[4]
            );
            var (weight, blurKernel, spec) = ((Tensor)vars[5], vars[6] as Tensor, (StyledConvSpec)vars[7]);
            long n = x.shape[0];
            Tensor z;
            using (var scope = torch.NewDisposeScope())
            {
                var u = x * s.view(n, -1, 1, 1);
                var v = spec.Upsample
                    ? StyleGan2Generator.ModulatedConv2d.UpsampleAndBlur(
                        u,
                        weight.transpose(0, 1),
                        blurKernel!,
                        spec.BlurPadding
                    )
                    : F.conv2d(u, weight, padding: [1, 1]);
                v.mul_(d.view(n, -1, 1, 1)).PlusInPlace(noise).PlusInPlace(bias);
                z = v.LeakyReluInPlace(Slope);
                if (spec.Clamp is { } c)
                    z.ClampInPlace(-c, c);
                z.MoveToOuterDisposeScope();
            }
            ctx.save_for_backward([x, s, d, noise, bias, weight, blurKernel!, z]);
            ctx.save_data("spec", spec);
            return z;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradZ)
        {
            var spec = (StyledConvSpec)ctx.get_data("spec");
            using var scope = torch.NewDisposeScope();
            var saved = ctx.get_saved_variables();
            var (x, s, d, noise, bias, weight, blurKernel, z) = (
                saved[0],
                saved[1],
                saved[2],
                saved[3],
                saved[4],
                saved[5],
                saved[6],
                saved[7]
            );
            long n = x.shape[0];
            gradZ = LayoutOf(z, gradZ);
            var dView = d.view(n, -1, 1, 1);
            if (spec.Clamp is { } c) // no gradient where the clamp held the value
            {
                var held = gradZ.mul(StepFactor(z.abs().neg_().PlusInPlace(c), 0.0, 1.0));
                gradZ.Dispose();
                gradZ = held;
            }
            // dL/d(v d) = dL/dz times the leaky ReLU's slope, and dL/dv = that times d.
            var gradV = StepFactor(z, Slope, 1.0).mul_(dView).mul_(gradZ);
            // dL/dd = sum_hw dL/d(v d) v, where v d = pre-activation - noise - bias, and dL/d(pre) pre = dL/dz z
            // (the slope cancels): no need to recover v.
            var gradD = gradZ
                .mul(z)
                .sum([2, 3])
                .sub_(SpatialDot(gradV, noise).div_(d))
                .sub_(gradV.sum([2, 3]).div_(d).mul_(bias.view(1, -1)))
                .div_(d);
            gradZ.Dispose();
            Tensor gradU;
            if (spec.Upsample)
            {
                // The blur's kernel is symmetric, so its adjoint is the same depthwise filter with the other padding.
                int k = (int)blurKernel.shape[2];
                var gradT = F.conv2d(
                    gradV,
                    blurKernel,
                    padding: [k - 1 - spec.BlurPadding, k - 1 - spec.BlurPadding],
                    groups: weight.shape[0]
                );
                gradV.Dispose();
                gradU = F.conv2d(gradT, weight.transpose(0, 1).contiguous(), strides: [2, 2]);
                gradT.Dispose();
            }
            else
            {
                // The adjoint of a padded 3x3 convolution as a convolution (faster in oneDNN than the transposed one).
                gradU = F.conv2d(gradV, weight.flip(2, 3).transpose(0, 1).contiguous(), padding: [1, 1]);
                gradV.Dispose();
            }
            var gradS = (gradU * x).sum([2, 3]);
            var gradX = gradU.mul_(s.view(n, -1, 1, 1));
            return GradientReturns.Keep(gradX, gradS, gradD, null, null, null, null, null);
        }
    }

    /// <summary>
    /// <paramref name="low"/> where t &lt;= 0, <paramref name="high"/> where t &gt; 0 (t normal or zero): t times the
    /// inverse of the smallest normal number, clamped, which libtorch runs several times faster than torch.where.
    /// </summary>
    internal static Tensor StepFactor(Tensor t, double low, double high)
    {
        double big = t.dtype switch
        {
            ScalarType.Float64 => Math.Pow(2, 1022),
            ScalarType.Float32 => Math.Pow(2, 126),
            _ => throw new ArgumentException($"float32 or float64 expected, got {t.dtype}"),
        };
        return t.Times(big).ClampInPlace(low, high);
    }

    /// <summary>
    /// <paramref name="gradient"/> in the memory layout of <paramref name="like"/> (disposing the original when it
    /// converts): gradients arrive from the image in NCHW, the activations are channels-last, and elementwise
    /// operations and convolutions across the two layouts run at a fraction of their speed.
    /// </summary>
    static Tensor LayoutOf(Tensor like, Tensor gradient)
    {
        if (!MemoryLayout.IsChannelsLast(like) || gradient.stride(1) == 1)
            return gradient;
        var converted = MemoryLayout.ChannelsLast(gradient);
        gradient.Dispose();
        return converted;
    }

    /// <summary>
    /// sum over h, w of a [N, C, H, W] and b [N or 1, 1, H, W], as [N, C]: a matrix product on the channels-last
    /// layout, where the broadcast product and sum would be slow.
    /// </summary>
    static Tensor SpatialDot(Tensor a, Tensor b)
    {
        long n = a.shape[0],
            c = a.shape[1],
            hw = a.shape[2] * a.shape[3];
        var rows = b.reshape(b.shape[0], 1, hw);
        if (a.stride(1) != 1)
            return a.reshape(n, c, hw).matmul(rows.transpose(1, 2)).view(n, c);
        return rows.matmul(a.permute(0, 2, 3, 1).reshape(n, hw, c)).view(n, c);
    }

    internal sealed class ToRgbFunction : autograd.SingleTensorFunction<ToRgbFunction>
    {
        public override string Name => "FrozenToRgb";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (x, s, weight) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2]);
            Tensor y;
            using (var scope = torch.NewDisposeScope())
                y = F.conv2d(x * s.view(x.shape[0], -1, 1, 1), weight).MoveToOuterDisposeScope();
            ctx.save_for_backward([x, s, weight]);
            return y;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradY)
        {
            using var scope = torch.NewDisposeScope();
            var saved = ctx.get_saved_variables();
            var (x, s, weight) = (saved[0], saved[1], saved[2]);
            // The adjoint of the 1x1 convolution as a matrix product over the channels, giving channels-last. (As
            // a convolution of the 3-channel gradient in channels-last, libtorch 2.10 gets some shapes wrong:
            // bench/README.md.)
            var gradU = gradY.permute(0, 2, 3, 1).matmul(weight.view(weight.shape[0], -1)).permute(0, 3, 1, 2);
            gradY.Dispose();
            var gradS = (gradU * x).sum([2, 3]);
            var gradX = gradU.mul_(s.view(x.shape[0], -1, 1, 1));
            return GradientReturns.Keep(gradX, gradS, null);
        }
    }

    /// <summary>
    /// TorchSharp hands a backward's results to libtorch after it returns, and libtorch takes its own reference; the
    /// managed handles are released at the next backward of these functions on the same thread (holding them to the
    /// end of the step would keep every layer's input gradient alive; libtorch runs a CPU graph's backward on the
    /// thread that called it), the last few, small ones at the one after.
    /// </summary>
    static class GradientReturns
    {
        [ThreadStatic]
        static List<Tensor>? pending;

        public static List<Tensor> Keep(params Tensor?[] gradients)
        {
            pending ??= [];
            foreach (var t in pending)
                t.Dispose();
            pending.Clear();
            var list = new List<Tensor>(gradients.Length);
            foreach (var g in gradients)
            {
                if (g is not null)
                    pending.Add(g.DetachFromDisposeScope());
                list.Add(g!);
            }
            return list;
        }
    }
}
