using IdDisentangle.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Models.FaceApi;

/// <summary>
/// face-api.js's face recognition network: a dlib-style ResNet-34 variant (150x150 RGB in, 128-D descriptor out)
/// whose descriptors of the same person lie within about 0.6 of each other (Euclidean). Input to
/// <see cref="forward"/>: [N,3,150,150] RGB in 0..255. Each conv layer is conv + bias, then a per-channel affine
/// "scale" layer; residual blocks add the input (down blocks add a 2x2 average pool of it, zero-padded in
/// channels and, where the sizes differ, in space) before the ReLU.
/// </summary>
internal sealed class FaceRecognitionNet : nn.Module<Tensor, Tensor>
{
    public const int InputSize = 150;
    public const int DescriptorSize = 128;

    /// <summary>Mean RGB subtracted before dividing by 255, as @vladmandic/face-api does (the original divided by
    /// 256).</summary>
    public static readonly float[] MeanRgb = [122.782f, 117.001f, 104.298f];

    internal static readonly (string Name, int In, int Out, bool Down)[] Blocks =
    [
        ("conv32_1", 32, 32, false),
        ("conv32_2", 32, 32, false),
        ("conv32_3", 32, 32, false),
        ("conv64_down", 32, 64, true),
        ("conv64_1", 64, 64, false),
        ("conv64_2", 64, 64, false),
        ("conv64_3", 64, 64, false),
        ("conv128_down", 64, 128, true),
        ("conv128_1", 128, 128, false),
        ("conv128_2", 128, 128, false),
        ("conv256_down", 128, 256, true),
        ("conv256_1", 256, 256, false),
        ("conv256_2", 256, 256, false),
        ("conv256_down_out", 256, 256, true),
    ];

    readonly ConvScale conv32_down;
    readonly ModuleDict<Residual> blocks;
    readonly Parameter fc;

    public FaceRecognitionNet()
        : base(nameof(FaceRecognitionNet))
    {
        conv32_down = new ConvScale(3, 32, 7);
        blocks = new ModuleDict<Residual>();
        foreach (var (name, cin, cout, down) in Blocks)
            blocks.Add(name, new Residual(cin, cout, down));
        fc = new Parameter(torch.zeros(256, DescriptorSize));
        register_module("conv32_down", conv32_down);
        register_module("blocks", blocks);
        register_parameter("fc", fc);
    }

    /// <summary>
    /// The network's preprocessing of a batch [N,3,H,W] in [0,1]: the crop, zero-padding to a centred square and a
    /// bilinear resize to 150x150 (none when already that size), scaled to 0..255. Differentiable.
    /// </summary>
    public static Tensor Prepare(Tensor rgb01, Imaging.FaceCrop crop) =>
        Imaging.SquareFit.Apply(crop.Apply(rgb01), InputSize, out _).Times(255f);

    /// <summary>[N,3,150,150] RGB 0..255 -> [N,128] descriptors.</summary>
    public override Tensor forward(Tensor rgb255)
    {
        var mean = torch.tensor(MeanRgb, dtype: rgb255.dtype, device: rgb255.device).view(1, 3, 1, 1);
        var x = (rgb255 - mean).DividedBy(255f);
        x = F.relu(conv32_down.forward(x, stride: 2, same: false));
        x = F.max_pool2d(x, 3, 2);
        foreach (var (name, _, _, _) in Blocks)
            x = blocks[name].forward(x);
        return x.mean([2, 3]).matmul(fc);
    }

    /// <summary>conv (with bias), then x * scale + shift per channel.</summary>
    internal sealed class ConvScale : nn.Module
    {
        readonly Parameter weight,
            bias,
            scale,
            shift;

        public ConvScale(int cin, int cout, int k)
            : base(nameof(ConvScale))
        {
            weight = new Parameter(torch.zeros(cout, cin, k, k));
            bias = new Parameter(torch.zeros(cout));
            scale = new Parameter(torch.ones(cout));
            shift = new Parameter(torch.zeros(cout));
            register_parameter("weight", weight);
            register_parameter("bias", bias);
            register_parameter("scale", scale);
            register_parameter("shift", shift);
        }

        /// <summary>same: TensorFlow 'SAME' padding; otherwise 'VALID'.</summary>
        public Tensor forward(Tensor x, int stride, bool same)
        {
            var y = same
                ? TfOps.Conv2dSame(x, weight, bias, stride)
                : F.conv2d(x, weight, bias, strides: [stride, stride]);
            return (y * scale.view(1, -1, 1, 1)).Plus(shift.view(1, -1, 1, 1));
        }
    }

    internal sealed class Residual : nn.Module<Tensor, Tensor>
    {
        readonly ConvScale conv1,
            conv2;
        readonly bool down;
        readonly int cout;

        public Residual(int cin, int cout, bool down)
            : base(nameof(Residual))
        {
            conv1 = new ConvScale(cin, cout, 3);
            conv2 = new ConvScale(cout, cout, 3);
            this.down = down;
            this.cout = cout;
            register_module("conv1", conv1);
            register_module("conv2", conv2);
        }

        public override Tensor forward(Tensor x)
        {
            var y = F.relu(down ? conv1.forward(x, stride: 2, same: false) : conv1.forward(x, stride: 1, same: true));
            y = conv2.forward(y, stride: 1, same: true);
            if (!down)
                return F.relu(y.Plus(x));
            var pooled = F.avg_pool2d(x, 2, 2);
            // face-api.js pads the conv branch with a zero row and column when its size falls short of the pool's.
            long dh = pooled.shape[2] - y.shape[2],
                dw = pooled.shape[3] - y.shape[3];
            if (dh > 0 || dw > 0)
                y = F.pad(y, [0, dw, 0, dh]);
            if (pooled.shape[1] != cout)
                pooled = F.pad(pooled, [0, 0, 0, 0, 0, cout - pooled.shape[1]]);
            return F.relu(y.Plus(pooled));
        }
    }
}
