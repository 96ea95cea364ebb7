using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Models.Backbones;

/// <summary>
/// InceptionV3 (Szegedy et al. 2016) up to the 2048-D global average pool, the attribute backbone of the paper.
/// Module names follow torchvision (<c>Conv2d_1a_3x3</c>, <c>Mixed_5b.branch1x1</c>, ...), so torchvision
/// state dicts load directly; Keras weights (BatchNormalization without gamma, epsilon 1e-3, and average pools
/// that exclude padding) load through <c>BackboneWeights.LoadKeras</c>, which maps Keras's conv2d_N in creation order.
/// Input [N,3,299,299] scaled to [-1,1] (the Keras / TF-slim convention, which torchvision's
/// transform_input reproduces for its ImageNet weights).
/// </summary>
internal sealed class InceptionV3 : nn.Module<Tensor, Tensor>
{
    public const int InputSize = 299;
    public const int FeatureSize = 2048;

    /// <summary>True for Keras weights: 3x3 average pools divide by the valid pixels only (TensorFlow
    /// 'SAME').</summary>
    public bool PoolExcludesPadding { get; set; }

    readonly BasicConv Conv2d_1a_3x3,
        Conv2d_2a_3x3,
        Conv2d_2b_3x3,
        Conv2d_3b_1x1,
        Conv2d_4a_3x3;
    readonly InceptionA Mixed_5b,
        Mixed_5c,
        Mixed_5d;
    readonly InceptionB Mixed_6a;
    readonly InceptionC Mixed_6b,
        Mixed_6c,
        Mixed_6d,
        Mixed_6e;
    readonly InceptionD Mixed_7a;
    readonly InceptionE Mixed_7b,
        Mixed_7c;

    public InceptionV3()
        : base(nameof(InceptionV3))
    {
        Conv2d_1a_3x3 = new BasicConv(3, 32, (3, 3), stride: 2);
        Conv2d_2a_3x3 = new BasicConv(32, 32, (3, 3));
        Conv2d_2b_3x3 = new BasicConv(32, 64, (3, 3), padding: (1, 1));
        Conv2d_3b_1x1 = new BasicConv(64, 80, (1, 1));
        Conv2d_4a_3x3 = new BasicConv(80, 192, (3, 3));
        Mixed_5b = new InceptionA(192, 32, this);
        Mixed_5c = new InceptionA(256, 64, this);
        Mixed_5d = new InceptionA(288, 64, this);
        Mixed_6a = new InceptionB(288);
        Mixed_6b = new InceptionC(768, 128, this);
        Mixed_6c = new InceptionC(768, 160, this);
        Mixed_6d = new InceptionC(768, 160, this);
        Mixed_6e = new InceptionC(768, 192, this);
        Mixed_7a = new InceptionD(768);
        Mixed_7b = new InceptionE(1280, this);
        Mixed_7c = new InceptionE(2048, this);
        RegisterComponents();
    }

    /// <summary>Preprocessing of [N,3,H,W] in [0,1]: bilinear resize to 299x299 (antialiased when shrinking), scaled to
    /// [-1,1].</summary>
    public static Tensor Prepare(Tensor rgb01) =>
        Imaging.ImageOps.Resize(rgb01, InputSize, InputSize, Imaging.ResizeFilter.Bilinear) * 2f - 1f;

    /// <summary>[N,3,299,299] in [-1,1] -> [N,2048] average-pooled features.</summary>
    public override Tensor forward(Tensor x)
    {
        x = Conv2d_1a_3x3.call(x);
        x = Conv2d_2a_3x3.call(x);
        x = Conv2d_2b_3x3.call(x);
        x = F.max_pool2d(x, 3, 2);
        x = Conv2d_3b_1x1.call(x);
        x = Conv2d_4a_3x3.call(x);
        x = F.max_pool2d(x, 3, 2);
        foreach (
            var m in new nn.Module<Tensor, Tensor>[]
            {
                Mixed_5b,
                Mixed_5c,
                Mixed_5d,
                Mixed_6a,
                Mixed_6b,
                Mixed_6c,
                Mixed_6d,
                Mixed_6e,
                Mixed_7a,
                Mixed_7b,
                Mixed_7c,
            }
        )
            x = m.call(x);
        return x.mean([2, 3]);
    }

