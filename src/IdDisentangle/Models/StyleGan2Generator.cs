using IdDisentangle.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Models;

/// <summary>
/// The shape of a StyleGAN2 generator in the layout of rosinality's stylegan2-pytorch (the layout of the FFHQ
/// checkpoints used by pSp, e4e and the PyTorch port of the paper). Channels maps a resolution (4, 8, ... Size)
/// to its feature width. ConvClamp is NVIDIA's conv_clamp (stylegan2-ada-pytorch, the stylegan3 repository): each
/// styled convolution's activated output and each RGB output are clamped to +-ConvClamp; rosinality's files have none.
/// </summary>
internal sealed record StyleGan2Config(
    int Size,
    int StyleDim,
    int MappingLayers,
    IReadOnlyDictionary<int, int> Channels,
    double MappingLrMul = 0.01,
    double? ConvClamp = null
)
{
    public int LogSize => (int)Math.Round(Math.Log2(Size));

    /// <summary>Style inputs of the synthesis network: two per resolution from 8 up, plus conv1 and to_rgb1 at
    /// 4.</summary>
    public int NumLatents => LogSize * 2 - 2;

    /// <summary>Noise inputs: one per styled convolution.</summary>
    public int NumNoises => (LogSize - 2) * 2 + 1;

    /// <summary>The standard configuration: 512 channels up to 32 px, then 256, 128, 64, 32, 16 times the
    /// multiplier.</summary>
    public static StyleGan2Config Standard(
        int size,
        int styleDim = 512,
        int mappingLayers = 8,
        int channelMultiplier = 2,
        int divisor = 1
    )
    {
        if (size < 8 || (size & (size - 1)) != 0)
            throw new ArgumentException($"size must be a power of two >= 8, got {size}");
        var ch = new Dictionary<int, int>
        {
            [4] = 512,
            [8] = 512,
            [16] = 512,
            [32] = 512,
            [64] = 256 * channelMultiplier,
            [128] = 128 * channelMultiplier,
            [256] = 64 * channelMultiplier,
            [512] = 32 * channelMultiplier,
            [1024] = 16 * channelMultiplier,
        };
        for (int r = 2048; r <= size; r *= 2)
            ch[r] = Math.Max(8 * channelMultiplier, ch[r / 2] / 2);
        return new StyleGan2Config(
            size,
            styleDim,
            mappingLayers,
            ch.Where(p => p.Key <= size).ToDictionary(p => p.Key, p => Math.Max(1, p.Value / divisor))
        );
    }
}

/// <summary>
/// StyleGAN2 generator (Karras et al. 2020) with rosinality's state-dict names: mapping network <c>style</c>,
/// learned constant <c>input</c>, styled convolutions <c>conv1</c>/<c>convs</c>, RGB outputs
/// <c>to_rgb1</c>/<c>to_rgbs</c> with upsampled skips, and fixed noise buffers <c>noises.noise_i</c>.
/// </summary>
internal sealed class StyleGan2Generator : nn.Module<Tensor, Tensor>, IStyleGenerator
{
    public StyleGan2Config Config { get; }
    readonly ModuleList<nn.Module<Tensor, Tensor>> style;
    readonly ConstantInput input;
    readonly StyledConv conv1;
    readonly ToRgb to_rgb1;
    readonly ModuleList<StyledConv> convs;
    readonly ModuleList<ToRgb> to_rgbs;
    readonly NoiseBuffers noises;

    /// <summary>A generator with random weights, drawn from <paramref name="init"/> when given (else from libtorch's
    /// global generator), in the order rosinality's constructor draws them.</summary>
    public StyleGan2Generator(StyleGan2Config config, torch.Generator? init = null)
        : base(nameof(StyleGan2Generator))
    {
        Config = config;
        int D = config.StyleDim;
        var layers = new List<nn.Module<Tensor, Tensor>> { new PixelNorm() };
        for (int i = 0; i < config.MappingLayers; i++)
            layers.Add(new EqualLinear(D, D, lrMul: config.MappingLrMul, activate: true, init: init));
        style = new ModuleList<nn.Module<Tensor, Tensor>>(layers.ToArray());

        int c4 = config.Channels[4];
        input = new ConstantInput(c4, init: init);
        double? clamp = config.ConvClamp;
        conv1 = new StyledConv(c4, c4, 3, D, upsample: false, clamp, init);
        to_rgb1 = new ToRgb(c4, D, upsample: false, clamp, init);
        convs = new ModuleList<StyledConv>();
        to_rgbs = new ModuleList<ToRgb>();
        int inCh = c4;
        for (int i = 3; i <= config.LogSize; i++)
        {
            int outCh = config.Channels[1 << i];
            convs.Add(new StyledConv(inCh, outCh, 3, D, upsample: true, clamp, init));
            convs.Add(new StyledConv(outCh, outCh, 3, D, upsample: false, clamp, init));
            to_rgbs.Add(new ToRgb(outCh, D, upsample: true, clamp, init));
            inCh = outCh;
        }
        noises = new NoiseBuffers(config.NumNoises, init);
        register_buffer("mean_latent", torch.zeros(D), persistent: false);

        register_module("style", style);
        register_module("input", input);
        register_module("conv1", conv1);
        register_module("to_rgb1", to_rgb1);
        register_module("convs", convs);
        register_module("to_rgbs", to_rgbs);
        register_module("noises", noises);
    }

