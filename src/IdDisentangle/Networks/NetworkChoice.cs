using IdDisentangle.Imaging;
using IdDisentangle.Models;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Networks;

/// <summary>
/// The networks of the method as a run chose them, and their assembly, shared by training and inference: the
/// frozen generator, E_id (identity network and its weights), E_attr (backbone and input size), M between them,
/// and the face crop of the face networks ("ffhq" or "none").
/// </summary>
internal sealed record NetworkChoice(
    string GeneratorPath,
    IdentityNetwork Identity,
    string? IdentityWeights,
    AttributeBackbone AttrBackbone,
    int AttrInputSize,
    string FaceCrop
)
{
    /// <summary>
    /// The generator, frozen, on <paramref name="device"/>; with <paramref name="outputSize"/> below its resolution,
    /// its images area-downsampled to that size.
    /// </summary>
    public static IStyleGenerator LoadGenerator(
        string path,
        Device device,
        out GeneratorLoadReport report,
        int outputSize = 0
    )
    {
        var g = GeneratorFiles.Load(path, out report);
        if (outputSize > g.Resolution)
        {
            ((IDisposable)g).Dispose();
            throw new SettingException(
                Setting.OutputSize,
                outputSize.ToString(),
                $"above the generator's resolution {g.Resolution} ({path})"
            );
        }
        if (outputSize > 0 && outputSize < g.Resolution)
            g = new ResizedGenerator(g, outputSize);
        var module = (nn.Module)g;
        module.to(device);
        module.eval();
        foreach (var p in module.parameters())
            p.requires_grad = false;
        return g;
    }

    /// <summary>E_id, frozen; <paramref name="normalize"/> as the paper's IDEncoder (false only for old
    /// runs).</summary>
    public IdentityEncoder IdentityEncoder(ModelStore store, bool normalize = true) =>
        Identity.Encoder(store, IdentityWeights, FaceCrop, normalize);

    /// <summary>E_attr, ImageNet-initialised when <paramref name="pretrained"/>, else empty for a checkpoint.</summary>
    public AttributeEncoder AttributeEncoder(ModelStore store, bool pretrained) =>
        AttrBackbone.Encoder(store, AttrInputSize, pretrained);

    /// <summary>The landmark net of L_lnd with the face crop.</summary>
    public LandmarkEncoder LandmarkEncoder(ModelStore store) =>
        new(PretrainedNetworks.Landmarks68(store), Imaging.FaceCrop.Parse(FaceCrop));

    /// <summary>M from the two encoders' codes to the generator's W.</summary>
    public static LatentMapper Mapper(
        IdentityEncoder eId,
        AttributeEncoder eAttr,
        IStyleGenerator g,
        torch.Generator? init = null
    ) => new(eId.EmbeddingDim, eAttr.FeatureDim, g.StyleDim, init);
}
