using IdDisentangle.Imaging;
using IdDisentangle.Runtime;
using static TorchSharp.torch;

namespace IdDisentangle.Faces;

/// <summary>How inputs become the generator's input.</summary>
internal enum InputAlignment
{
    /// <summary>Detect and FFHQ-align every input.</summary>
    Align,

    /// <summary>Inputs already at the generator's resolution are FFHQ-aligned and used as they are; others are
    /// aligned.</summary>
    TrustAlignedAtResolution,

    /// <summary>No detection: every input is only resized.</summary>
    None,
}

/// <summary>
/// Turns the images of one job into faces at the generator's resolution: detect, keep the largest face (or all),
/// FFHQ-align. The detector is loaded once, when the first input needs it. Photos without a face are reported
/// through the log and dropped.
/// </summary>
internal sealed class FaceInputs(
    int resolution,
    Device device,
    InputAlignment alignment,
    bool allFaces = false,
    string? modelsDir = null,
    AlignmentLandmarks landmarks = AlignmentLandmarks.Dlib
) : IDisposable
{
    FaceAligner? _aligner;
    readonly System.Runtime.CompilerServices.ConditionalWeakTable<InputImage, Placement> _placements = new();

    /// <summary>Where an aligned face came from: the photo and the alignment that cut it.</summary>
    internal sealed record Placement(InputImage Photo, AlignedFace Face);

    /// <summary>The photo and alignment of a face this object aligned; null for an input that passed through.</summary>
    public Placement? PlacementOf(InputImage face) => _placements.TryGetValue(face, out var p) ? p : null;

    /// <summary>The images <see cref="Align"/> will detect faces in (the others pass through).</summary>
    public int CountToAlign(IReadOnlyList<InputImage> images) =>
        alignment == InputAlignment.None ? 0 : images.Count(i => !PassesThrough(i));

    bool PassesThrough(InputImage image) =>
        alignment == InputAlignment.None
        || FaceAligner.PassesThrough(image, resolution, alignment == InputAlignment.TrustAlignedAtResolution);

    /// <summary>
    /// The faces of <paramref name="images"/>, in order; <paramref name="progress"/> is called once per image that
    /// needed detection.
    /// </summary>
    public List<InputImage> Align(
        IReadOnlyList<InputImage> images,
        Action<string> log,
        Action? progress = null,
        CancellationToken cancellation = default
    )
    {
        var result = new List<InputImage>();
        foreach (var image in images)
        {
            cancellation.ThrowIfCancellationRequested();
            if (PassesThrough(image))
            {
                result.Add(image);
                continue;
            }
            foreach (var face in Aligner().AlignFaces(image, log))
            {
                _placements.Add(face.Face, new Placement(image, face));
                result.Add(face.Face);
            }
            progress?.Invoke();
        }
        return result;
    }

    /// <summary>The detector and aligner behind this object, loaded on first use (call it outside any dispose scope
    /// that ends before this object does: the networks' tensors would be disposed with it).</summary>
    public FaceAligner Aligner() =>
        _aligner ??= FaceAligner.Load(new ModelStore(modelsDir), device, resolution, allFaces, landmarks);

    public void Dispose() => _aligner?.Dispose();
}
