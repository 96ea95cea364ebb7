using IdDisentangle.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Models;

/// <summary>
/// The shape of an official StyleGAN (v1) generator. <paramref name="Channels"/> maps each resolution (4, 8, ...,
/// Size) to its feature maps; <paramref name="FusedFrom"/> is the first resolution whose upscaling is the fused
/// transposed convolution (the official 'auto' rule: 128).
/// </summary>
internal sealed record StyleGan1Config(
    int Size,
    int StyleDim,
    int MappingLayers,
    IReadOnlyDictionary<int, int> Channels,
    int MappingFmaps = 512,
    int FusedFrom = 128,
    int TruncationCutoff = 8
)
{
    public int LogSize => (int)Math.Round(Math.Log2(Size));

    /// <summary>Style inputs: two per resolution from 4x4 up.</summary>
    public int NumLatents => LogSize * 2 - 2;

    /// <summary>The official channel rule nf(stage) = min(fmap_base / 2^stage, fmap_max) for the block of resolution
    /// 2^(stage+1).</summary>
    public static StyleGan1Config Official(
        int size,
        int fmapBase = 8192,
        int fmapMax = 512,
        int mappingLayers = 8,
        int styleDim = 512
    )
    {
        var channels = new Dictionary<int, int>();
        for (int r = 4, stage = 1; r <= size; r *= 2, stage++)
            channels[r] = Math.Min(fmapBase >> stage, fmapMax);
        return new StyleGan1Config(size, styleDim, mappingLayers, channels);
    }
}

/// <summary>
/// StyleGAN (Karras, Laine, Aila 2019), the generator the paper maps into, as NVIDIA's networks_stylegan.py
/// computes it. Mapping f: z -> w, PixelNorm then equalized-lr dense layers (lrmul 0.01, leaky ReLU 0.2). Synthesis
/// from a learned 4x4 constant; every layer ends with the epilogue noise, bias, leaky ReLU, instance norm and
/// style modulation x (s0 + 1) + s1 from its own w; each upscale (nearest + conv below <see
/// cref="StyleGan1Config.FusedFrom"/>,
/// a fused 4x4 transposed conv from there) is followed by a [1,2,1] blur; ToRGB is a 1x1 conv. Weights are kept
/// as stored and scaled at run time (equalized learning rate), so state dicts hold the official values.
/// </summary>
internal sealed class StyleGan1Generator : nn.Module<Tensor, Tensor>, IStyleGenerator
{
    static readonly double Sqrt2 = Math.Sqrt(2);

    public StyleGan1Config Config { get; }

    readonly ModuleList<Dense> mapping;
    readonly Parameter @const;
    readonly ModuleList<Layer> layers;
    readonly Parameter torgb_weight,
        torgb_bias;
    readonly Tensor dlatent_avg,
        blur_kernel;

    public StyleGan1Generator(StyleGan1Config config)
        : base(nameof(StyleGan1Generator))
    {
        Config = config;
        mapping = new ModuleList<Dense>(
            Enumerable
                .Range(0, config.MappingLayers)
                .Select(i => new Dense(
                    i == 0 ? config.StyleDim : config.MappingFmaps,
                    i == config.MappingLayers - 1 ? config.StyleDim : config.MappingFmaps,
                    Sqrt2,
                    0.01
                ))
                .ToArray()
        );
        int c4 = config.Channels[4];
        @const = new Parameter(torch.ones(1, c4, 4, 4));
        var list = new List<Layer>
        {
            new(0, c4, 0, config.StyleDim, LayerKind.Const),
            new(c4, c4, 3, config.StyleDim, LayerKind.Conv),
        };
        int cin = c4;
        for (int r = 8; r <= config.Size; r *= 2)
        {
            int cout = config.Channels[r];
            list.Add(
                new Layer(
                    cin,
                    cout,
                    3,
                    config.StyleDim,
                    r >= config.FusedFrom ? LayerKind.FusedUp : LayerKind.NearestUp
                )
            );
            list.Add(new Layer(cout, cout, 3, config.StyleDim, LayerKind.Conv));
            cin = cout;
        }
        layers = new ModuleList<Layer>(list.ToArray());
        torgb_weight = new Parameter(torch.zeros(3, cin, 1, 1));
        torgb_bias = new Parameter(torch.zeros(3));
        dlatent_avg = torch.zeros(config.StyleDim);
        var k = torch.tensor(new float[] { 1, 2, 1 });
        blur_kernel = k.outer(k).DividedBy(16).view(1, 1, 3, 3);
        register_module("mapping", mapping);
        register_parameter("const", @const);
        register_module("layers", layers);
        register_parameter("torgb_weight", torgb_weight);
        register_parameter("torgb_bias", torgb_bias);
        register_buffer("dlatent_avg", dlatent_avg);
        register_buffer("blur_kernel", blur_kernel, persistent: false);
        // Buffers are looked up by name when used: Module.to replaces them, so cached references would go stale.
        for (int i = 0; i < list.Count; i++)
        {
            int res = 4 << (i / 2);
            register_buffer($"noise_{i}", torch.randn(1, 1, res, res));
        }
    }

