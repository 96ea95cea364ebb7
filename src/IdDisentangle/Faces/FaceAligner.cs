using IdDisentangle.Imaging;
using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Faces;

/// <summary>One aligned face: the result, the detection that found it (landmarks included) and the square cut from the
/// photo.</summary>
internal sealed record AlignedFace(InputImage Face, DetectedFace Detection, AlignmentQuad Quad);

/// <summary>Which 68 landmarks place the FFHQ alignment square.</summary>
internal enum AlignmentLandmarks
{
    /// <summary>dlib's shape predictor, the model FFHQ itself was aligned with (its license excludes commercial
    /// use).</summary>
    Dlib,

    /// <summary>face-api.js's landmark net alone (MIT), with <see cref="FfhqAlignment.FaceApiCentreShift"/>: about 2 px
    /// less precise at 256.</summary>
    FaceApi,
}

/// <summary>
/// Turns photos into the generator's input: each face found is FFHQ-aligned to the generator's resolution. Images
/// the caller declares aligned and that already have that resolution pass through untouched (generated faces,
/// FFHQ crops); a photo with no face is reported and dropped.
/// </summary>
internal sealed class FaceAligner(FaceDetector detector, int resolution) : IDisposable
{
    /// <summary>
    /// Loads face-api.js's detector and landmark net (mirror-averaged) and, for <see cref="AlignmentLandmarks.Dlib"/>,
    /// dlib's shape predictor from the model store.
    /// </summary>
    public static FaceAligner Load(
        ModelStore store,
        Device device,
        int resolution,
        bool allFaces = false,
        AlignmentLandmarks landmarks = AlignmentLandmarks.Dlib
    ) =>
        new(
            FaceDetector.Load(
                store,
                device,
                dlibLandmarks: landmarks == AlignmentLandmarks.Dlib,
                mirrorAveraging: true
            ),
            resolution
        )
        {
            AllFaces = allFaces,
        };

    /// <summary>The landmarks that place the square.</summary>
    public AlignmentLandmarks Landmarks =>
        detector.DlibLandmarks is null ? AlignmentLandmarks.FaceApi : AlignmentLandmarks.Dlib;

    public int Resolution { get; } = resolution;

    /// <summary>Align every face of a photo (named STEM_face1, STEM_face2, ... by decreasing size) instead of only the
    /// largest.</summary>
    public bool AllFaces { get; init; }

    /// <summary>Images at the generator's resolution are already aligned and are used as they are.</summary>
    public bool TrustAlignedAtResolution { get; init; }

    /// <summary>True when <paramref name="image"/> is used as it is.</summary>
    public bool PassesThrough(InputImage image) => PassesThrough(image, Resolution, TrustAlignedAtResolution);

    /// <summary>True when an image declared aligned (<paramref name="trustAligned"/>) already has the
    /// resolution.</summary>
    public static bool PassesThrough(InputImage image, int resolution, bool trustAligned) =>
        trustAligned && image.Image.shape[1] == resolution && image.Image.shape[2] == resolution;

    /// <summary>The aligned faces of one image: none (reported through <paramref name="log"/>), one, or one per face
    /// with <see cref="AllFaces"/>.</summary>
    public IReadOnlyList<InputImage> Align(InputImage image, Action<string> log) =>
        PassesThrough(image) ? [image] : AlignFaces(image, log).Select(f => f.Face).ToList();

    /// <summary>
    /// Like <see cref="Align(InputImage, Action{string})"/> without the pass-through, each face with what placed it:
    /// the detector's box and score, the 68 landmarks and the square cut from the photo (source pixels).
    /// </summary>
    public IReadOnlyList<AlignedFace> AlignFaces(InputImage image, Action<string> log)
    {
        var faces = Detect(image.Image).ToList();
        if (faces.Count == 0)
        {
            log($"{image.Path}: no face found; skipped");
            return [];
        }
        if (!AllFaces)
            faces = faces.Take(1).ToList();
        var result = new List<AlignedFace>();
        for (int i = 0; i < faces.Count; i++)
            result.Add(AlignAt(image, faces[i], faces[i].Landmarks, AllFaces && faces.Count > 1 ? i + 1 : 0));
        return result;
    }

    /// <summary>Every face of <paramref name="image"/> [3,H,W], largest first.</summary>
    public IReadOnlyList<DetectedFace> Detect(Tensor image) =>
        detector.Detect(image).OrderByDescending(f => f.Box.Area).ToList();

    /// <summary>
    /// The face <paramref name="face"/> of <paramref name="image"/> aligned by <paramref name="landmarks"/> (its own,
    /// or smoothed ones); <paramref name="number"/> &gt; 0 names it STEM_faceN.
    /// </summary>
    public AlignedFace AlignAt(InputImage image, DetectedFace face, IReadOnlyList<PixelPoint> landmarks, int number = 0)
    {
        var aligned = FfhqAlignment.Align(
            image.Image,
            landmarks,
            Resolution,
            out var quad,
            detector.AlignmentCentreShift
        );
        string stem = number > 0 ? $"{image.Stem}_face{number}" : image.Stem;
        return new AlignedFace(new InputImage(image.Path, stem, aligned), face with { Landmarks = landmarks }, quad);
    }

    public void Dispose() => detector.Dispose();
}
