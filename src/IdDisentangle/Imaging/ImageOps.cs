using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Imaging;

/// <summary>Named resampling filters for <see cref="ImageOps.Resize"/>.</summary>
internal enum ResizeFilter
{
    Nearest,
    Bilinear,
    Bicubic,
    Area,

    /// <summary>
    /// PIL's Image.resize default (Pillow 7 on): bicubic with PIL's coefficient -0.5, its support widened when
    /// shrinking; libtorch's antialiased bicubic is that kernel, enlarging as well as shrinking.
    /// </summary>
    PilBicubic,
}

/// <summary>Differentiable image operations on tensors [3,H,W] or [N,3,H,W].</summary>
internal static class ImageOps
{
    public static ResizeFilter ParseFilter(string name) =>
        name.ToLowerInvariant() switch
        {
            "nearest" => ResizeFilter.Nearest,
            "bilinear" or "linear" => ResizeFilter.Bilinear,
            "bicubic" or "cubic" => ResizeFilter.Bicubic,
            "area" or "box" => ResizeFilter.Area,
            _ => throw new ArgumentException($"unknown resize filter '{name}' (nearest, bilinear, bicubic, area)"),
        };

    /// <summary>
    /// Resizes to <paramref name="height"/> x <paramref name="width"/>. Bilinear and bicubic use half-pixel centres
    /// (align_corners false) and, when shrinking with <paramref name="antialias"/>, a widened kernel as PIL does.
    /// An input already of the requested size is returned as it is (not resampled).
    /// </summary>
    public static Tensor Resize(
        Tensor images,
        int height,
        int width,
        ResizeFilter filter = ResizeFilter.Bilinear,
        bool antialias = true
    )
    {
        bool single = images.dim() == 3;
        if (images.dim() is not (3 or 4))
            throw new ArgumentException($"expected [C,H,W] or [N,C,H,W], got [{string.Join(",", images.shape)}]");
        if (images.shape[^2] == height && images.shape[^1] == width)
            return images.alias();
        var x = single ? images.unsqueeze(0) : images;
        bool shrinking = height < x.shape[2] || width < x.shape[3];
        var y = filter switch
        {
            ResizeFilter.Nearest => F.interpolate(x, [height, width], mode: InterpolationMode.Nearest),
            ResizeFilter.Area => F.interpolate(x, [height, width], mode: InterpolationMode.Area),
            ResizeFilter.Bicubic => F.interpolate(
                x,
                [height, width],
                mode: InterpolationMode.Bicubic,
                align_corners: false,
                antialias: antialias && shrinking
            ),
            ResizeFilter.PilBicubic => F.interpolate(
                x,
                [height, width],
                mode: InterpolationMode.Bicubic,
                align_corners: false,
                antialias: true
            ),
            _ => F.interpolate(
                x,
                [height, width],
                mode: InterpolationMode.Bilinear,
                align_corners: false,
                antialias: antialias && shrinking
            ),
        };
        return single ? y.squeeze(0) : y;
    }
}
