using IdDisentangle.Faces;
using IdDisentangle.Imaging;

namespace IdDisentangle;

/// <summary>
/// Finds faces in photos and aligns them the way FFHQ was aligned (face-api.js's detector, dlib's 68 landmarks,
/// NVIDIA's recipe), at the resolution a generator expects.
/// <code>
/// using var aligner = PhotoAligner.Load(256);
/// foreach (var face in aligner.Align(FaceImage.Load("group.jpg"), allFaces: true)) face.Save($"{face.Name}.png");
/// </code>
/// </summary>
public sealed class PhotoAligner : IDisposable
{
    readonly FaceAligner _one,
        _all;

    PhotoAligner(FaceAligner one, FaceAligner all)
    {
        _one = one;
        _all = all;
    }

    /// <summary>
    /// Loads the detector and landmark models (fetched into the model store when missing, unless offline);
    /// <paramref name="dlibLandmarks"/> false uses face-api.js's landmarks alone (MIT-licensed, slightly less precise).
    /// </summary>
    public static PhotoAligner Load(int size = 256, bool dlibLandmarks = true, ComputeOptions? compute = null)
    {
        compute ??= new ComputeOptions();
        var device = compute.Apply();
        var landmarks = dlibLandmarks ? AlignmentLandmarks.Dlib : AlignmentLandmarks.FaceApi;
        var one = FaceAligner.Load(compute.Store(), device, size, allFaces: false, landmarks);
        var all = FaceAligner.Load(compute.Store(), device, size, allFaces: true, landmarks);
        return new PhotoAligner(one, all);
    }

    /// <summary>
    /// The aligned faces of a photo: the largest one, or every face (named NAME_face1, NAME_face2, ... by size)
    /// with <paramref name="allFaces"/>; none when no face is found.
    /// </summary>
    public IReadOnlyList<FaceImage> Align(FaceImage photo, bool allFaces = false) =>
        (allFaces ? _all : _one)
            .AlignFaces(photo.ToInput(), _ => { })
            .Select(f => new FaceImage(f.Face.Image, f.Face.Stem))
            .ToList();

    /// <summary>Frees the native memory of the networks (or pixels).</summary>
    public void Dispose()
    {
        _one.Dispose();
        _all.Dispose();
    }
}
