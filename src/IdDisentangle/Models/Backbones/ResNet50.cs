using IdDisentangle.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Models.Backbones;

/// <summary>
/// ResNet-50 (He et al. 2016) with torchvision's module names, returning the 2048-D average-pooled feature
/// (<see cref="Logits"/> adds the ImageNet classifier). Keras weights (keras_applications naming: conv1, bn_conv1,
/// res2a_branch2a, bn2a_branch2a, ...) load through <c>BackboneWeights.LoadKeras</c>: their convolution biases and BN
/// epsilon
/// (1e-3) fold exactly into the BN statistics, and their downsampling stride sits on the first 1x1 convolution of a
/// block (the original Caffe design) rather than on the 3x3 (torchvision's "v1.5") — <see cref="StrideOnFirst1x1"/>.
/// Input: [N,3,224,224] in the preprocessing of the weights (Keras: BGR, ImageNet mean subtracted, 0..255).
/// </summary>
internal sealed class ResNet50 : nn.Module<Tensor, Tensor>
{
    public const int InputSize = 224;
    public const int FeatureSize = 2048;

    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly Sequential layer1,
        layer2,
        layer3,
        layer4;
    readonly Linear fc;

    public ResNet50(bool strideOnFirst1x1 = false)
        : base(nameof(ResNet50))
    {
        StrideOnFirst1x1 = strideOnFirst1x1;
        conv1 = nn.Conv2d(3, 64, 7, stride: 2, padding: 3, bias: false);
        bn1 = nn.BatchNorm2d(64);
        layer1 = Stage(64, 64, 3, 1);
        layer2 = Stage(256, 128, 4, 2);
        layer3 = Stage(512, 256, 6, 2);
        layer4 = Stage(1024, 512, 3, 2);
        fc = nn.Linear(2048, 1000);
        RegisterComponents();
    }

    /// <summary>True for Keras/Caffe weights: a block's stride is applied by its first 1x1 convolution.</summary>
    public bool StrideOnFirst1x1 { get; }

    Sequential Stage(int cin, int width, int blocks, int stride)
    {
        var list = new List<nn.Module<Tensor, Tensor>> { new Bottleneck(cin, width, stride, StrideOnFirst1x1) };
        for (int i = 1; i < blocks; i++)
            list.Add(new Bottleneck(width * 4, width, 1, StrideOnFirst1x1));
        return nn.Sequential(list.ToArray());
    }

    public override Tensor forward(Tensor x)
    {
        x = F.max_pool2d(F.relu(bn1.call(conv1.call(x))), 3, 2, 1);
        x = layer4.call(layer3.call(layer2.call(layer1.call(x))));
        return x.mean([2, 3]);
    }

    /// <summary>ImageNet class scores (before softmax).</summary>
    public Tensor Logits(Tensor x) => fc.call(forward(x));

    /// <summary>Preprocessing of [N,3,H,W] in [0,1] for Keras weights: bilinear resize to 224x224, then <see
    /// cref="KerasPreprocess"/>.</summary>
    public static Tensor Prepare(Tensor rgb01) =>
        KerasPreprocess(Imaging.ImageOps.Resize(rgb01, InputSize, InputSize, Imaging.ResizeFilter.Bilinear));

    /// <summary>Keras/Caffe input: RGB [0,1] -> BGR 0..255 minus the ImageNet mean.</summary>
    public static Tensor KerasPreprocess(Tensor rgb01)
    {
        var bgr = rgb01.flip(1).Times(255f);
        var mean = torch
            .tensor(new float[] { 103.939f, 116.779f, 123.68f }, dtype: bgr.dtype, device: bgr.device)
            .view(1, 3, 1, 1);
        return bgr - mean;
    }

    internal sealed class Bottleneck : nn.Module<Tensor, Tensor>
    {
        readonly Conv2d conv1,
            conv2,
            conv3;
        readonly BatchNorm2d bn1,
            bn2,
            bn3;
        readonly Sequential? downsample;

        public Bottleneck(int cin, int width, int stride, bool strideOnFirst1x1)
            : base(nameof(Bottleneck))
        {
            int s1 = strideOnFirst1x1 ? stride : 1,
                s2 = strideOnFirst1x1 ? 1 : stride;
            conv1 = nn.Conv2d(cin, width, 1, stride: s1, bias: false);
            bn1 = nn.BatchNorm2d(width);
            conv2 = nn.Conv2d(width, width, 3, stride: s2, padding: 1, bias: false);
            bn2 = nn.BatchNorm2d(width);
            conv3 = nn.Conv2d(width, width * 4, 1, bias: false);
            bn3 = nn.BatchNorm2d(width * 4);
            if (stride != 1 || cin != width * 4)
                downsample = nn.Sequential(
                    nn.Conv2d(cin, width * 4, 1, stride: stride, bias: false),
                    nn.BatchNorm2d(width * 4)
                );
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var y = F.relu(bn1.call(conv1.call(x)));
            y = F.relu(bn2.call(conv2.call(y)));
            y = bn3.call(conv3.call(y));
            return F.relu(y.Plus(downsample is null ? x : downsample.call(x)));
        }
    }
}
