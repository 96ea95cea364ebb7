using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Models.FaceApi;
using IdDisentangle.Networks;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Inference;

/// <summary>
/// 68 facial landmarks per image in the image's pixel coordinates: face-api.js's net on the whole image fitted into
/// its square (face crops), or, with detection, the points of the largest face the detector finds (face-api.js's
/// or dlib's landmarks, as the registry entry says).
/// </summary>
internal sealed class LandmarkLocator : IDisposable
{
    readonly FaceLandmark68Net? _net;
    readonly FaceDetector? _detector;
    readonly Device _device;

    LandmarkLocator(FaceLandmark68Net? net, FaceDetector? detector, Device device)
    {
        _net = net;
        _detector = detector;
        _device = device;
    }

    /// <summary>
    /// Loads what <paramref name="network"/> needs; dlib's landmarks need <paramref name="detect"/> (its predictor
    /// starts from a detected face).
    /// </summary>
    public static LandmarkLocator Load(LandmarkNetwork network, bool detect, ModelStore store, Device device)
    {
        if (!detect && network == LandmarkNetwork.Dlib)
            throw new NetworkChoiceException(
                "dlib's landmarks need face detection (its predictor starts from a face box)"
            );
        if (detect)
            return new(null, FaceDetector.Load(store, device, dlibLandmarks: network == LandmarkNetwork.Dlib), device);
        var net = PretrainedNetworks.Landmarks68(store);
        net.to(device);
        return new(net, null, device);
    }

    /// <summary>The points [68,2] (x, y in pixels); NaN when detection found no face (reported through the log).</summary>
    public Tensor Locate(InputImage image, Action<string> log)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        var mapped = new float[2 * FaceLandmark68Net.Points];
        if (_detector is not null)
        {
            var face = _detector.Detect(image.Image).MaxBy(f => f.Box.Area);
            if (face is null)
                log($"{image.Path}: no face found; its points are NaN");
            for (int k = 0; k < FaceLandmark68Net.Points; k++)
                (mapped[2 * k], mapped[2 * k + 1]) = face is null
                    ? (float.NaN, float.NaN)
                    : ((float)face.Landmarks[k].X, (float)face.Landmarks[k].Y);
        }
        else
        {
            var input = SquareFit.Apply(image.Image.unsqueeze(0), FaceLandmark68Net.InputSize, out var fit);
            var xy = _net!.forward(input.to(_device).Times(255)).cpu()[0].data<float>().ToArray();
            for (int k = 0; k < xy.Length; k += 2)
            {
                var (x, y) = fit.ToImage(xy[k], xy[k + 1]);
                mapped[k] = (float)x;
                mapped[k + 1] = (float)y;
            }
        }
        return torch.tensor(mapped).view(FaceLandmark68Net.Points, 2).MoveToOuterDisposeScope();
    }

    /// <summary>The image with the points [68,2] drawn as green dots.</summary>
    public static Tensor Draw(Tensor image, Tensor points)
    {
        var xy = points.contiguous().data<float>().ToArray();
        using var bmp = SkiaTensors.ToBitmap(image);
        using (var canvas = new SKCanvas(bmp))
        using (
            var paint = new SKPaint
            {
                Color = new SKColor(0, 230, 0),
                IsAntialias = true,
                Style = SKPaintStyle.Fill,
            }
        )
        {
            float r = Math.Max(1.5f, Math.Max(bmp.Width, bmp.Height) / 160f);
            for (int k = 0; k < xy.Length; k += 2)
                canvas.DrawCircle(xy[k], xy[k + 1], r, paint);
        }
        return SkiaTensors.FromBitmap(bmp);
    }

    public void Dispose()
    {
        _net?.Dispose();
        _detector?.Dispose();
    }
}
