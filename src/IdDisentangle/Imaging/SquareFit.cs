using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Imaging;

/// <summary>
/// How an image was fitted into a square network input: zero-padded to a centred square (as face-api.js does),
/// then resized. Maps points between input pixels and image pixels.
/// </summary>
internal readonly record struct SquareFit(int Width, int Height, int Size)
{
    public int Side => Math.Max(Width, Height);
    public double PadX => (Side - Width) / 2.0;
    public double PadY => (Side - Height) / 2.0;
    public double Scale => (double)Size / Side;

    /// <summary>A point in network-input pixels to image pixels.</summary>
    public (double X, double Y) ToImage(double x, double y) => (x / Scale - PadX, y / Scale - PadY);

    /// <summary>
    /// Pads [N,3,H,W] (any range) with zeros to a centred square and resizes it to Size (bilinear, antialiased when
    /// shrinking). Differentiable; an input already Size x Size is returned as it is.
    /// </summary>
    public static Tensor Apply(Tensor images, int size, out SquareFit fit)
    {
        int h = (int)images.shape[^2],
            w = (int)images.shape[^1];
        fit = new SquareFit(w, h, size);
        if (h == size && w == size)
            return images;
        var x = images;
        if (h != w)
        {
            int side = Math.Max(h, w);
            int left = (side - w) / 2,
                top = (side - h) / 2;
            x = F.pad(x, [left, side - w - left, top, side - h - top]);
        }
        return ImageOps.Resize(x, size, size, ResizeFilter.Bilinear);
    }
}
