using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Models.FaceApi;

/// <summary>TensorFlow's padding rules, so networks trained in TensorFlow compute exactly what they did
/// there.</summary>
internal static class TfOps
{
    /// <summary>
    /// 'SAME' padding: output ceil(in / stride); the total padding goes half before and the extra pixel after,
    /// so a stride-2 convolution on an even size pads only on the bottom/right.
    /// </summary>
    public static Tensor PadSame(Tensor x, int kernel, int stride) => PadSame(x, [kernel, kernel], [stride, stride]);

    /// <summary>'SAME' padding for a window of kernel[0] x kernel[1] and strides (rows, columns), filled with <paramref
    /// name="value"/>.</summary>
    public static Tensor PadSame(Tensor x, int[] kernel, int[] stride, double value = 0)
    {
        (long before, long after) Pads(long size, int k, int s)
        {
            long output = (size + s - 1) / s;
            long total = Math.Max((output - 1) * s + k - size, 0);
            return (total / 2, total - total / 2);
        }
        var (top, bottom) = Pads(x.shape[2], kernel[0], stride[0]);
        var (left, right) = Pads(x.shape[3], kernel[1], stride[1]);
        if (top == 0 && bottom == 0 && left == 0 && right == 0)
            return x;
        return F.pad(x, [left, right, top, bottom], value: value);
    }

    public static Tensor Conv2dSame(Tensor x, Tensor weight, Tensor? bias, int stride, long groups = 1) =>
        F.conv2d(PadSame(x, (int)weight.shape[2], stride), weight, bias, strides: [stride, stride], groups: groups);

    /// <summary>
    /// tf.image.resizeBilinear with alignCorners and halfPixelCenters false (what face-api.js applies to tensor
    /// inputs): output pixel i samples the input at i * in / out, the upper neighbour clamped to the last pixel.
    /// Computed as two interpolation matrices, so it is exact and differentiable. [N,C,H,W] -> [N,C,height,width].
    /// </summary>
    public static Tensor ResizeBilinearLegacy(Tensor x, int height, int width)
    {
        long h = x.shape[^2],
            w = x.shape[^1];
        if (h == height && w == width)
            return x;
        var ry = InterpolationMatrix(h, height, x.device);
        var rx = InterpolationMatrix(w, width, x.device);
        return ry.to(x.dtype).matmul(x).matmul(rx.to(x.dtype).t());
    }

    static Tensor InterpolationMatrix(long input, int output, Device device)
    {
        var m = new float[output * input];
        double scale = (double)input / output;
        for (int i = 0; i < output; i++)
        {
            double src = i * scale;
            long lo = (long)Math.Floor(src),
                hi = Math.Min(lo + 1, input - 1);
            double frac = src - lo;
            m[i * input + lo] += (float)(1 - frac);
            m[i * input + hi] += (float)frac;
        }
        return torch.tensor(m, [output, input], device: device);
    }
}