    public int Resolution => Config.Size;
    public int StyleDim => Config.StyleDim;
    public int NumLatents => Config.NumLatents;
    public Device Device => @const.device;
    public Tensor MeanLatent => get_buffer("dlatent_avg")!;

    /// <summary>z [N,D] -> w [N,D]: PixelNorm, then the dense layers.</summary>
    public Tensor Map(Tensor z)
    {
        if (Config.MappingLayers == 0)
            throw new InvalidOperationException(
                "this StyleGAN file holds only the synthesis network: it renders W+ codes but cannot map z (use a file with G_mapping)"
            );
        var x = z * torch.rsqrt(z.Squared().mean([1], keepdim: true).Plus(1e-8));
        foreach (var d in mapping)
            x = d.forward(x).LeakyRelu(0.2);
        return x;
    }

    /// <summary>The official truncation: layers below the cutoff (8) move towards dlatent_avg by psi; a w [N,D] becomes
    /// W+.</summary>
    public Tensor Truncate(Tensor w, double psi, int? cutoff = null) =>
        TruncateLayers(ToWPlus(w), MeanLatent, psi, cutoff ?? Config.TruncationCutoff);

    /// <summary>W+ layers below <paramref name="cutoff"/> moved towards <paramref name="mean"/> by psi.</summary>
    internal static Tensor TruncateLayers(Tensor wPlus, Tensor mean, double psi, int cutoff)
    {
        if (psi == 1.0)
            return wPlus;
        using Scalar cut = cutoff;
        var layer = KeptScalars.Arange(wPlus.shape[1], device: wPlus.device).view(1, -1, 1);
        var coefs = torch.where(
            layer < cut,
            torch.tensor(psi, dtype: wPlus.dtype, device: wPlus.device),
            torch.tensor(1.0, dtype: wPlus.dtype, device: wPlus.device)
        );
        return torch.lerp(mean.to(wPlus.dtype), wPlus, coefs);
    }

    public Tensor ToWPlus(Tensor w) =>
        w.dim() switch
        {
            2 => w.unsqueeze(1).expand(-1, NumLatents, -1),
            3 => w,
            _ => throw new ArgumentException(
                $"w must be [N,{StyleDim}] or [N,{NumLatents},{StyleDim}], got [{string.Join(",", w.shape)}]"
            ),
        };

    public override Tensor forward(Tensor w) => Synthesize(w, NoiseMode.Const);

