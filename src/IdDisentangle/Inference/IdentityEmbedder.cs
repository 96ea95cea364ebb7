using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Networks;
using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Inference;

/// <summary>
/// Identity embeddings of face images with one of the registry's identity networks: of face crops as they are
/// (fitted into the network's square), or of the largest face a detector finds in each photo.
/// </summary>
internal sealed class IdentityEmbedder : IDisposable
{
    readonly nn.Module<Tensor, Tensor> _net;
    readonly FaceDetector? _detector;
    readonly Device _device;

    IdentityEmbedder(IdentityNetwork network, nn.Module<Tensor, Tensor> net, FaceDetector? detector, Device device)
    {
        Network = network;
        _net = net;
        _detector = detector;
        _device = device;
    }

    /// <summary>
    /// Loads <paramref name="network"/> (with <paramref name="weightsFile"/> when it needs one) and, with
    /// <paramref name="detect"/>, the face detector (dlib's landmarks when the network prefers them and the model
    /// store has them).
    /// </summary>
    public static IdentityEmbedder Load(
        IdentityNetwork network,
        ModelStore store,
        string? weightsFile,
        Device device,
        bool detect
    )
    {
        var net = network.Load(store, weightsFile);
        net.to(device);
        FaceDetector? detector = null;
        if (detect)
        {
            bool dlib = network.PrefersDlibLandmarks && File.Exists(store.PathOf("dlib-landmarks68"));
            detector = FaceDetector.Load(store, device, dlibLandmarks: dlib);
        }
        return new IdentityEmbedder(network, net, detector, device);
    }

    public IdentityNetwork Network { get; }

    /// <summary>
    /// The embeddings [N,D] on the CPU. With detection, a photo without a face gives a NaN row (reported through
    /// <paramref name="log"/>).
    /// </summary>
    public Tensor Embed(IReadOnlyList<InputImage> images, Action<string> log)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        var rows = new List<Tensor>();
        foreach (var image in images)
        {
            if (_detector is null)
            {
                var square = SquareFit.Apply(image.Image.unsqueeze(0), Network.InputSize, out _);
                rows.Add(_net.call(Network.EmbedInput(square).to(_device)).cpu());
                continue;
            }
            var face = _detector.Detect(image.Image).MaxBy(f => f.Box.Area);
            if (face is null)
            {
                log($"{image.Path}: no face found; its row is NaN");
                rows.Add(KeptScalars.Full([1, EmbeddingDim(rows)], double.NaN));
                continue;
            }
            var input = Network.EmbedFace(image.Image, face, _detector.AlignmentCentreShift);
            rows.Add(_net.call(input.to(_device)).cpu());
        }
        return torch.cat(rows, 0).MoveToOuterDisposeScope();
    }

    int EmbeddingDim(List<Tensor> rows) =>
        rows.Count > 0
            ? (int)rows[0].shape[1]
            : Network.EmbeddingDim switch
            {
                > 0 and var d => d,
                _ => (int)_net.call(torch.zeros(1, 3, Network.InputSize, Network.InputSize, device: _device)).shape[1],
            };

    /// <summary>Euclidean distance of two embeddings.</summary>
    public static double Distance(Tensor a, Tensor b) => (a - b).norm().ToDouble();

    /// <summary>Whether a distance means the same person; null when the network has no established threshold.</summary>
    public bool? SamePerson(double distance) => Network.VerificationThreshold is { } t ? distance < t : null;

    public void Dispose()
    {
        _net.Dispose();
        _detector?.Dispose();
    }
}
