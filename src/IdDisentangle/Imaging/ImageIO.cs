using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Imaging;

/// <summary>Encoded file formats we write.</summary>
internal enum ImageFormat
{
    Png,
    Jpeg,
    Webp,
}

/// <summary>
/// Image files to and from float tensors through SkiaSharp. Decoding gives [3,H,W] float32 RGB in [0,1]: alpha is
/// dropped (not composited), greyscale and palette images are expanded to RGB, and the EXIF orientation of JPEGs
/// is applied so the tensor is upright as a viewer shows it.
/// </summary>
internal static class ImageIO
{
    /// <summary>Refuse to decode images larger than this many pixels (a decompression bomb guard): 16384 x
    /// 8192.</summary>
    public const long DefaultMaxPixels = 16384L * 8192L;

    static readonly AsyncLocal<long?> Limit = new();

    /// <summary>The pixel limit of reads that give none: <see cref="DefaultMaxPixels"/> unless a caller set one with
    /// <see cref="UseMaxPixels"/>.</summary>
    public static long MaxPixels => Limit.Value ?? DefaultMaxPixels;

    /// <summary>Sets the pixel limit for the calling flow until the result is disposed.</summary>
    public static IDisposable UseMaxPixels(long maxPixels)
    {
        if (maxPixels <= 0)
            throw new ArgumentOutOfRangeException(nameof(maxPixels), maxPixels, "the pixel limit must be positive");
        var previous = Limit.Value;
        Limit.Value = maxPixels;
        return new Restore(() => Limit.Value = previous);
    }

    sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }

    public static readonly IReadOnlySet<string> Extensions = new HashSet<string>(
        [".png", ".jpg", ".jpeg", ".webp", ".bmp"],
        StringComparer.OrdinalIgnoreCase
    );

    public static bool HasImageExtension(string path) => Extensions.Contains(Path.GetExtension(path));

    public static Tensor Read(string path, long? maxPixels = null)
    {
        if (!File.Exists(path))
            throw new ImageDecodeException(path, ImageProblem.Missing, "no such image file");
        byte[] data;
        try
        {
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageDecodeException(path, ImageProblem.Unreadable, e.Message);
        }
        return Decode(data, path, maxPixels ?? MaxPixels);
    }

    /// <summary>Decodes an encoded image; <paramref name="name"/> is used in error messages.</summary>
    public static Tensor Decode(byte[] encoded, string name, long? maxPixelsOrNull = null)
    {
        long maxPixels = maxPixelsOrNull ?? MaxPixels;
        if (encoded.Length == 0)
            throw new ImageDecodeException(name, ImageProblem.Unreadable, "empty file");
        // The codec takes ownership of the stream.
        var stream = new SKMemoryStream(encoded);
        using var codec = SKCodec.Create(stream, out var created);
        if (codec is null)
            stream.Dispose();
        if (codec is null)
            throw new ImageDecodeException(
                name,
                created == SKCodecResult.IncompleteInput ? ImageProblem.Truncated : ImageProblem.Unreadable,
                created == SKCodecResult.IncompleteInput ? "truncated image file" : $"not a readable image ({created})"
            );
        var info = codec.Info;
        if (info.Width <= 0 || info.Height <= 0)
            throw new ImageDecodeException(
                name,
                ImageProblem.Unreadable,
                $"invalid image size {info.Width}x{info.Height}"
            );
        if ((long)info.Width * info.Height > maxPixels)
            throw new ImageDecodeException(
                name,
                ImageProblem.TooLarge,
                $"image is {info.Width}x{info.Height}, more than the {maxPixels} pixels allowed"
            );

        var target = new SKImageInfo(info.Width, info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(target);
        var result = codec.GetPixels(target, bitmap.GetPixels());
        if (result == SKCodecResult.IncompleteInput || result == SKCodecResult.ErrorInInput)
            throw new ImageDecodeException(name, ImageProblem.Truncated, $"truncated or damaged image data ({result})");
        if (result != SKCodecResult.Success)
            throw new ImageDecodeException(name, ImageProblem.Unsupported, $"cannot decode image ({result})");

        using var scope = torch.NewDisposeScope();
        var image = SkiaTensors.FromBitmap(bitmap);
        return ApplyOrientation(image, codec.EncodedOrigin).MoveToOuterDisposeScope();
    }

    /// <summary>Turns stored pixels [C,H,W] upright according to the EXIF orientation tag.</summary>
    public static Tensor ApplyOrientation(Tensor image, SKEncodedOrigin origin) =>
        origin switch
        {
            SKEncodedOrigin.TopRight => image.flip(2), // 2: mirrored
            SKEncodedOrigin.BottomRight => image.flip(1, 2), // 3: rotated 180
            SKEncodedOrigin.BottomLeft => image.flip(1), // 4: mirrored vertically
            SKEncodedOrigin.LeftTop => image.transpose(1, 2), // 5: transposed
            SKEncodedOrigin.RightTop => image.transpose(1, 2).flip(2), // 6: needs 90 degrees clockwise
            SKEncodedOrigin.RightBottom => image.transpose(1, 2).flip(1, 2), // 7: transverse
            SKEncodedOrigin.LeftBottom => image.transpose(1, 2).flip(1), // 8: needs 90 degrees counter-clockwise
            _ => image,
        };

    public static ImageFormat FormatFromExtension(string path) =>
        Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".png" => ImageFormat.Png,
            ".jpg" or ".jpeg" => ImageFormat.Jpeg,
            ".webp" => ImageFormat.Webp,
            var e => throw new ArgumentException(
                $"{path}: cannot write images with extension '{e}' (use .png, .jpg or .webp)"
            ),
        };

    /// <summary>Encodes [3,H,W] (or [1,3,H,W]) clamped to [0,1] and rounded to 8 bits.</summary>
    public static byte[] Encode(Tensor image, ImageFormat format = ImageFormat.Png, int quality = 95)
    {
        using var bitmap = SkiaTensors.ToBitmap(image);
        using var skImage = SKImage.FromBitmap(bitmap);
        var skFormat = format switch
        {
            ImageFormat.Jpeg => SKEncodedImageFormat.Jpeg,
            ImageFormat.Webp => SKEncodedImageFormat.Webp,
            _ => SKEncodedImageFormat.Png,
        };
        using var data =
            skImage.Encode(skFormat, quality)
            ?? throw new InvalidOperationException($"SkiaSharp could not encode {format}");
        return data.ToArray();
    }

    /// <summary>Writes one image atomically; the format follows the extension.</summary>
    public static void Write(string path, Tensor image, int quality = 95)
    {
        var bytes = Encode(image, FormatFromExtension(path), quality);
        IO.AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>Writes each image of a batch [N,3,H,W] to the matching path.</summary>
    public static void WriteBatch(IReadOnlyList<string> paths, Tensor images, int quality = 95)
    {
        if (images.dim() != 4 || images.shape[1] != 3)
            throw new ArgumentException($"expected a batch [N,3,H,W], got [{string.Join(",", images.shape)}]");
        if (images.shape[0] != paths.Count)
            throw new ArgumentException($"{paths.Count} paths for a batch of {images.shape[0]} images");
        for (int i = 0; i < paths.Count; i++)
        {
            using var one = images[i];
            Write(paths[i], one, quality);
        }
    }
}
