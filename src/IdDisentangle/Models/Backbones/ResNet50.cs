using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Models.Backbones;

/// <summary>
/// ResNet-50 (He et al. 2016) with torchvision's module names, returning the 2048-D average-pooled feature
/// (<see cref="Logits"/> adds the ImageNet classifier). Keras weights (keras_applications naming: conv1, bn_conv1,
/// res2a_branch2a, bn2a_branch2a, ...) load through <see cref="LoadKeras"/>: their convolution biases and BN epsilon
/// (1e-3) fold exactly into the BN statistics, and their downsampling stride sits on the first 1x1 convolution of a
/// block (the original Caffe design) rather than on the 3x3 (torchvision's "v1.5") — <see cref="StrideOnFirst1x1"/>.
/// Input: [N,3,224,224] in the preprocessing of the weights (Keras: BGR, ImageNet mean subtracted, 0..255).
/// </summary>
public sealed class ResNet50 : nn.Module<Tensor, Tensor>
{
    public const int InputSize = 224;
    public const int FeatureSize = 2048;

    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly Sequential layer1, layer2, layer3, layer4;
    readonly Linear fc;

    public ResNet50(bool strideOnFirst1x1 = false) : base(nameof(ResNet50))
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
        for (int i = 1; i < blocks; i++) list.Add(new Bottleneck(width * 4, width, 1, StrideOnFirst1x1));
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

    /// <summary>Keras ResNet50 weights (TensorFlow names and layouts) into the torchvision layout.</summary>
    public void LoadKeras(IReadOnlyDictionary<string, Tensor> tf, string file)
    {
        if (!StrideOnFirst1x1) throw new InvalidOperationException("Keras ResNet50 weights need a ResNet50(strideOnFirst1x1: true)");
        var src = new Weights.TensorSource(tf, file);
        Tensor Take(string k) => src.Take(k);
        var sd = new Dictionary<string, Tensor>();
        void ConvBn(string conv, string bn, string target, string targetBn)
        {
            sd[$"{target}.weight"] = Weights.TfjsWeights.ConvFilter(Take($"{conv}/kernel"));
            // BN(conv + b) with eps 1e-3 == BN'(conv) with mean - b and var + 1e-3 - 1e-5 (torchvision's eps).
            var bias = src.Has($"{conv}/bias") ? Take($"{conv}/bias") : torch.zeros(sd[$"{target}.weight"].shape[0]);
            sd[$"{targetBn}.weight"] = Take($"{bn}/gamma");
            sd[$"{targetBn}.bias"] = Take($"{bn}/beta");
            sd[$"{targetBn}.running_mean"] = Take($"{bn}/moving_mean") - bias;
            sd[$"{targetBn}.running_var"] = Take($"{bn}/moving_variance") + (1e-3 - 1e-5);
            sd[$"{targetBn}.num_batches_tracked"] = torch.tensor(0L);
        }
        ConvBn("conv1", "bn_conv1", "conv1", "bn1");
        int[] blocks = [3, 4, 6, 3];
        for (int s = 0; s < 4; s++)
            for (int b = 0; b < blocks[s]; b++)
            {
                string id = $"{s + 2}{(char)('a' + b)}", prefix = $"layer{s + 1}.{b}";
                ConvBn($"res{id}_branch2a", $"bn{id}_branch2a", $"{prefix}.conv1", $"{prefix}.bn1");
                ConvBn($"res{id}_branch2b", $"bn{id}_branch2b", $"{prefix}.conv2", $"{prefix}.bn2");
                ConvBn($"res{id}_branch2c", $"bn{id}_branch2c", $"{prefix}.conv3", $"{prefix}.bn3");
                if (b == 0) ConvBn($"res{id}_branch1", $"bn{id}_branch1", $"{prefix}.downsample.0", $"{prefix}.downsample.1");
            }
        sd["fc.weight"] = Take("fc1000/kernel").t().contiguous();
        sd["fc.bias"] = Take("fc1000/bias");
        src.RequireAllUsed();
        Weights.StateDicts.Assign(this, sd, file);
    }

    /// <summary>Preprocessing of [N,3,H,W] in [0,1] for Keras weights: bilinear resize to 224x224, then <see cref="KerasPreprocess"/>.</summary>
    public static Tensor Prepare(Tensor rgb01) =>
        KerasPreprocess(Imaging.ImageOps.Resize(rgb01, InputSize, InputSize, Imaging.ResizeFilter.Bilinear));

    /// <summary>Keras/Caffe input: RGB [0,1] -> BGR 0..255 minus the ImageNet mean.</summary>
    public static Tensor KerasPreprocess(Tensor rgb01)
    {
        var bgr = rgb01.flip(1) * 255f;
        var mean = torch.tensor(new float[] { 103.939f, 116.779f, 123.68f }, dtype: bgr.dtype, device: bgr.device).view(1, 3, 1, 1);
        return bgr - mean;
    }

    internal sealed class Bottleneck : nn.Module<Tensor, Tensor>
    {
        readonly Conv2d conv1, conv2, conv3;
        readonly BatchNorm2d bn1, bn2, bn3;
        readonly Sequential? downsample;

        public Bottleneck(int cin, int width, int stride, bool strideOnFirst1x1) : base(nameof(Bottleneck))
        {
            int s1 = strideOnFirst1x1 ? stride : 1, s2 = strideOnFirst1x1 ? 1 : stride;
            conv1 = nn.Conv2d(cin, width, 1, stride: s1, bias: false);
            bn1 = nn.BatchNorm2d(width);
            conv2 = nn.Conv2d(width, width, 3, stride: s2, padding: 1, bias: false);
            bn2 = nn.BatchNorm2d(width);
            conv3 = nn.Conv2d(width, width * 4, 1, bias: false);
            bn3 = nn.BatchNorm2d(width * 4);
            if (stride != 1 || cin != width * 4)
                downsample = nn.Sequential(nn.Conv2d(cin, width * 4, 1, stride: stride, bias: false), nn.BatchNorm2d(width * 4));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var y = F.relu(bn1.call(conv1.call(x)));
            y = F.relu(bn2.call(conv2.call(y)));
            y = bn3.call(conv3.call(y));
            return F.relu(y + (downsample is null ? x : downsample.call(x)));
        }
    }
}
