using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Models;
using IdDisentangle.Models.FaceApi;
using IdDisentangle.Models.Identity;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Networks;

/// <summary>
/// A face-recognition network E_id can be, with everything that differs between them: how it is loaded, the part
/// of an FFHQ-aligned face it sees, how a face photo becomes its input, and its verification threshold. Trainer,
/// inference and <c>iddis embed</c> all go through this registry.
/// </summary>
internal abstract class IdentityNetwork
{
    /// <summary>face-api.js's ResNet (128-D), fetched from the npm registry: the default.</summary>
    public static readonly IdentityNetwork FaceApi = new FaceApiIdentity();

    /// <summary>pSp's IR-SE50 ArcFace (512-D), from a user-supplied <c>model_ir_se50.pth</c>.</summary>
    public static readonly IdentityNetwork IrSe50 = new IrSe50Identity();

    /// <summary>The paper's VGGFace2 ResNet-50 from its Keras model file <c>vggface2.h5</c>.</summary>
    public static readonly IdentityNetwork VggFace2 = new VggFace2Identity();

    public static IReadOnlyList<IdentityNetwork> All { get; } = [FaceApi, IrSe50, VggFace2];

    /// <summary>The name used in options and saved in run folders.</summary>
    public abstract string Name { get; }

    /// <summary>The weights file it needs besides the model store, or null.</summary>
    public abstract string? WeightsFile { get; }

    /// <summary>Side of the square face image <see cref="EmbedFace"/> feeds it.</summary>
    public abstract int InputSize { get; }

    public abstract int EmbeddingDim { get; }

    /// <summary>Distance between two embeddings below which they are the same person (null: none
    /// established).</summary>
    public abstract double? VerificationThreshold { get; }

    public override string ToString() => Name;

    /// <summary>The entry named <paramref name="name"/>; an unknown name is an error listing the choices.</summary>
    public static IdentityNetwork Parse(string name) =>
        All.FirstOrDefault(n => string.Equals(n.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new NetworkChoiceException(
            $"identity network '{name}': use {string.Join(", ", All.Select(n => n.Name))}",
            All.Select(n => n.Name).ToList()
        );

    /// <summary>The frozen network, from the model store or <paramref name="weightsFile"/>.</summary>
    public abstract nn.Module<Tensor, Tensor> Load(ModelStore store, string? weightsFile);

    /// <summary>The crop of an aligned face (<paramref name="faceCrop"/>: "ffhq" or "none") this network
    /// sees.</summary>
    public virtual FaceCrop Crop(string faceCrop) => FaceCrop.Parse(faceCrop);

    /// <summary>E_id: the loaded network with its crop and preprocessing.</summary>
    public IdentityEncoder Encoder(ModelStore store, string? weightsFile, string faceCrop, bool normalize) =>
        new(Load(store, weightsFile), Crop(faceCrop), normalize);

    /// <summary>The input of a square face image [N,3,InputSize,InputSize] in [0,1].</summary>
    public abstract Tensor EmbedInput(Tensor squareRgb01);

    /// <summary>The input for the face a detector found in a photo [3,H,W] in [0,1], as the network was
    /// trained.</summary>
    public abstract Tensor EmbedFace(Tensor photo01, DetectedFace face, double alignmentCentreShift);

    /// <summary>True when faces for <see cref="EmbedFace"/> are best placed by dlib's landmarks.</summary>
    public virtual bool PrefersDlibLandmarks => false;

    protected string RequireWeights(string? weightsFile) =>
        weightsFile
        ?? throw new NetworkChoiceException($"identity network {Name} needs its weights file ({WeightsFile})");

    sealed class FaceApiIdentity : IdentityNetwork
    {
        public override string Name => "faceapi";
        public override string? WeightsFile => null;
        public override int InputSize => FaceRecognitionNet.InputSize;
        public override int EmbeddingDim => FaceRecognitionNet.DescriptorSize;

        /// <summary>face-api.js's FaceMatcher threshold on raw descriptors.</summary>
        public override double? VerificationThreshold => 0.6;

        public override nn.Module<Tensor, Tensor> Load(ModelStore store, string? weightsFile) =>
            PretrainedNetworks.FaceRecognition(store);

        public override Tensor EmbedInput(Tensor squareRgb01) => squareRgb01.Times(255);

        public override Tensor EmbedFace(Tensor photo01, DetectedFace face, double alignmentCentreShift) =>
            FaceDetector.CutFace(
                photo01.Times(255f).round(),
                FaceDetector.RecognitionBox(face.Landmarks, (int)photo01.shape[2], (int)photo01.shape[1]),
                InputSize,
                out _
            );
    }

    sealed class IrSe50Identity : IdentityNetwork
    {
        public override string Name => "irse50";
        public override string? WeightsFile => "model_ir_se50.pth";
        public override int InputSize => Models.Identity.IrSe50.InputSize;
        public override int EmbeddingDim => Models.Identity.IrSe50.EmbeddingSize;

        /// <summary>The default of TreB1eN's InsightFace_Pytorch verification, on L2-normalised embeddings.</summary>
        public override double? VerificationThreshold => 1.54;
        public override bool PrefersDlibLandmarks => true; // pSp aligned its faces with dlib's landmarks

        public override nn.Module<Tensor, Tensor> Load(ModelStore store, string? weightsFile) =>
            IrSe50Weights.Load(RequireWeights(weightsFile));

        public override FaceCrop Crop(string faceCrop) => FaceCrop.Parse(faceCrop, arcFace: true);

        public override Tensor EmbedInput(Tensor squareRgb01) => squareRgb01.Times(2).Minus(1);

        public override Tensor EmbedFace(Tensor photo01, DetectedFace face, double alignmentCentreShift) =>
            Models.Identity.IrSe50.Prepare(
                FfhqAlignment.Align(photo01, face.Landmarks, 256, out _, alignmentCentreShift).unsqueeze(0),
                FaceCrop.FfhqArcFace
            );
    }

    sealed class VggFace2Identity : IdentityNetwork
    {
        public override string Name => "vggface2";
        public override string? WeightsFile => "the paper's vggface2.h5";
        public override int InputSize => Models.Identity.VggFace2.InputSize;
        public override int EmbeddingDim => 0; // read from the model file
        public override double? VerificationThreshold => null;

        public override nn.Module<Tensor, Tensor> Load(ModelStore store, string? weightsFile) =>
            VggFace2Weights.Load(RequireWeights(weightsFile));

        // The network applies the paper's own 10%-90% crop after any crop given here.
        public override FaceCrop Crop(string faceCrop) => faceCrop == "ffhq" ? FaceCrop.None : FaceCrop.Parse(faceCrop);

        public override Tensor EmbedInput(Tensor squareRgb01) => Models.Identity.VggFace2.Prepare(squareRgb01);

        public override Tensor EmbedFace(Tensor photo01, DetectedFace face, double alignmentCentreShift) =>
            Models.Identity.VggFace2.Prepare(
                FfhqAlignment.Align(photo01, face.Landmarks, 256, out _, alignmentCentreShift).unsqueeze(0)
            );
    }
}
