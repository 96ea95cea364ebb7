using IdDisentangle.Inference;
using IdDisentangle.Networks;

namespace IdDisentangle;

/// <summary>
/// Identity embeddings with a face-recognition network of the registry: "faceapi" (face-api.js, 128-D, fetched
/// from the npm registry), "irse50" (ArcFace IR-SE50, 512-D, needs model_ir_se50.pth) or "vggface2" (the paper's,
/// needs vggface2.h5).
/// <code>
/// using var embedder = FaceEmbedder.Load();
/// double d = FaceEmbedder.Distance(embedder.Embed(FaceImage.Load("a.jpg")), embedder.Embed(FaceImage.Load("b.jpg")));
/// bool? same = embedder.SamePerson(d);
/// </code>
/// </summary>
public sealed class FaceEmbedder : IDisposable
{
    readonly IdentityEmbedder _embedder;

    FaceEmbedder(IdentityEmbedder embedder) => _embedder = embedder;

    /// <summary>
    /// Loads <paramref name="network"/>; with <paramref name="detectFaces"/> each image is a photo whose largest face
    /// is found first, else it is a face crop.
    /// </summary>
    public static FaceEmbedder Load(
        string network = "faceapi",
        string? weightsFile = null,
        bool detectFaces = true,
        ComputeOptions? compute = null
    )
    {
        compute ??= new ComputeOptions();
        var device = compute.Apply();
        return new FaceEmbedder(
            IdentityEmbedder.Load(IdentityNetwork.Parse(network), compute.Store(), weightsFile, device, detectFaces)
        );
    }

    /// <summary>The network's name.</summary>
    public string Network => _embedder.Network.Name;

    /// <summary>The embedding of a face; NaN values when face detection found none.</summary>
    public float[] Embed(FaceImage image)
    {
        using var e = _embedder.Embed([image.ToInput()], _ => { });
        return e[0].data<float>().ToArray();
    }

    /// <summary>Euclidean distance of two embeddings.</summary>
    public static double Distance(float[] a, float[] b)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"embeddings of {a.Length} and {b.Length} values");
        return Math.Sqrt(a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Sum());
    }

    /// <summary>Whether a distance means the same person (null: the network has no established threshold).</summary>
    public bool? SamePerson(double distance) => _embedder.SamePerson(distance);

    /// <summary>Frees the native memory of the networks (or pixels).</summary>
    public void Dispose() => _embedder.Dispose();
}