    public int Resolution => Config.Size;
    public int StyleDim => Config.StyleDim;
    public int NumLatents => Config.NumLatents;
    public Device Device => input.input.device;

    /// <summary>
    /// The truncation centre. A non-persistent buffer: it moves with the module but is not in the state dict
    /// (checkpoints keep it beside the weights, as <c>latent_avg</c>).
    /// </summary>
    public Tensor MeanLatent
    {
        get => get_buffer("mean_latent")!;
        set
        {
            using var _ = torch.no_grad();
            MeanLatent.copy_(value.detach().reshape(StyleDim));
        }
    }

    /// <summary>Mapping network f: z -> w (PixelNorm, then MappingLayers equalized-lr dense layers).</summary>
    public Tensor Map(Tensor z)
    {
        var x = z;
        foreach (var layer in style)
            x = layer.call(x);
        return x;
    }

    /// <summary>
    /// w' = w_avg + psi (w - w_avg), on every layer (StyleGAN2's own rule), or only on the W+ layers below
    /// <paramref name="cutoff"/> (then the result is W+).
    /// </summary>
    public Tensor Truncate(Tensor w, double psi, int? cutoff = null) =>
        cutoff is { } c ? StyleGan1Generator.TruncateLayers(ToWPlus(w), MeanLatent, psi, c)
        : psi == 1.0 ? w
        : torch.lerp(MeanLatent, w, psi);

    public Tensor ToWPlus(Tensor w) =>
        w.dim() switch
        {
            2 => w.unsqueeze(1).expand(-1, NumLatents, -1),
            3 when w.shape[1] == NumLatents => w,
            _ => throw new ArgumentException(
                $"expected w [N,{StyleDim}] or W+ [N,{NumLatents},{StyleDim}], got [{string.Join(",", w.shape)}]"
            ),
        };

    /// <summary>Style mixing: layers before <paramref name="injectIndex"/> take w1, the rest w2.</summary>
    public Tensor Mix(Tensor w1, Tensor w2, int injectIndex)
    {
        if (injectIndex < 0 || injectIndex > NumLatents)
            throw new ArgumentOutOfRangeException(nameof(injectIndex));
        return torch.cat(
            [ToWPlus(w1).narrow(1, 0, injectIndex), ToWPlus(w2).narrow(1, injectIndex, NumLatents - injectIndex)],
            1
        );
    }

    /// <summary>The forward pass renders with the stored noise; use <see cref="Synthesize"/> to choose.</summary>
    public override Tensor forward(Tensor w) => Synthesize(w, NoiseMode.Const);

    /// <summary>
    /// The type the convolutions and activations compute in: null (the default) for the parameters' own type
    /// (float32, or float64 where a test sets it), or bfloat16 where the hardware makes it fast. Styles,
    /// demodulation and the RGB skip path keep the parameters' type, and so does the image.
    /// </summary>
    public ScalarType? ComputeType { get; set; }

    /// <summary>Whether the 3x3 convolutions run as Winograd's F(4x4, 3x3): null (the default) where it is measured
    /// faster, true wherever it applies, false never (<see cref="ModulatedConv2d.Winograd"/>).</summary>
    internal bool? Winograd
    {
        set
        {
            foreach (var m in modules())
                if (m is ModulatedConv2d conv)
                    conv.Winograd = value;
        }
    }

