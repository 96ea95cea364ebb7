using IdDisentangle.Models.Identity;
using IdDisentangle.Weights.Keras;

namespace IdDisentangle.Weights;

/// <summary>The paper's VGGFace2 identity model from its complete Keras file (<c>vggface2.h5</c>).</summary>
internal static class VggFace2Weights
{
    /// <summary>
    /// Rebuilds the Keras graph of <paramref name="path"/> up to <paramref name="embeddingLayer"/> (by default the
    /// layer
    /// feeding the classifier).
    /// </summary>
    public static VggFace2 Load(string path, string? embeddingLayer = "second-to-last") =>
        new(new KerasFunctionalModel(path, embeddingLayer), path);
}
