using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Imaging;

/// <summary>
/// A fixed crop given as fractions of the image (left, top, right, bottom), so it applies to any resolution of
/// the same framing. Applied by slicing, which is differentiable.
/// </summary>
internal readonly record struct FaceCrop(double Left, double Top, double Right, double Bottom)
{
    /// <summary>The whole image.</summary>
    public static readonly FaceCrop None = new(0, 0, 1, 1);

    /// <summary>
    /// The crop pSp and e4e apply to FFHQ-aligned 256x256 images before their IR-SE50 identity loss: rows 35-223,
    /// columns 32-220 (a 188 px square around the face, eyebrows to chin).
    /// </summary>
    public static readonly FaceCrop FfhqArcFace = new(32 / 256.0, 35 / 256.0, 220 / 256.0, 223 / 256.0);

    /// <summary>
    /// The crop for face-api.js's recognition and landmark nets on FFHQ-aligned images: rows 70-238, columns 42-210
    /// of 256 (a 168 px square, brows to chin). Chosen by search over square crops on FFHQ photos, as the one whose
    /// results agree best with face-api.js's own pipeline on the detected face (the numbers: bench/README.md,
    /// "Face crop of the face-api.js nets"; reproduce with <c>dotnet run --project bench/IdDisentangle.Bench --
    /// face-crop</c>).
    /// </summary>
    public static readonly FaceCrop FfhqFaceApi = new(42 / 256.0, 70 / 256.0, 210 / 256.0, 238 / 256.0);

    public bool IsNone => Left <= 0 && Top <= 0 && Right >= 1 && Bottom >= 1;

    /// <summary>The pixel box (x0, y0, x1, y1), end exclusive, for an image of the given size.</summary>
    public (int X0, int Y0, int X1, int Y1) Box(int width, int height) =>
        (
            (int)Math.Round(Left * width),
            (int)Math.Round(Top * height),
            (int)Math.Round(Right * width),
            (int)Math.Round(Bottom * height)
        );

    /// <summary>Crops [N,C,H,W] (or [C,H,W]).</summary>
    public Tensor Apply(Tensor images)
    {
        if (IsNone)
            return images;
        int h = (int)images.shape[^2],
            w = (int)images.shape[^1];
        var (x0, y0, x1, y1) = Box(w, h);
        if (x1 <= x0 || y1 <= y0)
            throw new ArgumentException($"crop {this} is empty for a {w}x{h} image");
        return images.narrow(-2, y0, y1 - y0).narrow(-1, x0, x1 - x0);
    }

    /// <summary>
    /// A crop by name for one network: "ffhq" is each network's FFHQ crop (<see cref="FfhqFaceApi"/> for face-api.js's
    /// nets, <see cref="FfhqArcFace"/> for IR-SE50), "ffhq-faceapi" and "ffhq-arcface" force one of them, "none" is the
    /// whole image.
    /// </summary>
    public static FaceCrop Parse(string name, bool arcFace = false) =>
        name.ToLowerInvariant() switch
        {
            "none" => None,
            "ffhq" => arcFace ? FfhqArcFace : FfhqFaceApi,
            "ffhq-faceapi" => FfhqFaceApi,
            "ffhq-arcface" => FfhqArcFace,
            _ => throw new ArgumentException($"unknown face crop '{name}' (ffhq, ffhq-faceapi, ffhq-arcface, none)"),
        };
}
