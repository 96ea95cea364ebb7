using IdDisentangle.Runtime;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Imaging;

/// <summary>Conversions between SkiaSharp bitmaps (RGBA8888) and float image tensors [3,H,W] in [0,1].</summary>
internal static class SkiaTensors
{
    /// <summary>Unpremultiplied RGBA pixels to [3,H,W] float32 in [0,1]; alpha is dropped.</summary>
    public static Tensor FromBitmap(SKBitmap bitmap)
    {
        if (bitmap.ColorType != SKColorType.Rgba8888)
        {
            using var converted = new SKBitmap(
                new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul)
            );
            if (!bitmap.CopyTo(converted, SKColorType.Rgba8888))
                throw new InvalidOperationException("cannot convert bitmap to RGBA8888");
            return FromBitmap(converted);
        }
        int w = bitmap.Width,
            h = bitmap.Height;
        using var scope = torch.NewDisposeScope();
        var rgba = torch.empty([h, w, 4], ScalarType.Byte);
        var pixels = bitmap.GetPixelSpan();
        int rowBytes = bitmap.RowBytes;
        if (rowBytes == w * 4)
            rgba.bytes = pixels;
        else
        {
            var packed = new byte[h * w * 4];
            for (int y = 0; y < h; y++)
                pixels.Slice(y * rowBytes, w * 4).CopyTo(packed.AsSpan(y * w * 4));
            rgba.bytes = packed;
        }
        return RgbaToImage(rgba).MoveToOuterDisposeScope();
    }

    /// <summary>[H,W,4] uint8 to [3,H,W] float32 in [0,1].</summary>
    internal static Tensor RgbaToImage(Tensor rgba) =>
        rgba.narrow(2, 0, 3).permute(2, 0, 1).to(ScalarType.Float32).DividedByInPlace(255f).contiguous();

    /// <summary>[3,H,W] (any float range; clamped to [0,1], rounded) to an opaque RGBA8888 bitmap.</summary>
    public static SKBitmap ToBitmap(Tensor image)
    {
        if (image.dim() == 4 && image.shape[0] == 1)
            image = image[0];
        if (image.dim() != 3 || image.shape[0] != 3)
            throw new ArgumentException($"expected an image tensor [3,H,W], got [{string.Join(",", image.shape)}]");
        int h = (int)image.shape[1],
            w = (int)image.shape[2];
        byte[] packed;
        using (torch.NewDisposeScope())
        using (torch.no_grad())
        {
            var bytes = image
                .detach()
                .to(ScalarType.Float32)
                .cpu()
                .Clamp(0f, 1f)
                .Times(255f)
                .round()
                .to(ScalarType.Byte);
            var alpha = KeptScalars.Full([1, h, w], 255, ScalarType.Byte);
            var rgba = torch.cat([bytes, alpha], 0).permute(1, 2, 0).contiguous();
            packed = rgba.bytes.ToArray();
        }
        var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque));
        packed.AsSpan().CopyTo(bmp.GetPixelSpan());
        return bmp;
    }
}