    public Tensor Synthesize(Tensor w, NoiseMode noise = NoiseMode.Const)
    {
        var latent = ToWPlus(w);
        long n = latent.shape[0];
        // Without autograd a batch is rendered one sample at a time: the modulated weight of one sample is cheap to
        // build, it saves two full passes over every activation, and peak memory stays that of one image
        // (bench/README.md).
        if (n > 1 && !torch.is_grad_enabled())
        {
            var parts = new Tensor[n];
            for (int i = 0; i < n; i++)
                parts[i] = Synthesize(latent.narrow(0, i, 1), noise);
            var all = torch.cat(parts, 0);
            foreach (var p in parts)
                p.Dispose();
            return all;
        }
        Tensor? Noise(int i) => noise == NoiseMode.Const ? noises[i] : null;

        // From 8 px on, activations are kept channels-last (NHWC strides): oneDNN's convolutions and the depthwise
        // FIR filters run markedly faster on CPU in that layout, and elementwise ops preserve it. The 4 px layer is
        // faster in NCHW; at 8-64 px single convolutions are too, but the whole forward is not (bench/README.md).
        Tensor x,
            skip;
        using (var scope = torch.NewDisposeScope())
        {
            x = input.forward(n);
            x = (ComputeType is { } type ? x.to(type) : x).contiguous();
            x = conv1.forward(x, latent.select(1, 0), Noise(0));
            skip = to_rgb1.forward(x, latent.select(1, 1), null);
            x.MoveToOuterDisposeScope();
            skip.MoveToOuterDisposeScope();
        }
        int li = 1;
        for (int b = 0; b < to_rgbs.Count; b++)
        {
            // One scope per resolution: intermediates are released as soon as the block is done (autograd keeps
            // its own references to what backward needs), so memory stays near that of a single block.
            using var scope = torch.NewDisposeScope();
            if (8 << b == ChannelsLastFrom)
            {
                var nhwc = MemoryLayout.ChannelsLast(x);
                x.Dispose();
                x = nhwc;
            }
            var y = convs[2 * b].forward(x, latent.select(1, li), Noise(2 * b + 1));
            y = convs[2 * b + 1].forward(y, latent.select(1, li + 1), Noise(2 * b + 2));
            var s2 = to_rgbs[b].forward(y, latent.select(1, li + 2), skip);
            x.Dispose();
            skip.Dispose();
            x = y.MoveToOuterDisposeScope();
            skip = s2.MoveToOuterDisposeScope();
            li += 2;
        }
        x.Dispose();
        var image = skip.contiguous();
        if (!ReferenceEquals(image, skip))
            skip.Dispose();
        if (!torch.is_grad_enabled())
            NativeGarbage.Release(); // before the next image's activations look for holes in the heap
        return image;
    }

    /// <summary>The first resolution whose activations are channels-last.</summary>
    internal const int ChannelsLastFrom = 8;

    /// <summary>Replaces the stored noise buffers with fresh Gaussian noise.</summary>
    public void RandomizeStoredNoise(torch.Generator? rng = null) => noises.Randomize(rng);

    // ---- building blocks -------------------------------------------------------------------------------------

    /// <summary>x / sqrt(mean(x^2) + 1e-8) over the feature axis.</summary>
    internal sealed class PixelNorm() : nn.Module<Tensor, Tensor>(nameof(PixelNorm))
    {
        public override Tensor forward(Tensor x) => x * torch.rsqrt(x.Squared().mean([1], keepdim: true).Plus(1e-8));
    }

    /// <summary>
    /// Dense layer with equalized learning rate: the weight is stored as N(0,1)/lr_mul and scaled at run time by
    /// lr_mul/sqrt(fan_in); with <c>activate</c>, fused leaky ReLU (slope 0.2, gain sqrt 2) on x W^T + b lr_mul.
    /// </summary>
    internal sealed class EqualLinear : nn.Module<Tensor, Tensor>
    {
        readonly Parameter weight,
            bias;
        readonly double scale,
            lrMul;
        readonly bool activate;

        public EqualLinear(
            int inDim,
            int outDim,
            double biasInit = 0,
            double lrMul = 1,
            bool activate = false,
            torch.Generator? init = null
        )
            : base(nameof(EqualLinear))
        {
            weight = new Parameter(torch.randn([outDim, inDim], generator: init).DividedByInPlace(lrMul));
            bias = new Parameter(KeptScalars.Full([outDim], biasInit));
            scale = 1.0 / Math.Sqrt(inDim) * lrMul;
            this.lrMul = lrMul;
            this.activate = activate;
            register_parameter("weight", weight);
            register_parameter("bias", bias);
        }

        public override Tensor forward(Tensor x)
        {
            if (!activate)
                return F.linear(x, weight.Times(scale), bias.Times(lrMul));
            return FusedLeakyRelu(F.linear(x, weight.Times(scale)), bias.Times(lrMul));
        }
    }

    /// <summary>leaky_relu(x + b, 0.2) * sqrt(2), the bias broadcast over the channel axis.</summary>
    internal static Tensor FusedLeakyRelu(Tensor x, Tensor bias)
    {
        var shape = new long[x.dim()];
        Array.Fill(shape, 1L);
        shape[1] = bias.shape[0];
        return x.Plus(bias.view(shape)).LeakyRelu(0.2).TimesInPlace(Math.Sqrt(2));
    }

