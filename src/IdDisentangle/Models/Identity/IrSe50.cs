using IdDisentangle.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Models.Identity;

/// <summary>
/// The IR-SE50 ArcFace backbone of InsightFace (Deng et al. 2019) in the layout of <c>model_ir_se50.pth</c>, the
/// identity network of pSp, e4e and other StyleGAN encoders: a 3x3 stem, 24 improved-residual units with
/// squeeze-and-excitation (3, 4, 14 and 3 units of 64, 128, 256 and 512 channels, each stage starting with a
/// stride-2 unit), then BN, flatten, a dense layer to 512 and BN. Input [N,3,112,112] RGB in [-1,1]; output the
/// L2-normalised 512-D embedding.
/// </summary>
internal sealed class IrSe50 : nn.Module<Tensor, Tensor>
{
    public const int InputSize = 112;
    public const int EmbeddingSize = 512;

    readonly Sequential input_layer,
        body,
        output_layer;

    public IrSe50()
        : base(nameof(IrSe50))
    {
        input_layer = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride: 1, padding: 1, bias: false),
            nn.BatchNorm2d(64),
            nn.PReLU(64)
        );
        var units = new List<nn.Module<Tensor, Tensor>>();
        foreach (var (inCh, depth, count) in new[] { (64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3) })
        {
            units.Add(new Unit(inCh, depth, 2));
            for (int i = 1; i < count; i++)
                units.Add(new Unit(depth, depth, 1));
        }
        body = nn.Sequential(units.ToArray());
        output_layer = nn.Sequential(
            nn.BatchNorm2d(512),
            nn.Dropout(0.4),
            nn.Flatten(),
            nn.Linear(512 * 7 * 7, 512),
            nn.BatchNorm1d(512)
        );
        register_module("input_layer", input_layer);
        register_module("body", body);
        register_module("output_layer", output_layer);
    }

    /// <summary>
    /// Preprocessing of a batch [N,3,H,W] in [0,1] as pSp does it: the crop (<see cref="Imaging.FaceCrop.FfhqArcFace"/>
    /// for FFHQ-aligned images), area resampling to 112x112 (adaptive average pooling), scaled to [-1,1].
    /// </summary>
    public static Tensor Prepare(Tensor rgb01, Imaging.FaceCrop crop) =>
        Imaging.ImageOps.Resize(crop.Apply(rgb01), InputSize, InputSize, Imaging.ResizeFilter.Area).Times(2f).Minus(1f);

    public override Tensor forward(Tensor x) =>
        F.normalize(output_layer.call(body.call(input_layer.call(x))), p: 2, dim: 1);

    /// <summary>bottleneck_IR_SE: BN, conv3x3, PReLU, conv3x3 (stride), BN, SE; plus a shortcut (subsampling or 1x1
    /// conv + BN).</summary>
    internal sealed class Unit : nn.Module<Tensor, Tensor>
    {
        readonly nn.Module<Tensor, Tensor> shortcut_layer;
        readonly Sequential res_layer;

        public Unit(int inCh, int depth, int stride)
            : base("bottleneck_IR_SE")
        {
            shortcut_layer =
                inCh == depth
                    ? nn.MaxPool2d(1, stride)
                    : nn.Sequential(nn.Conv2d(inCh, depth, 1, stride: stride, bias: false), nn.BatchNorm2d(depth));
            res_layer = nn.Sequential(
                nn.BatchNorm2d(inCh),
                nn.Conv2d(inCh, depth, 3, stride: 1, padding: 1, bias: false),
                nn.PReLU(depth),
                nn.Conv2d(depth, depth, 3, stride: stride, padding: 1, bias: false),
                nn.BatchNorm2d(depth),
                new SqueezeExcite(depth, 16)
            );
            register_module("shortcut_layer", shortcut_layer);
            register_module("res_layer", res_layer);
        }

        public override Tensor forward(Tensor x) => res_layer.call(x).Plus(shortcut_layer.call(x));
    }

    /// <summary>x * sigmoid(fc2(relu(fc1(mean over space)))).</summary>
    internal sealed class SqueezeExcite : nn.Module<Tensor, Tensor>
    {
        readonly Conv2d fc1,
            fc2;

        public SqueezeExcite(int channels, int reduction)
            : base("SEModule")
        {
            fc1 = nn.Conv2d(channels, channels / reduction, 1, bias: false);
            fc2 = nn.Conv2d(channels / reduction, channels, 1, bias: false);
            register_module("fc1", fc1);
            register_module("fc2", fc2);
        }

        public override Tensor forward(Tensor x) =>
            x * torch.sigmoid(fc2.call(F.relu(fc1.call(x.mean([2, 3], keepdim: true)))));
    }
}
