using IdDisentangle.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Models.FaceApi;

/// <summary>
/// face-api.js's face detector: an SSD head on a MobileNet v1 (TensorFlow object detection API export). Input to
/// <see cref="forward"/>: [N,3,512,512] RGB in 0..255; output the decoded boxes [N,5118,4] as (ymin, xmin, ymax,
/// xmax) relative to the input square, and the face scores [N,5118]. Non-maximum suppression happens outside
/// (in <c>Faces.FaceDetector</c>), as in face-api.js.
/// </summary>
internal sealed class SsdMobilenetV1 : nn.Module<Tensor, (Tensor Boxes, Tensor Scores)>
{
    public const int InputSize = 512;
    public const int Anchors = 5118;

    // Depthwise stride-2 layers of the backbone (the others keep the resolution).
    static readonly int[] StridedPairs = [2, 4, 6, 12];
    static readonly int[] PairChannels = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024];

    // The extra SSD feature layers: (in, out, kernel, stride).
    internal static readonly (int In, int Out, int Kernel, int Stride)[] ExtraLayers =
    [
        (1024, 256, 1, 1),
        (256, 512, 3, 2),
        (512, 128, 1, 1),
        (128, 256, 3, 2),
        (256, 128, 1, 1),
        (128, 256, 3, 2),
        (256, 64, 1, 1),
        (64, 128, 3, 2),
    ];

    // Box predictors read these feature maps, in this order: conv11, the backbone's output, extra layers 1, 3, 5, 7.
    internal static readonly (int Channels, int AnchorsPerCell)[] Predictors =
    [
        (512, 3),
        (1024, 6),
        (512, 6),
        (256, 6),
        (256, 6),
        (128, 6),
    ];

    readonly Conv conv0;
    readonly ModuleList<SeparablePair> pairs;
    readonly ModuleList<Conv> extra;
    readonly ModuleList<BoxPredictor> predictors;
    readonly Tensor anchors;

    public SsdMobilenetV1()
        : base(nameof(SsdMobilenetV1))
    {
        conv0 = new Conv(3, 32, 3);
        pairs = new ModuleList<SeparablePair>(
            Enumerable.Range(1, 13).Select(i => new SeparablePair(PairChannels[i - 1], PairChannels[i])).ToArray()
        );
        extra = new ModuleList<Conv>(ExtraLayers.Select(l => new Conv(l.In, l.Out, l.Kernel)).ToArray());
        predictors = new ModuleList<BoxPredictor>(
            Predictors.Select(p => new BoxPredictor(p.Channels, p.AnchorsPerCell)).ToArray()
        );
        anchors = torch.zeros(Anchors, 4);
        register_module("conv0", conv0);
        register_module("pairs", pairs);
        register_module("extra", extra);
        register_module("predictors", predictors);
        register_buffer("anchors", anchors);
    }

    /// <summary>[N,3,512,512] RGB 0..255 -> boxes [N,P,4] (ymin, xmin, ymax, xmax) in [0,1] of the input, scores
    /// [N,P].</summary>
    public override (Tensor Boxes, Tensor Scores) forward(Tensor rgb255)
    {
        var x = Relu6(conv0.forward(rgb255.DividedBy(127.5f).Minus(1f), 2));
        Tensor? conv11 = null;
        for (int i = 1; i <= 13; i++)
        {
            x = pairs[i - 1].forward(x, StridedPairs.Contains(i) ? 2 : 1);
            if (i == 11)
                conv11 = x;
        }
        var features = new List<Tensor> { conv11!, x };
        var e = x;
        for (int i = 0; i < extra.Count; i++)
        {
            e = Relu6(extra[i].forward(e, ExtraLayers[i].Stride));
            if (i % 2 == 1)
                features.Add(e);
        }
        var encodings = new List<Tensor>();
        var classes = new List<Tensor>();
        for (int i = 0; i < predictors.Count; i++)
        {
            var (enc, cls) = predictors[i].forward(features[i]);
            encodings.Add(enc);
            classes.Add(cls);
        }
        return (Decode(torch.cat(encodings, 1)), torch.sigmoid(torch.cat(classes, 1).select(2, 1)));
    }

    /// <summary>
    /// The TF object detection API's box coder with scale factors (10, 10, 5, 5): offsets of the centre in units of
    /// the anchor's size, and log size ratios.
    /// </summary>
    Tensor Decode(Tensor encodings)
    {
        var a = anchors.to(encodings.dtype);
        var size = a[.., 2..4] - a[.., 0..2];
        var centre = a[.., 0..2].Plus(size.DividedBy(2));
        var half = (torch.exp(encodings[.., .., 2..4].DividedBy(5f)) * size).DividedBy(2);
        var c = (encodings[.., .., 0..2].DividedBy(10f) * size).Plus(centre);
        return torch.cat([c - half, c.Plus(half)], 2);
    }

    static Tensor Relu6(Tensor x) => x.Clamp(0, 6);

    /// <summary>A convolution with TensorFlow 'SAME' padding and a bias (the exported graph's folded batch
    /// norm).</summary>
    internal sealed class Conv : nn.Module<Tensor, int, Tensor>
    {
        readonly Parameter weight,
            bias;
        readonly bool depthwise;

        public Conv(int cin, int cout, int kernel, bool depthwise = false)
            : base(nameof(Conv))
        {
            this.depthwise = depthwise;
            weight = new Parameter(torch.zeros(cout, depthwise ? 1 : cin, kernel, kernel));
            bias = new Parameter(torch.zeros(cout));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x, int stride) =>
            TfOps.Conv2dSame(x, weight, bias, stride, groups: depthwise ? x.shape[1] : 1);
    }

    /// <summary>Depthwise 3x3 (batch norm folded) + ReLU6, pointwise 1x1 + ReLU6.</summary>
    internal sealed class SeparablePair : nn.Module<Tensor, int, Tensor>
    {
        readonly Conv depthwise,
            pointwise;

        public SeparablePair(int cin, int cout)
            : base(nameof(SeparablePair))
        {
            depthwise = new Conv(cin, cin, 3, depthwise: true);
            pointwise = new Conv(cin, cout, 1);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x, int stride) =>
            Relu6(pointwise.forward(Relu6(depthwise.forward(x, stride)), 1));
    }

    /// <summary>1x1 convolutions giving, per cell and anchor, 4 box encodings and 3 class logits (background, face,
    /// unused).</summary>
    internal sealed class BoxPredictor : nn.Module<Tensor, (Tensor, Tensor)>
    {
        readonly Conv box,
            cls;

        public BoxPredictor(int channels, int anchorsPerCell)
            : base(nameof(BoxPredictor))
        {
            box = new Conv(channels, 4 * anchorsPerCell, 1);
            cls = new Conv(channels, 3 * anchorsPerCell, 1);
            RegisterComponents();
        }

        public override (Tensor, Tensor) forward(Tensor x)
        {
            long n = x.shape[0];
            // TensorFlow orders anchors by (row, column, anchor): channels last before flattening.
            return (
                box.forward(x, 1).permute(0, 2, 3, 1).reshape(n, -1, 4),
                cls.forward(x, 1).permute(0, 2, 3, 1).reshape(n, -1, 3)
            );
        }
    }
}