    /// <summary>
    /// Modulated convolution: weights scaled per input channel by the style s = A(w), then (with demodulation)
    /// normalised per output channel by d = 1/sqrt(sum (W s)^2 + 1e-8). A batch is computed as conv(x * s, W) * d,
    /// the same sum without a weight per sample or a grouped convolution, and so is one sample whose activation is
    /// smaller than the weight; from there on one sample's modulated weight is built directly, the smaller pass.
    /// Upsampling is a stride-2 transposed convolution followed by the FIR blur. The gain argument of forward scales
    /// the output for free (the sqrt 2 of the following activation).
    /// </summary>
    internal sealed class ModulatedConv2d : nn.Module
    {
        readonly Parameter weight;
        internal readonly EqualLinear modulation;
        readonly Blur? blur;
        readonly int kernel,
            outCh,
            inCh;
        readonly double scale;
        readonly bool demodulate,
            upsample;

        public ModulatedConv2d(
            int inCh,
            int outCh,
            int kernel,
            int styleDim,
            bool demodulate = true,
            bool upsample = false,
            torch.Generator? init = null
        )
            : base(nameof(ModulatedConv2d))
        {
            this.kernel = kernel;
            this.outCh = outCh;
            this.inCh = inCh;
            this.demodulate = demodulate;
            this.upsample = upsample;
            scale = 1.0 / Math.Sqrt(inCh * kernel * kernel);
            weight = new Parameter(torch.randn([1, outCh, inCh, kernel, kernel], generator: init));
            modulation = new EqualLinear(styleDim, inCh, biasInit: 1, init: init);
            register_parameter("weight", weight);
            register_module("modulation", modulation);
            if (upsample)
            {
                // upfirdn2d padding of rosinality's Blur after a stride-2 transposed conv: p = (4 - 2) - (k - 1).
                int p = 4 - 2 - (kernel - 1);
                blur = new Blur(upsampleFactor: 2, pad0: (p + 1) / 2 + 2 - 1, pad1: p / 2 + 1);
                register_module("blur", blur);
            }
        }

        /// <summary>
        /// Whether the layer's 3x3 convolution runs as Winograd's F(4x4, 3x3) where it applies (see
        /// <see cref="WinogradConvolution"/>): null (the default) where it is measured faster, true wherever it
        /// applies, false never.
        /// </summary>
        internal bool? Winograd { get; set; }

        /// <summary>What the frozen weight gives every forward pass alike: the sum of squared taps for demodulation,
        /// the Winograd transform in the batched product's layout and in the grouped products' (each made when
        /// first used), and the fingerprint of the weight they came from.</summary>
        (Tensor Taps, Tensor? Batched, Tensor? Grouped, float Fingerprint)? prepared;
        readonly object preparedLock = new();

        public Tensor forward(Tensor x, Tensor style, double gain = 1.0)
        {
            long n = x.shape[0];
            if (UsesWinograd(x))
                return ConvolveWinograd(x, style, gain);
            // In bfloat16 one sample keeps the weight path: it rounds the modulated weight once, where the other
            // would round x * s and y * d too (45 dB from float32 instead of 50: bench/README.md).
            if (n == 1 && (x.dtype != weight.dtype || !ModulatesActivations(x.shape[2] * x.shape[3], kernel, outCh)))
            {
                var s1 = modulation.forward(style).view(inCh);
                var raw = weight.squeeze(0);
                return Convolve(x, ModulatedWeight(raw, SquaredTaps(raw), s1, scale, demodulate, gain).to(x.dtype));
            }
            if (n == 1)
                return ConvolveModulatingActivations(x, modulation.forward(style).view(inCh).Times(scale), gain);
            var (s, d, w) = StylesAndWeight(style, gain);
            return ScaledPerOutputChannel(Convolve(x * s.view(n, inCh, 1, 1).to(x.dtype), w.to(x.dtype)), d);
        }

        internal bool UsesWinograd(Tensor x) =>
            !upsample
            && Winograd != false
            && WinogradConvolution.Applies(x, kernel, outCh)
            && (Winograd == true || WinogradIsFaster(x.shape[2] * x.shape[3], inCh, outCh));

        /// <summary>Where F(4x4, 3x3) beat oneDNN's direct convolution at batch 1 (bench/README.md): from 32x32 px
        /// with 256 input and output channels or more, and from 128x128 px with 128 (where the products are grouped
        /// convolutions); below, the products are too small to pay for the transforms.</summary>
        internal static bool WinogradIsFaster(long pixels, long inCh, long outCh) =>
            pixels >= 32 * 32 && (inCh * outCh >= 256 * 256 || pixels >= 128 * 128 && inCh * outCh >= 128 * 128);

