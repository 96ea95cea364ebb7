using IdDisentangle.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Models.FaceApi;

/// <summary>
/// face-api.js's 68-point landmark network: four densely connected blocks of depthwise-separable convolutions
/// (each halving the resolution), a 7x7 average pool and a dense layer to 136 numbers, the (x, y) of each point
/// relative to the input. Input to <see cref="forward"/>: [N,3,112,112] RGB in 0..255; output [N,68,2] in input
/// pixels. Every operation is differentiable, so a loss on the landmarks trains through to the image.
/// </summary>
internal sealed class FaceLandmark68Net : nn.Module<Tensor, Tensor>
{
    public const int InputSize = 112;
    public const int Points = 68;

    readonly ModuleList<DenseBlock> dense;
    readonly Parameter fc_weight,
        fc_bias;

    public FaceLandmark68Net()
        : base(nameof(FaceLandmark68Net))
    {
        dense = new ModuleList<DenseBlock>(
            new DenseBlock(3, 32, first: true),
            new DenseBlock(32, 64),
            new DenseBlock(64, 128),
            new DenseBlock(128, 256)
        );
        fc_weight = new Parameter(torch.zeros(256, 2 * Points));
        fc_bias = new Parameter(torch.zeros(2 * Points));
        register_module("dense", dense);
        register_parameter("fc_weight", fc_weight);
        register_parameter("fc_bias", fc_bias);
    }

    /// <summary>
    /// The network's preprocessing of a batch [N,3,H,W] in [0,1]: the crop, zero-padding to a centred square and a
    /// bilinear resize to 112x112 (none when already that size), scaled to 0..255. Differentiable.
    /// </summary>
    public static Tensor Prepare(Tensor rgb01, Imaging.FaceCrop crop) =>
        Imaging.SquareFit.Apply(crop.Apply(rgb01), InputSize, out _).Times(255f);

    /// <summary>[N,3,112,112] RGB 0..255 -> landmarks [N,68,2] (x, y) in input pixels.</summary>
    public override Tensor forward(Tensor rgb255)
    {
        var mean = torch
            .tensor(FaceRecognitionNet.MeanRgb, dtype: rgb255.dtype, device: rgb255.device)
            .view(1, 3, 1, 1);
        var x = (rgb255 - mean).DividedBy(255f);
        foreach (var block in dense)
            x = block.forward(x);
        x = F.avg_pool2d(x, 7, 2);
        var relative = x.flatten(1).matmul(fc_weight).Plus(fc_bias);
        return relative.view(-1, Points, 2).Times(InputSize);
    }

    /// <summary>Plain 3x3 conv + bias (the first layer of the first block).</summary>
    internal sealed class PlainConv : nn.Module<Tensor, int, Tensor>
    {
        readonly Parameter weight,
            bias;

        public PlainConv(int cin, int cout)
            : base(nameof(PlainConv))
        {
            weight = new Parameter(torch.zeros(cout, cin, 3, 3));
            bias = new Parameter(torch.zeros(cout));
            register_parameter("weight", weight);
            register_parameter("bias", bias);
        }

        public override Tensor forward(Tensor x, int stride) => TfOps.Conv2dSame(x, weight, bias, stride);
    }

    /// <summary>Depthwise 3x3 (TensorFlow 'SAME'), pointwise 1x1, bias.</summary>
    internal sealed class SeparableConv : nn.Module<Tensor, int, Tensor>
    {
        readonly Parameter depthwise,
            pointwise,
            bias;

        public SeparableConv(int cin, int cout)
            : base(nameof(SeparableConv))
        {
            depthwise = new Parameter(torch.zeros(cin, 1, 3, 3));
            pointwise = new Parameter(torch.zeros(cout, cin, 1, 1));
            bias = new Parameter(torch.zeros(cout));
            register_parameter("depthwise", depthwise);
            register_parameter("pointwise", pointwise);
            register_parameter("bias", bias);
        }

        public override Tensor forward(Tensor x, int stride) =>
            F.conv2d(TfOps.Conv2dSame(x, depthwise, null, stride, groups: x.shape[1]), pointwise, bias);
    }

    /// <summary>out1 = relu(conv0(x)) at half resolution; each later conv sees the ReLU of the sum of all before
    /// it.</summary>
    internal sealed class DenseBlock : nn.Module<Tensor, Tensor>
    {
        readonly nn.Module<Tensor, int, Tensor> conv0,
            conv1,
            conv2,
            conv3;

        public DenseBlock(int cin, int cout, bool first = false)
            : base(nameof(DenseBlock))
        {
            conv0 = first ? new PlainConv(cin, cout) : new SeparableConv(cin, cout);
            conv1 = new SeparableConv(cout, cout);
            conv2 = new SeparableConv(cout, cout);
            conv3 = new SeparableConv(cout, cout);
            register_module("conv0", conv0);
            register_module("conv1", conv1);
            register_module("conv2", conv2);
            register_module("conv3", conv3);
        }

        public override Tensor forward(Tensor x)
        {
            var out1 = F.relu(conv0.call(x, 2));
            var out2 = conv1.call(out1, 1);
            var out3 = conv2.call(F.relu(out1.Plus(out2)), 1);
            var out4 = conv3.call(F.relu(out1.Plus(out2.Plus(out3))), 1);
            return F.relu(out1.Plus(out2.Plus(out3.Plus(out4))));
        }
    }
}
