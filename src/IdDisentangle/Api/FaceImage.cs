using IdDisentangle.Imaging;
using IdDisentangle.Runtime;
using SkiaSharp;
using static TorchSharp.torch;

namespace IdDisentangle;

/// <summary>
/// An RGB image: a photo, an aligned face or a generated one. Pixels are held as a tensor [3,H,W] in [0,1] on the
/// CPU; files are read and written with SkiaSharp (PNG, JPEG, WebP).
/// </summary>
public sealed class FaceImage : IDisposable
{
    internal FaceImage(Tensor pixels, string name)
    {
        if (pixels.dim() != 3 || pixels.shape[0] != 3)
            throw new ArgumentException($"{name}: expected pixels [3,H,W], got [{string.Join(",", pixels.shape)}]");
        // The image owns its pixels, whatever dispose scope they were made in.
        Pixels = pixels.cpu().to(ScalarType.Float32).DetachFromDisposeScope();
        Name = name;
    }

    /// <summary>Reads an image file; EXIF orientation is applied. A damaged or non-image file is an error naming
    /// it.</summary>
    public static FaceImage Load(string path) => new(ImageIO.Read(path), Path.GetFileNameWithoutExtension(path));

    /// <summary>An image from a SkiaSharp bitmap.</summary>
    public static FaceImage FromBitmap(SKBitmap bitmap, string name = "bitmap") =>
        new(SkiaTensors.FromBitmap(bitmap), name);

    /// <summary>An image from a tensor [3,H,W] with values in [0,1].</summary>
    public static FaceImage FromTensor(Tensor pixels, string name = "tensor") => new(pixels.Clamp(0, 1), name);

    /// <summary>The pixels, [3,H,W] in [0,1], float32 on the CPU.</summary>
    public Tensor Pixels { get; }

    /// <summary>A name for messages and output files (the file stem of a loaded image).</summary>
    public string Name { get; }

    /// <summary>Width in pixels.</summary>
    public int Width => (int)Pixels.shape[2];

    /// <summary>Height in pixels.</summary>
    public int Height => (int)Pixels.shape[1];

    /// <summary>Writes the image atomically; the format follows the extension (.png, .jpg, .webp).</summary>
    public void Save(string path) => ImageIO.Write(path, Pixels);

    /// <summary>A SkiaSharp bitmap of the image (the caller disposes it).</summary>
    public SKBitmap ToBitmap() => SkiaTensors.ToBitmap(Pixels);

    internal InputImage ToInput() => new(Name, Name, Pixels);

    /// <summary>Frees the native memory of the networks (or pixels).</summary>
    public void Dispose() => Pixels.Dispose();
}