        /// <summary>conv(x * scale s, W) * d, then the <paramref name="epilogue"/> if any, with W transformed once
        /// (and again only when its values change).</summary>
        internal Tensor ConvolveWinograd(
            Tensor x,
            Tensor style,
            double gain,
            WinogradConvolution.Epilogue? epilogue = null
        )
        {
            using var scope = torch.NewDisposeScope();
            var ss = modulation.forward(style).Times(scale);
            bool grouped = WinogradConvolution.GroupsProducts(WinogradConvolution.Tiles(x));
            var (u, taps) = WinogradWeight(grouped);
            var d = demodulate
                ? torch.rsqrt(ss.Squared().matmul(taps.t()).Plus(1e-8)).Times(gain)
                : KeptScalars.Full([ss.shape[0], outCh], gain, ss.dtype, ss.device);
            return WinogradConvolution.Convolve(x, u, ss, d, epilogue, grouped).MoveToOuterDisposeScope();
        }

        (Tensor U, Tensor Taps) WinogradWeight(bool grouped)
        {
            using var scope = torch.NewDisposeScope();
            var raw = weight.squeeze(0).detach();
            lock (preparedLock)
            {
                var cached = Prepared(raw);
                if (grouped)
                    cached.Grouped ??= WinogradConvolution
                        .ForGroupedProducts(WinogradConvolution.TransformWeight(raw))
                        .DetachFromDisposeScope();
                else
                    cached.Batched ??= WinogradConvolution.TransformWeight(raw).DetachFromDisposeScope();
                prepared = cached;
                return (grouped ? cached.Grouped! : cached.Batched!, cached.Taps);
            }
        }

        /// <summary>sum_k W[o,i,k]^2 [out, in]: where no gradient reaches the weight, made once and again only when
        /// the weight changes.</summary>
        Tensor SquaredTaps(Tensor raw)
        {
            if (torch.is_grad_enabled() && weight.requires_grad)
                return SumOfSquaredTaps(raw);
            lock (preparedLock)
                return Prepared(raw.detach()).Taps;
        }

        /// <summary>The cache for the weight as it is now, emptied when the weight's sum has changed (a float32 sum:
        /// a twentieth of the time of computing the taps). Called under the lock.</summary>
        (Tensor Taps, Tensor? Batched, Tensor? Grouped, float Fingerprint) Prepared(Tensor raw)
        {
            float fingerprint = raw.sum(ScalarType.Float32).item<float>();
            if (prepared is { } cached && cached.Fingerprint.Equals(fingerprint))
                return cached;
            // A replaced cache is left to the finalizer: another thread may still be reading it.
            using var scope = torch.NewDisposeScope();
            prepared = (SumOfSquaredTaps(raw).DetachFromDisposeScope(), null, null, fingerprint);
            return prepared.Value;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && prepared is { } cached)
            {
                cached.Batched?.Dispose();
                cached.Grouped?.Dispose();
                cached.Taps.Dispose();
                prepared = null;
            }
            base.Dispose(disposing);
        }

        /// <summary>y [N, out, H, W] times d [N, out] (in place without autograd).</summary>
        Tensor ScaledPerOutputChannel(Tensor y, Tensor d)
        {
            var dd = d.view(y.shape[0], outCh, 1, 1).to(y.dtype);
            return torch.is_grad_enabled() ? y * dd : y.mul_(dd);
        }

        /// <summary>
        /// One sample whose activation is smaller than the weight (below 128 px in the standard 256 generator):
        /// conv(x * scale s, W) * d, the weight read as stored rather than rewritten for the sample.
        /// </summary>
        Tensor ConvolveModulatingActivations(Tensor x, Tensor ss, double gain)
        {
            var raw = weight.squeeze(0);
            var d = demodulate
                ? Demodulation(SquaredTaps(raw), ss, gain)
                : KeptScalars.Full([outCh], gain, ss.dtype, ss.device);
            return ScaledPerOutputChannel(Convolve(x * ss.view(1, inCh, 1, 1).to(x.dtype), raw.to(x.dtype)), d);
        }

        /// <summary>d = gain / sqrt(sum_i ss_i^2 sum_k W[o,i,k]^2 + 1e-8) [out] for one sample's scaled style ss
        /// [in], from the squared taps [out, in].</summary>
        static Tensor Demodulation(Tensor taps, Tensor ss, double gain) =>
            torch.rsqrt(taps.matmul(ss.Squared()).Plus(1e-8)).Times(gain);

        /// <summary>
        /// Whether one sample with <paramref name="pixels"/> per channel is modulated on its activation [in, H, W]
        /// rather than on the weight [out, in, k, k]: whichever is smaller is scaled.
        /// </summary>
        internal static bool ModulatesActivations(long pixels, int kernel, int outCh) =>
            pixels < kernel * kernel * outCh;

        /// <summary>sum_k W[o,i,k]^2 in one pass over the weight.</summary>
        internal static Tensor SumOfSquaredTaps(Tensor raw) => raw.flatten(2).norm(2).Squared();

