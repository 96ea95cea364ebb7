using IdDisentangle.Imaging;
using IdDisentangle.Models.Backbones;
using IdDisentangle.Models.FaceApi;
using IdDisentangle.Models.Identity;
using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Models;

/// <summary>
/// E_id: the frozen, pretrained face-recognition network with its preprocessing, from images [N,3,H,W] in [0,1]
/// to identity codes. face-api.js's ResNet (128-D) by default, IR-SE50 ArcFace (512-D) as an option, and the paper's
/// own VGGFace2 ResNet-50 (imported from its Keras model file) for its released checkpoint.
/// </summary>
internal sealed class IdentityEncoder : nn.Module<Tensor, Tensor>
{
    readonly nn.Module<Tensor, Tensor> net;

    /// <param name="network">The face-recognition network.</param>
    /// <param name="crop">The part of the aligned face it sees.</param>
    /// <param name="normalize">
    /// L2-normalise the codes, as the paper's IDEncoder does before M sees them; false only for runs trained before
    /// this was followed (their mapper saw raw face-api descriptors).
    /// </param>
    public IdentityEncoder(nn.Module<Tensor, Tensor> network, FaceCrop crop, bool normalize = true)
        : base(nameof(IdentityEncoder))
    {
        net = network;
        Normalize = normalize;
        EmbeddingDim = network switch
        {
            IrSe50 => IrSe50.EmbeddingSize,
            FaceRecognitionNet => FaceRecognitionNet.DescriptorSize,
            VggFace2 v => v.EmbeddingDim,
            _ => throw new ArgumentException($"unsupported identity network {network.GetType().Name}"),
        };
        Crop = crop;
        RegisterComponents();
        foreach (var p in parameters())
            p.requires_grad = false;
    }

    public FaceCrop Crop { get; }
    public int EmbeddingDim { get; }
    public bool Normalize { get; }

    public override Tensor forward(Tensor rgb01)
    {
        var embedding = net.call(
            net switch
            {
                IrSe50 => IrSe50.Prepare(rgb01, Crop),
                VggFace2 => VggFace2.Prepare(Crop.Apply(rgb01)), // the paper's own 10%-90% crop follows any extra crop
                _ => FaceRecognitionNet.Prepare(rgb01, Crop),
            }
        );
        return Normalize ? torch.nn.functional.normalize(embedding, dim: 1) : embedding;
    }
}

/// <summary>E_attr: the trained attribute encoder, an ImageNet-initialised backbone returning its 2048-D pooled
/// feature.</summary>
internal sealed class AttributeEncoder : nn.Module<Tensor, Tensor>
{
    readonly nn.Module<Tensor, Tensor> backbone;

    public AttributeEncoder(nn.Module<Tensor, Tensor> network, int inputSize = 0)
        : base(nameof(AttributeEncoder))
    {
        backbone = network;
        int native = network switch
        {
            InceptionV3 => InceptionV3.InputSize,
            ResNet50 => ResNet50.InputSize,
            _ => throw new ArgumentException($"unsupported attribute backbone {network.GetType().Name}"),
        };
        InputSize = inputSize > 0 ? inputSize : native;
        RegisterComponents();
    }

    /// <summary>
    /// Training mode as the paper's AttrEncoder trains: every weight learns, but the backbone is called without
    /// training=True, so Keras runs its BatchNormalization layers on their stored ImageNet statistics and never
    /// updates them. Here: train(), then every BatchNorm back to eval().
    /// </summary>
    public void TrainWithStoredNormStatistics()
    {
        train();
        foreach (var (_, m) in named_modules())
            if (m is TorchSharp.Modules.BatchNorm2d)
                m.eval();
    }

    /// <summary>
    /// For a frozen encoder used without autograd: an InceptionV3 backbone runs with its batch norms folded into
    /// its convolutions (<see cref="InceptionV3.FoldForInference"/>); train() undoes it.
    /// </summary>
    public void FoldForInference()
    {
        if (backbone is InceptionV3 inception)
            inception.FoldForInference();
    }

    /// <summary>The resolution images are resized to (the backbone's native one unless set smaller to save
    /// time).</summary>
    public int InputSize { get; }
    public int FeatureDim => 2048;

    public override Tensor forward(Tensor rgb01)
    {
        var x = ImageOps.Resize(rgb01, InputSize, InputSize, ResizeFilter.Bilinear);
        return backbone.call(backbone is InceptionV3 ? x.Times(2f).Minus(1f) : ResNet50.KerasPreprocess(x));
    }
}

/// <summary>The frozen 68-point landmark network with its preprocessing: [N,3,H,W] in [0,1] -> [N,68,2] in its 112-px
/// input units.</summary>
internal sealed class LandmarkEncoder : nn.Module<Tensor, Tensor>
{
    readonly FaceLandmark68Net net;

    public LandmarkEncoder(FaceLandmark68Net network, FaceCrop crop)
        : base(nameof(LandmarkEncoder))
    {
        net = network;
        Crop = crop;
        RegisterComponents();
        foreach (var p in parameters())
            p.requires_grad = false;
    }

    public FaceCrop Crop { get; }

    public override Tensor forward(Tensor rgb01) => net.call(FaceLandmark68Net.Prepare(rgb01, Crop));
}
