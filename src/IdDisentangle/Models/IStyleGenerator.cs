using static TorchSharp.torch;

namespace IdDisentangle.Models;

/// <summary>Where the per-layer noise inputs of a style generator come from.</summary>
internal enum NoiseMode
{
    /// <summary>The fixed noise stored with the generator (deterministic images).</summary>
    Const,

    /// <summary>Fresh Gaussian noise at every call.</summary>
    Random,
}

/// <summary>
/// A frozen, pretrained style-based generator as the method sees it: a mapping z -> w, a W space with a mean, and
/// a synthesis network that renders a W+ code [N, NumLatents, StyleDim] to an image [N,3,R,R] in about [-1,1].
/// StyleGAN2 and StyleGAN (v1) both implement it, so training and inference do not care which one they drive.
/// </summary>
internal interface IStyleGenerator
{
    /// <summary>Output resolution R (images are R x R).</summary>
    int Resolution { get; }

    /// <summary>Width of z and w.</summary>
    int StyleDim { get; }

    /// <summary>Rows of a W+ code: one style input per synthesis layer.</summary>
    int NumLatents { get; }

    /// <summary>The mean w (truncation centre), [StyleDim].</summary>
    Tensor MeanLatent { get; }

    /// <summary>The device the weights live on.</summary>
    Device Device { get; }

    /// <summary>z [N,StyleDim] -> w [N,StyleDim].</summary>
    Tensor Map(Tensor z);

    /// <summary>
    /// Truncation towards the mean: w [N,D] or W+ [N,L,D]. Layers below <paramref name="cutoff"/> move by psi; null
    /// is the family's own rule (StyleGAN2: every layer; StyleGAN (v1): the first 8, as NVIDIA's and the paper's code).
    /// </summary>
    Tensor Truncate(Tensor w, double psi, int? cutoff = null);

    /// <summary>Broadcasts w [N,D] to W+ [N,L,D]; a W+ input is returned as it is.</summary>
    Tensor ToWPlus(Tensor w);

    /// <summary>W+ [N,L,D] (or w [N,D], broadcast) -> image [N,3,R,R].</summary>
    Tensor Synthesize(Tensor w, NoiseMode noise = NoiseMode.Const);
}

internal static class StyleGeneratorPrecision
{
    /// <summary>
    /// Makes <paramref name="g"/> compute in <paramref name="precision"/>: StyleGAN2 generators (also inside a
    /// resized one) take bf16; fp32 is every generator's own.
    /// </summary>
    public static void UsePrecision(this IStyleGenerator g, Runtime.ComputePrecision precision)
    {
        switch (g)
        {
            case StyleGan2Generator sg2:
                sg2.ComputeType = precision == Runtime.ComputePrecision.Bf16 ? ScalarType.BFloat16 : null;
                break;
            case ResizedGenerator resized:
                resized.Inner.UsePrecision(precision);
                break;
            default:
                if (precision != Runtime.ComputePrecision.Fp32)
                    throw new Runtime.SettingException(
                        Runtime.Setting.Precision,
                        "bf16",
                        $"implemented for StyleGAN2 generators, not for {g.GetType().Name}"
                    );
                break;
        }
    }
}