        /// <summary>
        /// The modulated (and demodulated) weight of one sample in one pass over the weights: scale, style s,
        /// demodulation d = 1/sqrt(sum_i (scale s_i)^2 sum_k W[o,i,k]^2 + 1e-8) (from the squared taps) and gain
        /// meet in an [out, in] factor first.
        /// </summary>
        internal static Tensor ModulatedWeight(
            Tensor raw,
            Tensor taps,
            Tensor s,
            double scale,
            bool demodulate,
            double gain
        )
        {
            long outCh = raw.shape[0],
                inCh = raw.shape[1];
            var ss = s.Times(scale);
            var factor = demodulate
                ? Demodulation(taps, ss, gain).view(outCh, 1) * ss.view(1, inCh)
                : ss.Times(gain).view(1, inCh);
            return raw * factor.view(-1, inCh, 1, 1);
        }

        /// <summary>
        /// With autograd on a batch and frozen weights (training backpropagates to w through a fixed G), the layer's
        /// backward pass is written by hand (<see cref="FrozenGeneratorGradients"/>), which keeps a quarter of what
        /// the composed operations would.
        /// </summary>
        internal bool UsesFrozenGradients(Tensor x) =>
            x.shape[0] > 1
            && torch.is_grad_enabled()
            && !weight.requires_grad
            && x.dtype == weight.dtype
            && x.dtype is ScalarType.Float32 or ScalarType.Float64
            && (blur is null || blur.SymmetricPadding);

        /// <summary>The style s [N, in], the demodulation times <paramref name="gain"/> d [N, out] (or the gain
        /// alone without demodulation) and the weight times its equalized-learning-rate scale [out, in, k, k].
        /// </summary>
        internal (Tensor S, Tensor D, Tensor Weight) StylesAndWeight(Tensor style, double gain)
        {
            var s = modulation.forward(style);
            var w = weight.squeeze(0).Times(scale);
            var d = demodulate
                ? torch.rsqrt(s.Squared().matmul(w.Squared().sum([2, 3]).t()).Plus(1e-8)).Times(gain)
                : KeptScalars.Full([s.shape[0], outCh], gain, s.dtype, s.device);
            return (s, d, w);
        }

        internal bool Upsamples => upsample;

        internal Tensor? BlurKernel(long channels, ScalarType dtype) => blur?.Kernel(channels, dtype);

        internal int BlurPadding => blur?.Padding ?? 0;

        // Demodulation is a per-channel scale, so it commutes with the per-channel blur that follows upsampling.
        Tensor Convolve(Tensor x, Tensor w)
        {
            if (!upsample)
                return F.conv2d(x, w, padding: [kernel / 2, kernel / 2]);
            if (blur!.SymmetricPadding)
                return UpsampleAndBlur(x, w.transpose(0, 1), blur.Kernel(w.shape[0], x.dtype), blur.Padding);
            var up = F.conv_transpose2d(x, w.transpose(0, 1), strides: [2, 2]);
            var y = blur.forward(up);
            if (!torch.is_grad_enabled())
                up.Dispose();
            return y;
        }

        /// <summary>Whether upsampling a [channels, side, side] input pads it (<see cref="UpsampleAndBlur"/>); measured
        /// on the shapes of the standard generators.</summary>
        internal static bool PadsInputToUpsample(long side, long channels) => side >= 128 && channels <= 256;

