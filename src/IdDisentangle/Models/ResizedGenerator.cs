using IdDisentangle.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Models;

/// <summary>
/// A generator whose images are area-downsampled to <see cref="Resolution"/> (a 1024 generator used at the paper's
/// 256, as the paper's PyTorch port and pSp pool their generators' output): mapping, W space and truncation are the
/// wrapped generator's.
/// </summary>
internal sealed class ResizedGenerator : nn.Module<Tensor, Tensor>, IStyleGenerator
{
    readonly nn.Module<Tensor, Tensor> generator;

    public ResizedGenerator(IStyleGenerator g, int resolution)
        : base(nameof(ResizedGenerator))
    {
        if (resolution <= 0 || resolution > g.Resolution)
            throw new ArgumentOutOfRangeException(
                nameof(resolution),
                $"an output size between 1 and the generator's {g.Resolution}, got {resolution}"
            );
        generator = (nn.Module<Tensor, Tensor>)g;
        Resolution = resolution;
        RegisterComponents();
    }

    /// <summary>The wrapped generator.</summary>
    public IStyleGenerator Inner => (IStyleGenerator)generator;

    IStyleGenerator _g => Inner;

    public int Resolution { get; }
    public int StyleDim => _g.StyleDim;
    public int NumLatents => _g.NumLatents;
    public Tensor MeanLatent => _g.MeanLatent;
    public Device Device => _g.Device;

    public Tensor Map(Tensor z) => _g.Map(z);

    public Tensor Truncate(Tensor w, double psi, int? cutoff = null) => _g.Truncate(w, psi, cutoff);

    public Tensor ToWPlus(Tensor w) => _g.ToWPlus(w);

    public Tensor Synthesize(Tensor w, NoiseMode noise = NoiseMode.Const)
    {
        var full = _g.Synthesize(w, noise);
        return ImageOps.Resize(full, Resolution, Resolution, ResizeFilter.Area);
    }

    public override Tensor forward(Tensor w) => Synthesize(w);
}