    /// <summary>The 94 conv+BN units in Keras's creation order (the order of conv2d_1 .. conv2d_94).</summary>
    public IReadOnlyList<(string Name, BasicConv Unit)> UnitsInKerasOrder()
    {
        var list = new List<(string, BasicConv)>();
        void Add(string prefix, nn.Module m)
        {
            foreach (var (name, child) in m.named_children())
            {
                string full = prefix.Length == 0 ? name : prefix + "." + name;
                if (child is BasicConv b)
                    list.Add((full, b));
                else
                    Add(full, child);
            }
        }
        Add("", this);
        return list;
    }

    /// <summary>
    /// Keras builds InceptionV3's BatchNormalization with scale=False: there is no gamma to train. The scale here
    /// holds the 1 it implies and stays frozen, so training changes what Keras would change and nothing else.
    /// </summary>
    public void FreezeBatchNormScales()
    {
        foreach (var (_, m) in named_modules())
            if (m is BatchNorm2d bn && bn.weight is { } gamma)
                gamma.requires_grad = false;
    }

    internal Tensor AvgPool3x3(Tensor x) =>
        F.avg_pool2d(x, 3, stride: 1, padding: 1, count_include_pad: !PoolExcludesPadding);

    /// <summary>Conv (no bias), BatchNorm (eps 1e-3), ReLU.</summary>
    public sealed class BasicConv : nn.Module<Tensor, Tensor>
    {
        readonly Conv2d conv;
        readonly BatchNorm2d bn;

        public BasicConv(int cin, int cout, (int, int) kernel, int stride = 1, (int, int) padding = default)
            : base(nameof(BasicConv))
        {
            conv = nn.Conv2d(
                cin,
                cout,
                (kernel.Item1, kernel.Item2),
                stride: (stride, stride),
                padding: (padding.Item1, padding.Item2),
                bias: false
            );
            bn = nn.BatchNorm2d(cout, eps: 0.001);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => F.relu(bn.call(conv.call(x)));
    }

    internal sealed class InceptionA : nn.Module<Tensor, Tensor>
    {
        readonly BasicConv branch1x1,
            branch5x5_1,
            branch5x5_2,
            branch3x3dbl_1,
            branch3x3dbl_2,
            branch3x3dbl_3,
            branch_pool;
        readonly Func<Tensor, Tensor> pool;

        public InceptionA(int cin, int poolFeatures, InceptionV3 owner)
            : base(nameof(InceptionA))
        {
            branch1x1 = new BasicConv(cin, 64, (1, 1));
            branch5x5_1 = new BasicConv(cin, 48, (1, 1));
            branch5x5_2 = new BasicConv(48, 64, (5, 5), padding: (2, 2));
            branch3x3dbl_1 = new BasicConv(cin, 64, (1, 1));
            branch3x3dbl_2 = new BasicConv(64, 96, (3, 3), padding: (1, 1));
            branch3x3dbl_3 = new BasicConv(96, 96, (3, 3), padding: (1, 1));
            branch_pool = new BasicConv(cin, poolFeatures, (1, 1));
            pool = owner.AvgPool3x3;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) =>
            torch.cat(
                [
                    branch1x1.call(x),
                    branch5x5_2.call(branch5x5_1.call(x)),
                    branch3x3dbl_3.call(branch3x3dbl_2.call(branch3x3dbl_1.call(x))),
                    branch_pool.call(pool(x)),
                ],
                1
            );
    }

    internal sealed class InceptionB : nn.Module<Tensor, Tensor>
    {
        readonly BasicConv branch3x3,
            branch3x3dbl_1,
            branch3x3dbl_2,
            branch3x3dbl_3;

        public InceptionB(int cin)
            : base(nameof(InceptionB))
        {
            branch3x3 = new BasicConv(cin, 384, (3, 3), stride: 2);
            branch3x3dbl_1 = new BasicConv(cin, 64, (1, 1));
            branch3x3dbl_2 = new BasicConv(64, 96, (3, 3), padding: (1, 1));
            branch3x3dbl_3 = new BasicConv(96, 96, (3, 3), stride: 2);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) =>
            torch.cat(
                [
                    branch3x3.call(x),
                    branch3x3dbl_3.call(branch3x3dbl_2.call(branch3x3dbl_1.call(x))),
                    F.max_pool2d(x, 3, 2),
                ],
                1
            );
    }

    internal sealed class InceptionC : nn.Module<Tensor, Tensor>
    {
        readonly BasicConv branch1x1,
            branch7x7_1,
            branch7x7_2,
            branch7x7_3,
            branch7x7dbl_1,
            branch7x7dbl_2,
            branch7x7dbl_3,
            branch7x7dbl_4,
            branch7x7dbl_5,
            branch_pool;
        readonly Func<Tensor, Tensor> pool;