        /// <summary>
        /// The stride-2 transposed convolution by <paramref name="weightInOut"/> [in, out, k, k], then the depthwise
        /// blur with symmetric padding <paramref name="blurPadding"/>. From 128 px input with up to 256 channels
        /// oneDNN's transposed convolution is a third faster computed from the input padded by one pixel with padding
        /// 1: the same full output, zero-padded by one, which the blur then reads with one pixel less padding of its
        /// own (bench/README.md).
        /// </summary>
        internal static Tensor UpsampleAndBlur(Tensor x, Tensor weightInOut, Tensor blurKernel, int blurPadding)
        {
            bool padInput = blurPadding >= 1 && PadsInputToUpsample(x.shape[2], x.shape[1]);
            Tensor up;
            if (padInput)
            {
                using var padded = F.pad(x, [1, 1, 1, 1]);
                up = F.conv_transpose2d(padded, weightInOut, strides: [2, 2], padding: [1, 1]);
            }
            else
                up = F.conv_transpose2d(x, weightInOut, strides: [2, 2]);
            int p = padInput ? blurPadding - 1 : blurPadding;
            var y = F.conv2d(up, blurKernel, padding: [p, p], groups: weightInOut.shape[1]);
            if (!torch.is_grad_enabled())
                up.Dispose();
            return y;
        }
    }

    /// <summary>upfirdn2d with the [1,3,3,1] kernel (outer product, normalised, times factor^2) and no
    /// resampling.</summary>
    internal sealed class Blur : nn.Module<Tensor, Tensor>
    {
        readonly Tensor kernel;
        readonly int pad0,
            pad1;

        public Blur(int upsampleFactor, int pad0, int pad1)
            : base(nameof(Blur))
        {
            kernel = MakeKernel().Times(upsampleFactor * upsampleFactor);
            this.pad0 = pad0;
            this.pad1 = pad1;
            register_buffer("kernel", kernel);
        }

        /// <summary>The depthwise conv2d weight [channels, 1, 4, 4]: upfirdn2d convolves (flipped kernel), conv2d
        /// correlates.</summary>
        internal Tensor Kernel(long channels, ScalarType dtype) =>
            kernel.flip(0, 1).to(dtype).expand(channels, 1, -1, -1);

        internal bool SymmetricPadding => pad0 == pad1;

        internal int Padding => pad0;

        public override Tensor forward(Tensor x)
        {
            long c = x.shape[1];
            var k = Kernel(c, x.dtype);
            if (pad0 == pad1)
                return F.conv2d(x, k, padding: [pad0, pad0], groups: c);
            return F.conv2d(F.pad(x, [pad0, pad1, pad0, pad1]), k, groups: c);
        }
    }

    /// <summary>
    /// 2x upsampling by upfirdn2d (zero insertion, pad (2,1), [1,3,3,1] FIR times 4), computed as a depthwise
    /// stride-2 transposed convolution with padding 1, which is the same sum.
    /// </summary>
    internal sealed class Upsample : nn.Module<Tensor, Tensor>
    {
        readonly Tensor kernel;

        public Upsample()
            : base(nameof(Upsample))
        {
            kernel = MakeKernel().Times(4);
            register_buffer("kernel", kernel);
        }

        public override Tensor forward(Tensor x)
        {
            long c = x.shape[1];
            return F.conv_transpose2d(
                x,
                kernel.to(x.dtype).expand(c, 1, -1, -1),
                strides: [2, 2],
                padding: [1, 1],
                groups: c
            );
        }
    }

    internal static Tensor MakeKernel()
    {
        var k1 = torch.tensor(new float[] { 1, 3, 3, 1 });
        var k = k1.outer(k1);
        return k / k.sum();
    }

    /// <summary>The learned noise strength; <see cref="StyledConv"/> adds the scaled noise itself, in place.</summary>
    internal sealed class NoiseInjection : nn.Module
    {
        internal readonly Parameter weight;

        public NoiseInjection()
            : base(nameof(NoiseInjection))
        {
            weight = new Parameter(torch.zeros(1));
            register_parameter("weight", weight);
        }
    }

    internal sealed class ConstantInput : nn.Module
    {
        internal readonly Parameter input;

        public ConstantInput(int channels, int size = 4, torch.Generator? init = null)
            : base(nameof(ConstantInput))
        {
            input = new Parameter(torch.randn([1, channels, size, size], generator: init));
            register_parameter("input", input);
        }

        public Tensor forward(long batch) => input.expand(batch, -1, -1, -1);
    }

    static readonly double Sqrt2 = Math.Sqrt(2);

    /// <summary>Modulated 3x3 conv, noise, then fused leaky ReLU with a learned bias.</summary>
    internal sealed class StyledConv : nn.Module
    {
        readonly ModulatedConv2d conv;
        readonly NoiseInjection noise;
        readonly BiasHolder activate;
        readonly double? clamp;

        public StyledConv(
            int inCh,
            int outCh,
            int kernel,
            int styleDim,
            bool upsample,
            double? clamp = null,
            torch.Generator? init = null
        )
            : base(nameof(StyledConv))
        {
            this.clamp = clamp;
            conv = new ModulatedConv2d(inCh, outCh, kernel, styleDim, demodulate: true, upsample: upsample, init);
            noise = new NoiseInjection();
            activate = new BiasHolder(outCh);
            register_module("conv", conv);
            register_module("noise", noise);
            register_module("activate", activate);
        }

        /// <summary>
        /// lrelu(conv + noise + b) * sqrt2, computed as lrelu(sqrt2 conv + sqrt2 noise + sqrt2 b) (leaky ReLU is
        /// positively homogeneous) so the gain rides on the convolution and the rest happens in place.
        /// </summary>
        public Tensor forward(Tensor x, Tensor style, Tensor? noiseInput)
        {
            if (conv.UsesFrozenGradients(x) && !noise.weight.requires_grad && !activate.bias.requires_grad)
                return ForwardFrozen(x, style, noiseInput);
            if (conv.UsesWinograd(x))
            {
                noiseInput ??= torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], dtype: x.dtype, device: x.device);
                var epilogue = new WinogradConvolution.Epilogue(
                    noiseInput,
                    (float)(noise.weight.item<float>() * Sqrt2),
                    activate.bias.Times(Sqrt2),
                    0.2f,
                    clamp is { } limit ? (float)limit : null
                );
                return conv.ConvolveWinograd(x, style, Sqrt2, epilogue);
            }
            var y = conv.forward(x, style, Sqrt2);
            noiseInput ??= torch.randn(y.shape[0], 1, y.shape[2], y.shape[3], dtype: y.dtype, device: y.device);
            // Added in y's own type: a bfloat16 y with a float32 operand takes libtorch's slow casting path.
            y.PlusInPlace((noiseInput * noise.weight.Times(Sqrt2)).to(y.dtype));
            y.PlusInPlace(activate.bias.Times(Sqrt2).view(1, -1, 1, 1).to(y.dtype));
            y = y.LeakyReluInPlace(0.2);
            // NVIDIA's bias_act clamps after the activation gain; out of place, as leaky ReLU's backward reads y.
            return clamp is { } c ? y.Clamp(-c, c) : y;
        }

        Tensor ForwardFrozen(Tensor x, Tensor style, Tensor? noiseInput)
        {
            var (s, d, w) = conv.StylesAndWeight(style, Sqrt2);
            long size = x.shape[2] * (conv.Upsamples ? 2 : 1);
            noiseInput ??= torch.randn(x.shape[0], 1, size, size, dtype: x.dtype, device: x.device);
            return FrozenGeneratorGradients.StyledConv(
                x,
                s,
                d,
                noiseInput * noise.weight.Times(Sqrt2),
                activate.bias.Times(Sqrt2).view(1, -1, 1, 1),
                w,
                conv.BlurKernel(w.shape[0], x.dtype),
                new FrozenGeneratorGradients.StyledConvSpec(conv.Upsamples, conv.BlurPadding, clamp)
            );
        }
    }

    /// <summary>The <c>activate.bias</c> of rosinality's FusedLeakyReLU module.</summary>
    internal sealed class BiasHolder : nn.Module
    {
        internal readonly Parameter bias;

        public BiasHolder(int channels)
            : base("FusedLeakyReLU")
        {
            bias = new Parameter(torch.zeros(channels));
            register_parameter("bias", bias);
        }
    }

    /// <summary>Modulated 1x1 conv to RGB (no demodulation) plus bias, plus the upsampled skip of the previous
    /// resolution.</summary>
    internal sealed class ToRgb : nn.Module
    {
        readonly ModulatedConv2d conv;
        readonly Parameter bias;
        readonly Upsample? upsample;

        readonly double? clamp;

        public ToRgb(int inCh, int styleDim, bool upsample, double? clamp = null, torch.Generator? init = null)
            : base(nameof(ToRgb))
        {
            this.clamp = clamp;
            conv = new ModulatedConv2d(inCh, 3, 1, styleDim, demodulate: false, init: init);
            bias = new Parameter(torch.zeros(1, 3, 1, 1));
            register_module("conv", conv);
            register_parameter("bias", bias);
            if (upsample)
            {
                this.upsample = new Upsample();
                register_module("upsample", this.upsample);
            }
        }

        public Tensor forward(Tensor x, Tensor style, Tensor? skip)
        {
            Tensor y;
            if (conv.UsesFrozenGradients(x) && !bias.requires_grad)
            {
                var (s, _, w) = conv.StylesAndWeight(style, 1.0);
                y = FrozenGeneratorGradients.ToRgb(x, s, w).Plus(bias);
            }
            else
                y = conv.forward(x, style).to(bias.dtype).PlusInPlace(bias);
            if (clamp is { } c)
                y = y.Clamp(-c, c);
            if (skip is not null && upsample is not null)
                y.PlusInPlace(upsample.forward(skip));
            return y;
        }
    }

    /// <summary>The fixed per-layer noise inputs, buffers <c>noise_0</c> .. <c>noise_{n-1}</c>, noise_i at 2^((i+5)/2)
    /// px.</summary>
    internal sealed class NoiseBuffers : nn.Module
    {
        readonly int count;

        public NoiseBuffers(int count, torch.Generator? init = null)
            : base("noises")
        {
            this.count = count;
            for (int i = 0; i < count; i++)
            {
                int res = 1 << ((i + 5) / 2);
                register_buffer($"noise_{i}", torch.randn([1, 1, res, res], generator: init));
            }
        }

        public Tensor this[int i] => get_buffer($"noise_{i}")!;

        public void Randomize(torch.Generator? rng)
        {
            using var _ = torch.no_grad();
            for (int i = 0; i < count; i++)
            {
                var b = this[i];
                b.copy_(torch.randn(b.shape, generator: rng));
            }
        }
    }
}
