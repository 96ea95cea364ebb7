using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Models.FaceApi;

/// <summary>TensorFlow's padding rules, so networks trained in TensorFlow compute exactly what they did there.</summary>
internal static class TfOps
{
    /// <summary>
    /// 'SAME' padding: output ceil(in / stride); the total padding goes half before and the extra pixel after,
    /// so a stride-2 convolution on an even size pads only on the bottom/right.
    /// </summary>
    public static Tensor PadSame(Tensor x, int kernel, int stride)
    {
        (long before, long after) Pads(long size)
        {
            long output = (size + stride - 1) / stride;
            long total = Math.Max((output - 1) * stride + kernel - size, 0);
            return (total / 2, total - total / 2);
        }
        var (top, bottom) = Pads(x.shape[2]);
        var (left, right) = Pads(x.shape[3]);
        if (top == 0 && bottom == 0 && left == 0 && right == 0) return x;
        return F.pad(x, [left, right, top, bottom]);
    }

    public static Tensor Conv2dSame(Tensor x, Tensor weight, Tensor? bias, int stride, long groups = 1) =>
        F.conv2d(PadSame(x, (int)weight.shape[2], stride), weight, bias, strides: [stride, stride], groups: groups);
}