        public InceptionC(int cin, int c7, InceptionV3 owner)
            : base(nameof(InceptionC))
        {
            branch1x1 = new BasicConv(cin, 192, (1, 1));
            branch7x7_1 = new BasicConv(cin, c7, (1, 1));
            branch7x7_2 = new BasicConv(c7, c7, (1, 7), padding: (0, 3));
            branch7x7_3 = new BasicConv(c7, 192, (7, 1), padding: (3, 0));
            branch7x7dbl_1 = new BasicConv(cin, c7, (1, 1));
            branch7x7dbl_2 = new BasicConv(c7, c7, (7, 1), padding: (3, 0));
            branch7x7dbl_3 = new BasicConv(c7, c7, (1, 7), padding: (0, 3));
            branch7x7dbl_4 = new BasicConv(c7, c7, (7, 1), padding: (3, 0));
            branch7x7dbl_5 = new BasicConv(c7, 192, (1, 7), padding: (0, 3));
            branch_pool = new BasicConv(cin, 192, (1, 1));
            pool = owner.AvgPool3x3;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) =>
            torch.cat(
                [
                    branch1x1.call(x),
                    branch7x7_3.call(branch7x7_2.call(branch7x7_1.call(x))),
                    branch7x7dbl_5.call(
                        branch7x7dbl_4.call(branch7x7dbl_3.call(branch7x7dbl_2.call(branch7x7dbl_1.call(x))))
                    ),
                    branch_pool.call(pool(x)),
                ],
                1
            );
    }

    internal sealed class InceptionD : nn.Module<Tensor, Tensor>
    {
        readonly BasicConv branch3x3_1,
            branch3x3_2,
            branch7x7x3_1,
            branch7x7x3_2,
            branch7x7x3_3,
            branch7x7x3_4;

        public InceptionD(int cin)
            : base(nameof(InceptionD))
        {
            branch3x3_1 = new BasicConv(cin, 192, (1, 1));
            branch3x3_2 = new BasicConv(192, 320, (3, 3), stride: 2);
            branch7x7x3_1 = new BasicConv(cin, 192, (1, 1));
            branch7x7x3_2 = new BasicConv(192, 192, (1, 7), padding: (0, 3));
            branch7x7x3_3 = new BasicConv(192, 192, (7, 1), padding: (3, 0));
            branch7x7x3_4 = new BasicConv(192, 192, (3, 3), stride: 2);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) =>
            torch.cat(
                [
                    branch3x3_2.call(branch3x3_1.call(x)),
                    branch7x7x3_4.call(branch7x7x3_3.call(branch7x7x3_2.call(branch7x7x3_1.call(x)))),
                    F.max_pool2d(x, 3, 2),
                ],
                1
            );
    }

    internal sealed class InceptionE : nn.Module<Tensor, Tensor>
    {
        readonly BasicConv branch1x1,
            branch3x3_1,
            branch3x3_2a,
            branch3x3_2b,
            branch3x3dbl_1,
            branch3x3dbl_2,
            branch3x3dbl_3a,
            branch3x3dbl_3b,
            branch_pool;
        readonly Func<Tensor, Tensor> pool;

        public InceptionE(int cin, InceptionV3 owner)
            : base(nameof(InceptionE))
        {
            branch1x1 = new BasicConv(cin, 320, (1, 1));
            branch3x3_1 = new BasicConv(cin, 384, (1, 1));
            branch3x3_2a = new BasicConv(384, 384, (1, 3), padding: (0, 1));
            branch3x3_2b = new BasicConv(384, 384, (3, 1), padding: (1, 0));
            branch3x3dbl_1 = new BasicConv(cin, 448, (1, 1));
            branch3x3dbl_2 = new BasicConv(448, 384, (3, 3), padding: (1, 1));
            branch3x3dbl_3a = new BasicConv(384, 384, (1, 3), padding: (0, 1));
            branch3x3dbl_3b = new BasicConv(384, 384, (3, 1), padding: (1, 0));
            branch_pool = new BasicConv(cin, 192, (1, 1));
            pool = owner.AvgPool3x3;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var b3 = branch3x3_1.call(x);
            var d3 = branch3x3dbl_2.call(branch3x3dbl_1.call(x));
            return torch.cat(
                [
                    branch1x1.call(x),
                    torch.cat([branch3x3_2a.call(b3), branch3x3_2b.call(b3)], 1),
                    torch.cat([branch3x3dbl_3a.call(d3), branch3x3dbl_3b.call(d3)], 1),
                    branch_pool.call(pool(x)),
                ],
                1
            );
        }
    }
}
