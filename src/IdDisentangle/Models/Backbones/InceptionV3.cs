using IdDisentangle.Runtime;
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
        Imaging.ImageOps.Resize(rgb01, InputSize, InputSize, Imaging.ResizeFilter.Bilinear).Times(2f).Minus(1f);

    /// <summary>[N,3,299,299] in [-1,1] -> [N,2048] average-pooled features.</summary>
    public override Tensor forward(Tensor x)
    {
        if (
            folded is not null
            && !training
            && !torch.is_grad_enabled()
            && x.device_type == folded.Device.type
            && x.device_index == folded.Device.index
            && x.dtype == folded.Type
        )
            return folded.Forward(x);
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

    Folded? folded;

    /// <summary>
    /// Inference without autograd, the same function in fewer passes: each batch norm folded into its convolution
    /// (weight times gamma/sqrt(var + eps), the shift as a bias), the 1x1 convolutions of a block that read the same
    /// input as one matrix product, the stem channels-last. A snapshot of the weights as they are now: used in eval
    /// mode without gradients on the same device and dtype, dropped by train() and by loading a state dict; changing
    /// the weights in place in between is not seen, so call this on a frozen network.
    /// </summary>
    public void FoldForInference()
    {
        DropFolded();
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        folded = new Folded(this);
    }

    internal bool IsFolded => folded is not null;

    void DropFolded()
    {
        folded?.Dispose();
        folded = null;
    }

    public override void train(bool on = true)
    {
        if (on)
            DropFolded();
        base.train(on);
    }

    public override (IList<string>, IList<string>) load_state_dict(
        Dictionary<string, Tensor> source,
        bool strict = true,
        IList<string>? skip = null
    )
    {
        DropFolded();
        return base.load_state_dict(source, strict, skip);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            DropFolded();
        base.Dispose(disposing);
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

    /// <summary>The network with its batch norms folded (<see cref="FoldForInference"/>).</summary>
    sealed class Folded : IDisposable
    {
        readonly List<IDisposable> owned = [];
        readonly Func<Tensor, Tensor>[] stages;

        public Folded(InceptionV3 net)
        {
            var c1a = Own(owned, net.Conv2d_1a_3x3.Fold());
            var c2a = Own(owned, net.Conv2d_2a_3x3.Fold());
            var c2b = Own(owned, net.Conv2d_2b_3x3.Fold());
            var c3b = Own(owned, net.Conv2d_3b_1x1.Fold());
            var c4a = Own(owned, net.Conv2d_4a_3x3.Fold());
            Device = c1a.Weight.device;
            Type = c1a.Weight.dtype;
            stages =
            [
                x => F.max_pool2d(c2b.Forward(c2a.Forward(c1a.Forward(MemoryLayout.ChannelsLast(x)))), 3, 2),
                x => F.max_pool2d(c4a.Forward(c3b.PointwiseChannelsLast(x)), 3, 2).contiguous(),
                net.Mixed_5b.Fold(owned),
                net.Mixed_5c.Fold(owned),
                net.Mixed_5d.Fold(owned),
                net.Mixed_6a.Fold(owned),
                net.Mixed_6b.Fold(owned),
                net.Mixed_6c.Fold(owned),
                net.Mixed_6d.Fold(owned),
                net.Mixed_6e.Fold(owned),
                net.Mixed_7a.Fold(owned),
                net.Mixed_7b.Fold(owned),
                net.Mixed_7c.Fold(owned),
            ];
        }

        public Device Device { get; }
        public ScalarType Type { get; }

        public Tensor Forward(Tensor x)
        {
            foreach (var stage in stages)
                x = stage(x);
            return x.mean([2, 3]);
        }

        public void Dispose()
        {
            foreach (var d in owned)
                d.Dispose();
        }
    }

    static T Own<T>(List<IDisposable> owned, T item)
        where T : IDisposable
    {
        owned.Add(item);
        return item;
    }

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

        /// <summary>The unit's convolution weight times the batch norm's scale, and its shift.</summary>
        internal (Tensor Weight, Tensor Bias) FoldedWeights()
        {
            var scale = bn.weight! / bn.running_var!.Plus(Epsilon).sqrt();
            var bias = bn.bias! - bn.running_mean! * scale;
            return (conv.weight * scale.view(-1, 1, 1, 1), bias);
        }

        internal FoldedConv Fold()
        {
            var (w, b) = FoldedWeights();
            return new FoldedConv(w.contiguous().DetachFromDisposeScope(), b.DetachFromDisposeScope(), conv);
        }

        const double Epsilon = 0.001;
    }

    /// <summary>A conv+BN+ReLU unit as one convolution with a bias.</summary>
    internal sealed class FoldedConv(Tensor weight, Tensor bias, Conv2d conv) : IDisposable
    {
        readonly long[] stride = conv.stride,
            padding = conv.padding!;

        public Tensor Weight => weight;

        public Tensor Forward(Tensor x) => F.conv2d(x, weight, bias, stride, padding).relu_();

        /// <summary>A 1x1 unit on channels-last input as a matrix product over the pixels (libtorch 2.10's 1x1
        /// convolution of channels-last input is wrong for some output widths, 80 among them).</summary>
        public Tensor PointwiseChannelsLast(Tensor x)
        {
            long n = x.shape[0],
                h = x.shape[2],
                w = x.shape[3];
            var pixels = x.permute(0, 2, 3, 1).reshape(n * h * w, x.shape[1]);
            return pixels.matmul(weight.flatten(1).t()).PlusInPlace(bias).relu_().view(n, h, w, -1).permute(0, 3, 1, 2);
        }

        public void Dispose()
        {
            weight.Dispose();
            bias.Dispose();
        }
    }

    /// <summary>
    /// Sibling 1x1 units of a block that read the same input, as one matrix product over the pixels. A unit that
    /// reads the block's 3x3 average pool joins them (a 1x1 convolution without bias commutes with the pool, which
    /// then runs on its fewer output channels).
    /// </summary>
    internal sealed class Merged1x1 : IDisposable
    {
        readonly Tensor weight;
        readonly Tensor[] biases;
        readonly long[] widths;
        readonly Func<Tensor, Tensor>? pool;

        /// <summary>The units reading the input, then optionally one reading its <paramref name="pool"/> (it comes
        /// last in the outputs).</summary>
        public Merged1x1(BasicConv[] units, BasicConv? pooled = null, Func<Tensor, Tensor>? pool = null)
        {
            var all = pooled is null ? units : [.. units, pooled];
            var parts = all.Select(u => u.FoldedWeights()).ToArray();
            weight = torch.cat(parts.Select(p => p.Weight.flatten(1)).ToArray(), 0).DetachFromDisposeScope();
            biases = parts.Select(p => p.Bias.view(-1, 1, 1).DetachFromDisposeScope()).ToArray();
            widths = parts.Select(p => p.Bias.shape[0]).ToArray();
            this.pool = pooled is null ? null : pool;
        }

        /// <summary>Each unit's output, in the order given (the pooled unit last).</summary>
        public Tensor[] Forward(Tensor x)
        {
            long n = x.shape[0],
                h = x.shape[2],
                w = x.shape[3];
            var y = weight.matmul(x.reshape(n, x.shape[1], h * w)).view(n, -1, h, w);
            var outs = new Tensor[widths.Length];
            long offset = 0;
            for (int i = 0; i < outs.Length; i++)
            {
                var part = y.narrow(1, offset, widths[i]);
                offset += widths[i];
                outs[i] =
                    pool is not null && i == outs.Length - 1
                        ? pool(part).PlusInPlace(biases[i])
                        : part.PlusInPlace(biases[i]);
                outs[i].relu_();
            }
            return outs;
        }

        public void Dispose()
        {
            weight.Dispose();
            foreach (var b in biases)
                b.Dispose();
        }
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

        internal Func<Tensor, Tensor> Fold(List<IDisposable> owned)
        {
            var ones = Own(owned, new Merged1x1([branch1x1, branch5x5_1, branch3x3dbl_1], branch_pool, pool));
            var c5x5 = Own(owned, branch5x5_2.Fold());
            var c3x3a = Own(owned, branch3x3dbl_2.Fold());
            var c3x3b = Own(owned, branch3x3dbl_3.Fold());
            return x =>
            {
                var o = ones.Forward(x);
                return torch.cat([o[0], c5x5.Forward(o[1]), c3x3b.Forward(c3x3a.Forward(o[2])), o[3]], 1);
            };
        }
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

        internal Func<Tensor, Tensor> Fold(List<IDisposable> owned)
        {
            var c3x3 = Own(owned, branch3x3.Fold());
            var d1 = Own(owned, branch3x3dbl_1.Fold());
            var d2 = Own(owned, branch3x3dbl_2.Fold());
            var d3 = Own(owned, branch3x3dbl_3.Fold());
            return x => torch.cat([c3x3.Forward(x), d3.Forward(d2.Forward(d1.Forward(x))), F.max_pool2d(x, 3, 2)], 1);
        }
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

        internal Func<Tensor, Tensor> Fold(List<IDisposable> owned)
        {
            var ones = Own(owned, new Merged1x1([branch1x1, branch7x7_1, branch7x7dbl_1], branch_pool, pool));
            var a = new[] { branch7x7_2, branch7x7_3 }.Select(u => Own(owned, u.Fold())).ToArray();
            var b = new[] { branch7x7dbl_2, branch7x7dbl_3, branch7x7dbl_4, branch7x7dbl_5 }
                .Select(u => Own(owned, u.Fold()))
                .ToArray();
            return x =>
            {
                var o = ones.Forward(x);
                return torch.cat(
                    [o[0], a.Aggregate(o[1], (t, c) => c.Forward(t)), b.Aggregate(o[2], (t, c) => c.Forward(t)), o[3]],
                    1
                );
            };
        }
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

        internal Func<Tensor, Tensor> Fold(List<IDisposable> owned)
        {
            var ones = Own(owned, new Merged1x1([branch3x3_1, branch7x7x3_1]));
            var c3x3 = Own(owned, branch3x3_2.Fold());
            var b = new[] { branch7x7x3_2, branch7x7x3_3, branch7x7x3_4 }.Select(u => Own(owned, u.Fold())).ToArray();
            return x =>
            {
                var o = ones.Forward(x);
                return torch.cat(
                    [c3x3.Forward(o[0]), b.Aggregate(o[1], (t, c) => c.Forward(t)), F.max_pool2d(x, 3, 2)],
                    1
                );
            };
        }
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

        internal Func<Tensor, Tensor> Fold(List<IDisposable> owned)
        {
            var ones = Own(owned, new Merged1x1([branch1x1, branch3x3_1, branch3x3dbl_1], branch_pool, pool));
            var c2a = Own(owned, branch3x3_2a.Fold());
            var c2b = Own(owned, branch3x3_2b.Fold());
            var d2 = Own(owned, branch3x3dbl_2.Fold());
            var d3a = Own(owned, branch3x3dbl_3a.Fold());
            var d3b = Own(owned, branch3x3dbl_3b.Fold());
            return x =>
            {
                var o = ones.Forward(x);
                var d = d2.Forward(o[2]);
                return torch.cat([o[0], c2a.Forward(o[1]), c2b.Forward(o[1]), d3a.Forward(d), d3b.Forward(d), o[3]], 1);
            };
        }
    }
}
