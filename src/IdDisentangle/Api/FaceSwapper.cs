using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.Runs;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle;

/// <summary>How the inputs of a <see cref="FaceSwapper"/> become the generator's input.</summary>
public enum FaceInputMode
{
    /// <summary>Detect the largest face of each image and FFHQ-align it (photos).</summary>
    Detect,

    /// <summary>Images already at the generator's resolution are aligned faces and used as they are; others are
    /// detected.</summary>
    TrustAligned,

    /// <summary>Use every image as it is, only resized (aligned faces of any size).</summary>
    AsIs,
}

/// <summary>Options of <see cref="FaceSwapper.Load"/>.</summary>
public sealed record FaceSwapperOptions
{
    /// <summary>The checkpoint: best_id (the default when present), best_lnd or last.</summary>
    public string? Checkpoint { get; init; }

    /// <summary>A generator file to use instead of the one the model was trained with.</summary>
    public string? Generator { get; init; }

    /// <summary>How inputs become faces (default: aligned faces at the resolution pass, others are detected).</summary>
    public FaceInputMode Inputs { get; init; } = FaceInputMode.TrustAligned;

    /// <summary>Device, threads and the model store.</summary>
    public ComputeOptions Compute { get; init; } = new();

    /// <summary>
    /// When the attribute image is a photo that was aligned, return that photo with the new face pasted back (only
    /// the face region changes); false returns the generator's aligned face.
    /// </summary>
    public bool PasteBack { get; init; } = true;

    /// <summary>
    /// Before pasting back, move the generated face's mean colour under the mask to that of the photo's face: a less
    /// visible seam at a small cost in identity (measured in the repository's bench/README.md).
    /// </summary>
    public bool ColorMatch { get; init; }
}

/// <summary>
/// A trained identity-disentanglement model: renders the face with the identity of one image and the pose,
/// expression, lighting and background of another.
/// <code>
/// using var swapper = FaceSwapper.Load("results/ffhq256");
/// using var face = swapper.Swap(FaceImage.Load("a.jpg"), FaceImage.Load("b.jpg"));
/// face.Save("a_as_b.png");
/// </code>
/// </summary>
public sealed class FaceSwapper : IDisposable
{
    readonly DisentanglementModel _model;
    readonly FaceInputs _faces;
    readonly bool _pasteBack,
        _colorMatch;

    FaceSwapper(DisentanglementModel model, FaceInputs faces, bool pasteBack, bool colorMatch)
    {
        _model = model;
        _faces = faces;
        _pasteBack = pasteBack;
        _colorMatch = colorMatch;
    }

    /// <summary>
    /// Loads a training run folder (made by <c>iddis train</c> or <c>iddis import-release</c>), or a folder with the
    /// paper's released Keras checkpoint, which is imported into the model store's cache on first use.
    /// </summary>
    public static FaceSwapper Load(string folder, FaceSwapperOptions? options = null)
    {
        options ??= new FaceSwapperOptions();
        var device = options.Compute.Apply();
        var store = options.Compute.Store();
        string run = new RunFolder(folder).Exists ? folder : PaperRelease.ImportCached(folder, store);
        var model = DisentanglementModel.FromRun(
            run,
            options.Checkpoint,
            options.Generator,
            store.Root,
            device.ToString()
        );
        var mode = options.Inputs switch
        {
            FaceInputMode.Detect => InputAlignment.Align,
            FaceInputMode.AsIs => InputAlignment.None,
            _ => InputAlignment.TrustAlignedAtResolution,
        };
        return new FaceSwapper(
            model,
            new FaceInputs(model.Generator.Resolution, model.Device, mode, modelsDir: store.Root),
            options.PasteBack,
            options.ColorMatch
        );
    }

    /// <summary>The side of the square faces the model renders.</summary>
    public int Resolution => _model.Generator.Resolution;

    /// <summary>The checkpoint that was loaded.</summary>
    public string Checkpoint => _model.Checkpoint;

    /// <summary>
    /// The face with the identity of <paramref name="identity"/> and the attributes of <paramref name="attributes"/>:
    /// the attributes photo with its face replaced when it was aligned (and <see cref="FaceSwapperOptions.PasteBack"/>),
    /// else the generator's aligned face.
    /// </summary>
    public FaceImage Swap(FaceImage identity, FaceImage attributes)
    {
        var attr = Face(attributes);
        var face = InferenceJobs.Swap(_model, Face(identity), attr);
        string name = $"{identity.Name}_as_{attributes.Name}";
        return _pasteBack && _faces.PlacementOf(attr) is { } placement
            ? new FaceImage(InferenceJobs.PasteIntoPhoto(face, placement, colourMatch: _colorMatch).Photo, name)
            : new FaceImage(face, name);
    }

    /// <summary>The model's reconstruction of a face, G(M(E_id(x), E_attr(x))).</summary>
    public FaceImage Reconstruct(FaceImage face) => Swap(face, face);

    /// <summary>
    /// <paramref name="steps"/> frames from (identity A, attributes A) to (identity B, attributes B), linear in W.
    /// Pass the same image twice to keep the identity or the attributes fixed.
    /// </summary>
    public IReadOnlyList<FaceImage> Interpolate(
        FaceImage identityA,
        FaceImage attributesA,
        FaceImage identityB,
        FaceImage attributesB,
        int steps = 9
    )
    {
        if (steps < 2)
            throw new ArgumentOutOfRangeException(nameof(steps), "at least 2 frames (both ends)");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        int r = Resolution;
        Tensor Stack(params FaceImage[] images) =>
            torch.stack(images.Select(i => ImageOps.Resize(Face(i).Image, r, r, ResizeFilter.Area)).ToArray());
        var w = _model.MapToW(Stack(identityA, identityB), Stack(attributesA, attributesB));
        var t = torch.linspace(0, 1, steps, device: _model.Device).view(-1, 1);
        var frames = _model.Render(torch.lerp(w[0].expand(steps, -1), w[1].expand(steps, -1), t));
        return Enumerable.Range(0, steps).Select(i => new FaceImage(frames[i], $"frame_{i:00}")).ToList();
    }

    InputImage Face(FaceImage image) =>
        _faces.Align([image.ToInput()], _ => { }).FirstOrDefault()
        ?? throw new InvalidDataException($"{image.Name}: no face found");

    /// <summary>Frees the native memory of the networks (or pixels).</summary>
    public void Dispose()
    {
        _faces.Dispose();
        _model.Dispose();
    }
}
