using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Models.FaceApi;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Bench;

/// <summary>How well a fixed crop reproduces face-api.js's pipeline on detected faces.</summary>
/// <param name="LandmarkPx">Mean distance (pixels of the images) between the 68 points found on the fixed crop and on
/// the detected box.</param>
/// <param name="DescriptorDistance">Mean Euclidean distance between the descriptor of the fixed crop and of
/// face-api.js's landmark-aligned box.</param>
internal readonly record struct CropAgreement(double LandmarkPx, double DescriptorDistance);

/// <summary>
/// Chooses the fixed crop through which training shows aligned faces to face-api.js's networks: for a set of
/// aligned images of one size, the reference is face-api.js's own pipeline (SSD box for the landmarks, its
/// landmark-aligned box for the descriptor); a crop is scored by how closely the networks' preprocessing on that
/// crop (<see cref="FaceLandmark68Net.Prepare"/>, <see cref="FaceRecognitionNet.Prepare"/>) reproduces it.
/// </summary>
internal sealed class FaceCropCalibration
{
    readonly FaceRecognitionNet _recognition;
    readonly FaceLandmark68Net _landmarks;
    readonly Tensor _images,
        _refX,
        _refY,
        _refDescriptors;
    readonly int _size;

    /// <summary><paramref name="images"/>: [3,S,S] in [0,1], all of one size, each with one face.</summary>
    public FaceCropCalibration(
        FaceDetector detector,
        FaceRecognitionNet recognition,
        FaceLandmark68Net landmarks,
        IReadOnlyList<Tensor> images
    )
    {
        if (images.Count == 0)
            throw new ArgumentException("no images to calibrate on");
        _recognition = recognition;
        _landmarks = landmarks;
        _size = (int)images[0].shape[2];
        if (images.Any(i => i.shape[1] != _size || i.shape[2] != _size))
            throw new ArgumentException("calibration images must all be square and of one size");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        var xs = new List<float>();
        var ys = new List<float>();
        var descriptors = new List<Tensor>();
        for (int i = 0; i < images.Count; i++)
        {
            var face =
                detector.Detect(images[i]).MaxBy(f => f.Box.Area)
                ?? throw new InvalidDataException($"calibration image {i}: no face found");
            xs.AddRange(face.Landmarks.Select(p => (float)p.X));
            ys.AddRange(face.Landmarks.Select(p => (float)p.Y));
            var box = FaceDetector.RecognitionBox(face.Landmarks, _size, _size);
            var pixels = (images[i] * 255f).round();
            descriptors.Add(
                recognition.forward(FaceDetector.CutFace(pixels, box, FaceRecognitionNet.InputSize, out _))
            );
        }
        _images = torch.stack(images).MoveToOuterDisposeScope();
        _refX = torch.tensor(xs.ToArray()).view(images.Count, FaceLandmark68Net.Points).MoveToOuterDisposeScope();
        _refY = torch.tensor(ys.ToArray()).view(images.Count, FaceLandmark68Net.Points).MoveToOuterDisposeScope();
        _refDescriptors = torch.cat(descriptors, 0).MoveToOuterDisposeScope();
    }

    public CropAgreement Score(FaceCrop crop, bool landmarks = true, bool descriptors = true)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        double lm = double.NaN,
            desc = double.NaN;
        if (landmarks)
        {
            var (x0, y0, x1, y1) = crop.Box(_size, _size);
            var p = _landmarks.forward(FaceLandmark68Net.Prepare(_images, crop));
            var fit = new SquareFit(x1 - x0, y1 - y0, FaceLandmark68Net.InputSize);
            var px = p.select(2, 0) / fit.Scale - fit.PadX + x0;
            var py = p.select(2, 1) / fit.Scale - fit.PadY + y0;
            lm = ((px - _refX).square() + (py - _refY).square()).sqrt().mean().item<float>();
        }
        if (descriptors)
        {
            var d = _recognition.forward(FaceRecognitionNet.Prepare(_images, crop));
            desc = (d - _refDescriptors).square().sum([1]).sqrt().mean().item<float>();
        }
        return new CropAgreement(lm, desc);
    }

    /// <summary>
    /// Coordinate search over square crops (centre and side in pixels), steps 16, 8, 4, 2, from the centred 200 px
    /// square of a 256 image (scaled to the images' size), minimising the landmark or the descriptor disagreement.
    /// </summary>
    public (FaceCrop Crop, CropAgreement Agreement) Search(bool byLandmarks, Action<string>? log = null)
    {
        double k = _size / 256.0;
        double cx = 128 * k,
            cy = 128 * k,
            side = 200 * k,
            best = double.MaxValue;
        FaceCrop Square(double x, double y, double s) =>
            new((x - s / 2) / _size, (y - s / 2) / _size, (x + s / 2) / _size, (y + s / 2) / _size);
        foreach (double step in new[] { 16 * k, 8 * k, 4 * k, 2 * k })
        {
            for (bool improved = true; improved; )
            {
                improved = false;
                var (bx, by, bs) = (cx, cy, side);
                foreach (double dx in new[] { -step, 0, step })
                foreach (double dy in new[] { -step, 0, step })
                foreach (double ds in new[] { -step, 0, step })
                {
                    var (x, y, s) = (bx + dx, by + dy, bs + ds);
                    if (x - s / 2 < 0 || y - s / 2 < 0 || x + s / 2 > _size || y + s / 2 > _size)
                        continue;
                    var a = Score(Square(x, y, s), landmarks: byLandmarks, descriptors: !byLandmarks);
                    double v = byLandmarks ? a.LandmarkPx : a.DescriptorDistance;
                    if (v < best - 1e-9)
                    {
                        (best, cx, cy, side, improved) = (v, x, y, s, true);
                    }
                }
            }
            log?.Invoke($"step {step:0.#}: centre ({cx:0.#}, {cy:0.#}), side {side:0.#}: {best:F4}");
        }
        var crop = Square(cx, cy, side);
        return (crop, Score(crop));
    }
}