    /// <summary>W+ [N,L,D] (or w [N,D]) -> image [N,3,R,R].</summary>
    public Tensor Synthesize(Tensor w, NoiseMode noise = NoiseMode.Const)
    {
        var wp = ToWPlus(w);
        if (wp.shape[1] != NumLatents || wp.shape[2] != StyleDim)
            throw new ArgumentException($"W+ must be [N,{NumLatents},{StyleDim}], got [{string.Join(",", wp.shape)}]");
        long n = wp.shape[0];
        var x = @const.expand(n, -1, -1, -1);
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            x = layer.Kind switch
            {
                LayerKind.Const => x,
                LayerKind.Conv => layer.Conv(x),
                _ => Blur(layer.Conv(x)),
            };
            var nz =
                noise == NoiseMode.Const
                    ? get_buffer($"noise_{i}")!.to(x.dtype, x.device)
                    : torch.randn(n, 1, x.shape[2], x.shape[3], dtype: x.dtype, device: x.device);
            x = layer.Epilogue(x, nz, wp.select(1, i));
        }
        double gain = 1.0 / Math.Sqrt(torgb_weight.shape[1]);
        return F.conv2d(x, torgb_weight.Times(gain), torgb_bias);
    }

    Tensor Blur(Tensor x)
    {
        long c = x.shape[1];
        return F.conv2d(x, blur_kernel.to(x.dtype, x.device).expand(c, 1, 3, 3), padding: [1, 1], groups: c);
    }

    internal enum LayerKind
    {
        Const,
        Conv,
        NearestUp,
        FusedUp,
    }

    /// <summary>An equalized-lr dense layer: weight [out,in] scaled by gain / sqrt(in) * lrmul, bias by
    /// lrmul.</summary>
    internal sealed class Dense : nn.Module<Tensor, Tensor>
    {
        readonly Parameter weight,
            bias;
        readonly double scale,
            lrmul;

        public Dense(int inDim, int outDim, double gain, double lrmul)
            : base(nameof(Dense))
        {
            weight = new Parameter(torch.zeros(outDim, inDim));
            bias = new Parameter(torch.zeros(outDim));
            scale = gain / Math.Sqrt(inDim) * lrmul;
            this.lrmul = lrmul;
            register_parameter("weight", weight);
            register_parameter("bias", bias);
        }

        public override Tensor forward(Tensor x) => F.linear(x, weight.Times(scale), bias.Times(lrmul));
    }

    /// <summary>One synthesis layer: its convolution (none for the constant) and its epilogue.</summary>
    internal sealed class Layer : nn.Module
    {
        readonly Parameter? weight;
        readonly Parameter noise_strength,
            bias;
        readonly Dense style;
        readonly double wscale;

        public Layer(int cin, int cout, int kernel, int styleDim, LayerKind kind)
            : base(nameof(Layer))
        {
            Kind = kind;
            if (kind != LayerKind.Const)
            {
                weight = new Parameter(torch.zeros(cout, cin, kernel, kernel));
                register_parameter("weight", weight);
                wscale = Sqrt2 / Math.Sqrt(cin * kernel * kernel);
            }
            noise_strength = new Parameter(torch.zeros(cout));
            bias = new Parameter(torch.zeros(cout));
            style = new Dense(styleDim, 2 * cout, 1.0, 1.0);
            register_parameter("noise_strength", noise_strength);
            register_parameter("bias", bias);
            register_module("style", style);
        }

        public LayerKind Kind { get; }

        public Tensor Conv(Tensor x)
        {
            var w = weight!.Times(wscale);
            switch (Kind)
            {
                case LayerKind.NearestUp:
                    x = F.interpolate(x, scale_factor: [2, 2], mode: InterpolationMode.Nearest);
                    return F.conv2d(x, w, padding: [1, 1]);
                case LayerKind.FusedUp:
                    // The official fused upscale: the 3x3 kernel zero-padded to 5x5 and summed over its four
                    // one-pixel shifts gives a 4x4 kernel; a stride-2 transposed conv with it equals nearest
                    // upscaling followed by the 3x3 conv. [out,in,3,3] -> transposed layout [in,out,4,4].
                    var p = F.pad(w, [1, 1, 1, 1]);
                    var k = p[.., .., 1.., 1..]
                        .Plus(p[.., .., ..^1, 1..])
                        .Plus(p[.., .., 1.., ..^1])
                        .Plus(p[.., .., ..^1, ..^1]);
                    return F.conv_transpose2d(x, k.transpose(0, 1), strides: [2, 2], padding: [1, 1]);
                default:
                    return F.conv2d(x, w, padding: [1, 1]);
            }
        }

        /// <summary>Noise, bias, leaky ReLU 0.2, instance norm (eps 1e-8), style modulation x (s0 + 1) + s1.</summary>
        public Tensor Epilogue(Tensor x, Tensor noise, Tensor w)
        {
            long c = x.shape[1];
            x = x.Plus(noise * noise_strength.view(1, -1, 1, 1));
            x = x.Plus(bias.view(1, -1, 1, 1)).LeakyRelu(0.2);
            x = x - x.mean([2, 3], keepdim: true);
            x = x * torch.rsqrt(x.Squared().mean([2, 3], keepdim: true).Plus(1e-8));
            var s = style.forward(w).view(-1, 2, c, 1, 1);
            return (x * s.select(1, 0).Plus(1)).Plus(s.select(1, 1));
        }
    }
}
